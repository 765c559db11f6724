"""JSON request bodies: an object, or a ValidationError (422) saying why; never a 500."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from visionloop.core.errors import ValidationError
from visionloop.server.predicting import json_object


def _body(raw: bytes) -> dict[str, object]:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": raw, "more_body": False}

    return asyncio.run(json_object(Request({"type": "http", "method": "POST", "headers": []}, receive)))


def test_an_object_is_returned() -> None:
    assert _body(b'{"images": []}') == {"images": []}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"{", "not valid JSON"),
        (b"\xff", "not valid JSON"),
        (b"[1]", "must be an object"),
        (b"[" * 100_000, "nested too deeply"),  # found by fuzzing: RecursionError escaped (a 500)
    ],
)
def test_bad_bodies_are_validation_errors(raw: bytes, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        _body(raw)
