"""Token checks for state-changing routes.

Accepted forms: ``Authorization: Bearer <token>``, ``Authorization: Token <token>`` (how Label
Studio's API clients send one) and HTTP Basic with the token as password (all Label Studio can
send to an ML backend). Compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi import HTTPException, Request, status

__all__ = ["TokenGuard", "presented_token"]


def presented_token(authorization: str | None) -> str | None:
    """The token in an ``Authorization`` header, or ``None`` when it carries none."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme in ("bearer", "token"):
        return value or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


class TokenGuard:
    """A FastAPI dependency refusing requests without the server's token (401, never a hint)."""

    def __init__(self, token: str) -> None:
        if len(token) < 16:
            raise ValueError("a server token needs at least 16 characters")
        self._token = token.encode("utf-8")

    def __call__(self, request: Request) -> None:
        token = presented_token(request.headers.get("authorization"))
        if token is None or not hmac.compare_digest(token.encode("utf-8"), self._token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "this route changes state: send the server's token (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
