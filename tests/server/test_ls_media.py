"""Which task image URLs the Label Studio backend reads, and how: Label Studio's token goes to
Label Studio only (never along a redirect to storage), downloads stop at the size limit,
everything outside the allowed places is refused before any request is made, and no redirect
leads to an internal address that configuration did not allow."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from hardening_tally import tally
from visionloop.core.errors import ConfigError, StorageError, UnsafePathError, ValidationError
from visionloop.server.ls_media import TaskImageReader
from visionloop.server.settings import ServerSettings
from visionloop.storage.urlguard import UnsafeURLError

LS_TOKEN = "ls-token-0123456789"  # noqa: S105  # a fixture token
PAYLOAD = b"\x89PNG fake image bytes"


class _Handler(BaseHTTPRequestHandler):
    """A stand-in for Label Studio and a storage host; records what each request carried."""

    seen: ClassVar[list[tuple[str, str | None]]] = []
    storage: ClassVar[str] = ""

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        path = urlsplit(self.path).path
        if path.startswith("/tasks/"):  # Label Studio signing a cloud URI: redirect to storage
            uri = base64.urlsafe_b64decode(parse_qs(urlsplit(self.path).query)["fileuri"][0]).decode()
            self.send_response(302)
            self.send_header("Location", f"{self.storage}/bucket/{uri.rsplit('/', 1)[-1]}?signature=x")
            self.end_headers()
            return
        if path == "/redirect":  # an image host sending the client elsewhere
            self.send_response(302)
            self.send_header("Location", parse_qs(urlsplit(self.path).query)["to"][0])
            self.end_headers()
            return
        if path == "/data/upload/big.png":
            body = b"x" * 5000
        elif path in ("/data/upload/3/a.png", "/bucket/key.png", "/public/a.png", "/data/local-files/"):
            body = PAYLOAD
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    """One local HTTP server playing Label Studio; its URL on 127.0.0.1 and on localhost (so
    the two look like different hosts)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    _Handler.seen = []
    _Handler.storage = f"http://localhost:{port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def _reader(web: str | None = None, files: Path | None = None, **extra: object) -> TaskImageReader:
    settings = ServerSettings(
        token="t" * 20,
        labelstudio_url=web,
        labelstudio_token=LS_TOKEN,
        labelstudio_files=files,
        max_body_bytes=1000,
        fetch_timeout_seconds=5,
        **extra,  # type: ignore[arg-type]
    )
    return TaskImageReader(settings)


def test_label_studio_paths_are_fetched_with_its_token(web: str) -> None:
    reader = _reader(web)
    assert reader.read("/data/upload/3/a.png") == PAYLOAD
    assert reader.read(f"{web}/data/upload/3/a.png") == PAYLOAD  # its own absolute URL too
    assert reader.read("upload/3/a.png") == PAYLOAD  # the SDK's short form
    assert reader.read("/data/local-files/?d=x/a.png") == PAYLOAD  # no document root: asks Label Studio
    assert _reader(f"{web}/").read(f"{web}/data/upload/3/a.png") == PAYLOAD
    assert _Handler.seen[0] == ("/data/upload/3/a.png", f"Token {LS_TOKEN}")
    assert all(auth == f"Token {LS_TOKEN}" for _, auth in _Handler.seen)


def test_cloud_uris_are_signed_by_label_studio_and_the_token_stays_there(web: str) -> None:
    # The storage here is on this machine (localhost), so it must be allowed like any internal host.
    assert _reader(web, image_hosts=("localhost",)).read("s3://bucket/dir/key.png", task_id=12) == PAYLOAD
    (signing, auth), (storage, storage_auth) = _Handler.seen
    assert signing.startswith("/tasks/12/presign/?fileuri=") and auth == f"Token {LS_TOKEN}"
    assert storage == "/bucket/key.png?signature=x" and storage_auth is None
    with pytest.raises(ValidationError, match="task's id"):
        _reader(web).read("s3://bucket/key.png", task_id=None)


def test_other_hosts_only_when_allowed_and_without_the_token(web: str) -> None:
    public = _Handler.storage + "/public/a.png"
    with pytest.raises(ValidationError, match="--image-host"):
        _reader(web).read(public)
    assert _Handler.seen == []  # refused before any request
    assert _reader(web, image_hosts=("localhost",)).read(public) == PAYLOAD
    assert _Handler.seen == [("/public/a.png", None)]


