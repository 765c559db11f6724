"""What the server and the registry parse from requests: the Authorization header, image URLs
in Label Studio tasks, base64 images, URL-guard host lists, model and alias references and
relative paths."""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
from pathlib import Path

from hypothesis import strategies as st
from starlette.requests import Request

from fuzz.harness import fuzz_test, returns_or_refuses
from fuzz.mutations import mutate_tree, odd_strings, odd_values
from images import rgb_png
from visionloop.pipelines.sources import _records
from visionloop.registry.records import parse_version, validate_alias
from visionloop.server.auth import presented_token
from visionloop.server.cvat_detector import _threshold
from visionloop.server.images import decode_base64, decode_request_image
from visionloop.server.labelstudio_backend import _ids, _project_id
from visionloop.server.ls_media import TaskImageReader
from visionloop.server.predicting import _base64_entry, json_object
from visionloop.server.settings import ServerSettings
from visionloop.storage import safe_relative_path
from visionloop.storage.urlguard import URLGuard

CHEAP = 5.0
_PIECES = ["..", "%2e%2e", "%252e", "/", "\\", "?", "#", "&", "=", "@", ":", "[", "]", "%", "%00", "é", " "]


def _pieces() -> st.SearchStrategy[str]:
    """Text built from URL and path syntax, so the parsers' branches are reached."""
    return st.lists(st.sampled_from(_PIECES) | odd_strings(), max_size=6).map("".join)


@fuzz_test(scale=CHEAP)
def test_authorization_header(data: st.DataObject) -> None:
    """A token string or ``None``, never an exception (the guard then answers 401)."""
    scheme = data.draw(st.sampled_from(["Bearer", "token", "Basic", "basic", "", "Digest"]), label="scheme")
    secret = data.draw(st.binary(max_size=24), label="secret")
    value = data.draw(
        st.sampled_from([base64.b64encode(secret).decode(), secret.decode("latin-1")]) | odd_strings(),
        "value",
    )
    header = data.draw(st.sampled_from([f"{scheme} {value}", value, f"{scheme}{value}"]), label="header")
    token = presented_token(header)
    assert token is None or (isinstance(token, str) and token)


@fuzz_test(scale=CHEAP)
def test_label_studio_task_image_urls(data: st.DataObject) -> None:
    """Task image URLs: bytes from the local-files root or from Label Studio, or a project error.
    Downloads are stubbed out: this is about parsing, the guard has its own harness below."""
    scheme = data.draw(
        st.sampled_from(
            ["http://ls:8080", "https://img.example", "s3://b", "gs://b", "data:image/png;base64,", ""]
        ),
        label="scheme",
    )
    prefix = data.draw(
        st.sampled_from(["/data/local-files/?d=", "/data/upload/", "/upload/", "/tasks/", "", "/ls/data/"]),
        label="prefix",
    )
    url = data.draw(
        st.sampled_from([scheme + prefix]).flatmap(lambda head: _pieces().map(head.__add__)), "url"
    )
    task_id = data.draw(st.sampled_from([None, 3, True, "3", -(2**70)]), label="task id")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "files"
        (root / "d").mkdir(parents=True)
        (root / "d/a.png").write_bytes(b"png")
        settings = ServerSettings(
            token="t" * 32,
            labelstudio_url="http://ls:8080/ls",
            labelstudio_files=root,
            image_hosts=("img.example",),
        )
        reader = TaskImageReader(settings)
        fetched: list[str] = []
        reader._fetch = lambda where, token: fetched.append(where) or b"fetched"  # type: ignore[method-assign]
        returns_or_refuses(reader.read, url, task_id)
        assert all(where.startswith(("http://ls:8080/ls/", "https://img.example")) for where in fetched), (
            fetched
        )


@fuzz_test(scale=CHEAP)
def test_url_guard(data: st.DataObject) -> None:
    """``--image-host`` entries and the URLs checked against them (names resolve from a table)."""
    allowed = data.draw(
        st.lists(_pieces() | st.sampled_from(["10.0.0.0/8", "http://[::1]:99", "h:x"]), max_size=3)
    )
    url = data.draw(
        st.sampled_from(["http://", "https://", "ftp://", ""]).flatmap(lambda s: _pieces().map(s.__add__))
    )
    address = data.draw(
        st.sampled_from(["93.184.216.34", "127.0.0.1", "::ffff:10.0.0.1", "fe80::1"]), "address"
    )
    guard = returns_or_refuses(URLGuard, allowed, resolve=lambda host, port: [address])
    if guard is not None:
        returns_or_refuses(guard.check, url)


@fuzz_test(scale=CHEAP)
def test_base64_request_images(data: st.DataObject) -> None:
    """``{"image": "<base64>"}`` bodies: decoded pixels or a ``ValidationError`` naming the image."""
    raw = data.draw(st.sampled_from([rgb_png(5, 4), b""]) | st.binary(max_size=64), label="raw")
    text = data.draw(
        st.sampled_from(
            [base64.b64encode(raw).decode(), "data:image/png;base64," + base64.b64encode(raw).decode()]
        )
        | odd_strings(),
        label="text",
    )
    decoded = returns_or_refuses(decode_base64, text, "image 0")
    if decoded is not None:
        image = returns_or_refuses(decode_request_image, decoded, "image 0", 10_000)
        assert image is None or image.pixels.ndim == 3


@fuzz_test(scale=CHEAP)
def test_references_aliases_and_relative_paths(data: st.DataObject) -> None:
    """``v3``/``production`` model references, alias names and user-given relative paths."""
    text = data.draw(_pieces() | st.from_regex(r"v?[0-9]{1,12}", fullmatch=True), label="text")
    number = parse_version(text)
    assert number is None or number >= 1
    alias = returns_or_refuses(validate_alias, text)
    assert alias is None or parse_version(alias) is None
    relative = returns_or_refuses(safe_relative_path, text)
    assert relative is None or (".." not in relative.split("/") and not relative.startswith("/"))


@fuzz_test(scale=CHEAP)
def test_queue_trigger_messages(data: st.DataObject) -> None:
    """SQS/SNS message bodies of a queue trigger: the object records in them, or none at all
    (a message that is not an event is skipped, never fatal to the trigger loop)."""
    record = {"s3": {"bucket": {"name": "b"}, "object": {"key": "a.jpg"}}}
    event = {"Records": [record]}
    body = data.draw(
        st.sampled_from([json.dumps(event), json.dumps({"Message": json.dumps(event)}), "[" * 5_000])
        | st.builds(lambda d: json.dumps(mutate_tree(d, event)), st.data())
        | st.text(max_size=40),
        label="body",
    )
    records = _records(body)
    assert isinstance(records, list) and all(isinstance(r, dict) for r in records)


@fuzz_test(scale=CHEAP)
def test_json_request_bodies(data: st.DataObject) -> None:
    """Request bodies of /v1/predict, the CVAT detector and the Label Studio backend: the JSON
    object, or a ``ValidationError`` (a 422); then the fields those routes read from it."""
    body = data.draw(
        st.sampled_from([b'{"images": ["aGk="], "threshold": 0.5}', b"[" * 100_000, b'{"a": NaN}', b"\xff"])
        | st.builds(lambda d: json.dumps(d.draw(odd_values())).encode(), st.data())
        | st.binary(max_size=40),
        label="body",
    )

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    document = returns_or_refuses(asyncio.run, json_object(request))
    if document is None:
        return
    value = data.draw(odd_values(), label="field")
    returns_or_refuses(_threshold, value)
    returns_or_refuses(_base64_entry, value, 0)
    _ids(value)
    assert isinstance(_project_id(value), str)
