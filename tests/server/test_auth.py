"""The Authorization header parser: every form a client sends, and headers that carry nothing."""

from __future__ import annotations

import base64

import pytest

from visionloop.server.auth import presented_token


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("token  abc ", "abc"),
        ("Basic " + base64.b64encode(b"user:abc").decode(), "abc"),
        ("Basic " + base64.b64encode(b"user:").decode(), None),
        ("Basic not-base64!", None),
        ("Basic " + base64.b64encode(b"\xff:abc").decode(), None),
        # Found by fuzzing: non-ASCII text made base64 raise a plain ValueError (a 500).
        ("Basic é", None),
        ("Bearer", None),
        ("Digest abc", None),
        (None, None),
    ],
)
def test_presented_token(header: str | None, token: str | None) -> None:
    assert presented_token(header) == token