def test_redirects_to_internal_addresses_are_refused_unless_allowed(web: str) -> None:
    with pytest.raises(UnsafeURLError, match=r"localhost:\d+/bucket/key.png: not fetched.*--image-host"):
        _reader(web).read("s3://bucket/dir/key.png", task_id=12)  # the signed URL is on localhost
    assert [path for path, _ in _Handler.seen] == [_Handler.seen[0][0]]  # storage never asked
    assert "signature" not in str(_Handler.seen[0])
    reader = _reader(web, image_hosts=("localhost",))
    hop = f"{_Handler.storage}/redirect?to="
    targets = [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:9/admin",  # Label Studio's host, but not its origin
        "http://[::ffff:10.0.0.1]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://2130706433/",
    ]
    for target in targets:
        _Handler.seen = []
        with pytest.raises(UnsafeURLError, match="not fetched"):
            reader.read(hop + target)
        assert len(_Handler.seen) == 1  # the redirect itself, then nothing
    tally("URLs refused by the fetch guard", len(targets) + 1)
    assert reader.read(f"{hop}{web}/data/upload/3/a.png") == PAYLOAD  # Label Studio's own origin


def test_an_allowed_private_host_still_works(web: str) -> None:
    assert _reader(None, image_hosts=("127.0.0.1",)).read(f"{web}/public/a.png") == PAYLOAD


def test_downloads_stop_at_the_size_limit_and_errors_say_why(web: str) -> None:
    with pytest.raises(ValidationError, match="1000 byte limit"):
        _reader(web).read("/data/upload/big.png")
    with pytest.raises(StorageError, match="HTTP 404"):
        _reader(web).read("/data/upload/3/missing.png")
    with pytest.raises(StorageError, match="cannot download"):
        _reader("http://127.0.0.1:9").read("/data/upload/3/a.png")


@pytest.mark.parametrize(
    ("url", "error", "says"),
    [
        ("file:///etc/passwd", ValidationError, "scheme 'file'"),
        ("ftp://example.com/a.png", ValidationError, "scheme 'ftp'"),
        ("http://169.254.169.254/latest", ValidationError, "--image-host"),
        ("//evil.example/a.png", ValidationError, "scheme ''"),
        ("/admin/secret", ValidationError, "not a Label Studio media path"),
        ("/data/local-files/?d=../../etc/passwd", UnsafePathError, "'..'"),
        ("/data/local-files/?d=%2Fetc%2Fpasswd", UnsafePathError, "absolute"),
        ("/data/local-files/?x=1", ValidationError, "'d' parameter"),
        ("s3://bucket/a.png", ConfigError, "--labelstudio-url"),
        ("/data/upload/3/a.png", ConfigError, "--labelstudio-url"),
        ("data:image/png;base64,%%%", ValidationError, "base64"),
        ("http://[::1/a.png", ValidationError, "malformed image URL"),  # found by fuzzing
    ],
)
def test_refused_urls(tmp_path: Path, url: str, error: type[Exception], says: str) -> None:
    with pytest.raises(error, match=says):
        _reader(None, tmp_path).read(url, task_id=1)


def test_local_files_are_read_inside_the_document_root_only(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a b").mkdir(parents=True)
    (root / "a b" / "c+d.png").write_bytes(PAYLOAD)
    (tmp_path / "secret.png").write_bytes(b"secret")
    (root / "escape.png").symlink_to(tmp_path / "secret.png")
    reader = _reader(None, root)
    assert reader.read("/data/local-files/?d=a%20b/c%2Bd.png") == PAYLOAD
    assert reader.read("/data/local-files/?d=a+b/c%2Bd.png") == PAYLOAD  # '+' is a space, as for Django
    assert reader.read("data:image/png;base64," + base64.b64encode(PAYLOAD).decode()) == PAYLOAD
    with pytest.raises(UnsafePathError, match="outside the local-files document root"):
        reader.read("/data/local-files/?d=escape.png")
    (root / "big.png").write_bytes(b"x" * 1001)
    with pytest.raises(ValidationError, match="byte limit"):
        reader.read("/data/local-files/?d=big.png")
