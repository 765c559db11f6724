"""Task images for the Label Studio ML backend: which image URLs may be read, and reading them
within a size limit and timeouts.

A task names its image by URL, and whoever may call ``/predict`` (anyone holding the token, or
a Label Studio user whose task data is not vetted) would otherwise make the server request
internal addresses or read its files. Accepted:

- ``/data/local-files/?d=<path>``: read from ``labelstudio_files`` (Label Studio's local-files
  document root) when configured and the path, resolved (links included), lies inside it and
  exists; else fetched from Label Studio;
- ``/data/upload/...``, ``/storage-data/...`` and other Label Studio paths, and http(s) URLs on
  ``labelstudio_url`` itself: fetched from ``labelstudio_url`` with ``labelstudio_token``;
- ``s3://``, ``gs://``, ``azure-blob://``: through Label Studio, which signs them
  (``/tasks/<id>/presign/?fileuri=<base64>``, followed to the storage without the token);
- http(s) URLs on a host listed in ``image_hosts`` (no token sent);
- ``data:image/...;base64,...`` inline images.

Anything else is refused. Every request, and every redirect it follows, goes only to public
addresses (:class:`~visionloop.storage.urlguard.URLGuard`) unless its host is Label Studio's or
one of ``image_hosts``, which configuration trusts (so Label Studio on 127.0.0.1 still works).
Downloads stop at ``max_body_bytes`` and ``fetch_timeout_seconds``.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
from http.client import HTTPMessage
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, quote, urlsplit

from visionloop.core.errors import ConfigError, StorageError, UnsafePathError, ValidationError
from visionloop.server.images import decode_base64
from visionloop.server.settings import ServerSettings
from visionloop.storage import safe_relative_path
from visionloop.storage.urlguard import URLGuard

__all__ = ["TaskImageReader"]

_CLOUD_SCHEMES = ("s3", "gs", "azure-blob")
_LABEL_STUDIO_PATHS = ("/data/", "/storage-data/", "/tasks/", "/projects/")
_CHUNK = 1 << 16
_REDIRECTS = 5


class TaskImageReader:
    """Reads the images Label Studio tasks name (see the module docstring for what is allowed)."""

    def __init__(self, settings: ServerSettings) -> None:
        self.limit = settings.max_body_bytes
        self.timeout = settings.fetch_timeout_seconds
        self.token = settings.labelstudio_token
        self.base = settings.labelstudio_url.rstrip("/") if settings.labelstudio_url else None
        self.files = settings.labelstudio_files.resolve() if settings.labelstudio_files else None
        self.hosts = {host.lower() for host in settings.image_hosts}
        trusted = [*self.hosts, *([self.base] if self.base else [])]  # Label Studio: its origin only
        self.guard = URLGuard(trusted, hint="allow its host with --image-host")
        self._opener = _opener(self.guard)

    def read(self, url: str, task_id: int | None = None) -> bytes:
        if not isinstance(url, str) or not url:
            raise ValidationError("the task has no image URL")
        if url.startswith("data:"):
            return decode_base64(url, "inline image")
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # e.g. an unclosed '[' in the host
            raise ValidationError(f"{_shown(url)}: malformed image URL ({exc})") from exc
        scheme = parts.scheme.lower()
        if scheme in _CLOUD_SCHEMES:
            if not isinstance(task_id, int) or isinstance(task_id, bool):
                raise ValidationError(f"{url}: a cloud storage URL needs the task's id to be signed")
            encoded = base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii")
            return self._from_label_studio(f"/tasks/{task_id}/presign/?fileuri={quote(encoded)}", url)
        if scheme in ("http", "https"):
            if self.base is not None and _origin(url) == _origin(self.base):
                prefix = urlsplit(self.base).path.rstrip("/")  # Label Studio served under a path
                path = (
                    parts.path[len(prefix) :]
                    if prefix and parts.path.startswith(f"{prefix}/")
                    else parts.path
                )
                return self._label_studio_path(path, parts.query, url)
            if (parts.hostname or "").lower() in self.hosts:
                return self._fetch(url, None)
            raise ValidationError(
                f"{url}: not fetched: the host is neither Label Studio's (--labelstudio-url) nor one "
                "allowed with --image-host"
            )
        if not scheme and not parts.netloc:
            path = parts.path if parts.path.startswith("/") else f"/{parts.path}"
            if path.startswith("/upload/"):
                path = f"/data{path}"  # the SDK's short form of an uploaded file
            return self._label_studio_path(path, parts.query, url)
        raise ValidationError(f"{url}: unsupported image URL scheme {scheme!r}")

    def _label_studio_path(self, path: str, query: str, url: str) -> bytes:
        if path.rstrip("/") == "/data/local-files":
            local = self._local_file(query, url)
            if local is not None:
                return local
        elif not path.startswith(_LABEL_STUDIO_PATHS):
            raise ValidationError(f"{url}: not a Label Studio media path")
        return self._from_label_studio(f"{path}?{query}" if query else path, url)

    def _local_file(self, query: str, url: str) -> bytes | None:
        """The file under the document root, or ``None`` when there is no root or no such file
        (Label Studio may still serve it). Paths leaving the root are refused."""
        names = parse_qs(query).get("d")
        if not names:
            raise ValidationError(f"{url}: a local-files URL needs a 'd' parameter")
        if self.files is None:
            return None
        relative = safe_relative_path(names[0])
        try:
            path = (self.files / relative).resolve()
            if not path.is_relative_to(self.files):
                raise UnsafePathError(f"{url}: the path resolves outside the local-files document root")
            if not path.is_file():
                return None
            return _read_file(path, self.limit)
        except (OSError, RuntimeError) as exc:  # a name too long for the file system, a link loop
            raise ValidationError(f"{url[:200]}: cannot read the local file: {exc}"[:400]) from exc

    def _from_label_studio(self, path: str, url: str) -> bytes:
        if self.base is None:
            raise ConfigError(
                f"{url} is served by Label Studio: start 'visionloop serve' with --labelstudio-url and "
                "--labelstudio-token (or --labelstudio-files for local files)"
            )
        return self._fetch(f"{self.base}{path}", self.token)

    def _fetch(self, url: str, token: str | None) -> bytes:
        self.guard.check(url)
        request = urllib.request.Request(url, headers={"User-Agent": "visionloop"})  # noqa: S310 - http(s) only, checked above
        if token:
            # Unredirected: a presigned redirect to the storage must not carry Label Studio's token.
            request.add_unredirected_header("Authorization", f"Token {token}")
        deadline = time.monotonic() + self.timeout
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > self.limit:
                    raise ValidationError(f"{_shown(url)}: the image is over the {self.limit} byte limit")
                chunks, size = [], 0
                while chunk := response.read(_CHUNK):
                    size += len(chunk)
                    if size > self.limit:
                        raise ValidationError(f"{_shown(url)}: the image is over the {self.limit} byte limit")
                    if time.monotonic() > deadline:
                        raise StorageError(f"{_shown(url)}: download took over {self.timeout:g} s")
                    chunks.append(chunk)
        except urllib.error.HTTPError as exc:
            hint = " (check --labelstudio-token)" if exc.code in (401, 403) and token else ""
            raise StorageError(f"{_shown(url)}: HTTP {exc.code} {exc.reason}{hint}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise StorageError(f"{_shown(url)}: cannot download: {exc}") from exc
        return b"".join(chunks)


def _opener(guard: URLGuard) -> urllib.request.OpenerDirector:
    """http(s) only (no file://, no ftp://, even through a redirect), proxies from the
    environment, at most ``_REDIRECTS`` redirects, each checked by ``guard``."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        _Redirects(guard),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to where the guard allows (a public address or a trusted host)."""

    max_redirections = _REDIRECTS

    def __init__(self, guard: URLGuard) -> None:
        self.guard = guard

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        self.guard.check(newurl)  # already absolute: the base class joined it
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _read_file(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValidationError(f"{path.name}: the image is over the {limit} byte limit")
    return data


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return scheme, "", None
    return scheme, (parts.hostname or "").lower(), port


def _shown(url: str) -> str:
    """The URL without its query (presigned signatures stay out of messages and logs)."""
    return url.split("?", 1)[0]
