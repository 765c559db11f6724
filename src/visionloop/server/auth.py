"""The server's token: every route but health needs it.

Accepted forms: ``Authorization: Bearer <token>``, ``Authorization: Token <token>`` (how Label
Studio's API clients send one) and HTTP Basic with the token as password (all Label Studio can
send to an ML backend). Compared in constant time.

A browser cannot put a header on ``<img src>``, so the dashboard signs in once
(``POST /api/session`` with the token) and gets an HttpOnly, SameSite=Strict cookie holding a
value derived from the token (never the token itself). The cookie opens the routes that only
read; routes that change state (promote, approve, roll back) take the header alone, so a page
on another site cannot make a signed-in browser change anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from fastapi import HTTPException, Request, status

__all__ = ["SESSION_COOKIE", "TokenGuard", "presented_token"]

SESSION_COOKIE = "visionloop_session"


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
        except ValueError:  # binascii.Error, UnicodeDecodeError, or text that is not ASCII at all
            return None
        return decoded.partition(":")[2] or None
    return None


class TokenGuard:
    """FastAPI dependencies refusing requests without the server's token (401, never a hint):
    the guard itself takes the header only (state changes); :attr:`reader` also takes the
    dashboard's session cookie (reads)."""

    def __init__(self, token: str) -> None:
        if len(token) < 16:
            raise ValueError("a server token needs at least 16 characters")
        self._token = token.encode("utf-8")
        self.session_value = hmac.new(
            self._token, b"visionloop dashboard session", hashlib.sha256
        ).hexdigest()

    def matches(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode("utf-8"), self._token)

    def __call__(self, request: Request) -> None:
        if not self.matches(presented_token(request.headers.get("authorization"))):
            raise _refusal(
                "this route changes state: send the server's token (Authorization: Bearer <token>)"
            )

    def reader(self, request: Request) -> None:
        if self.matches(presented_token(request.headers.get("authorization"))):
            return
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is None or not hmac.compare_digest(cookie.encode("utf-8"), self.session_value.encode()):
            raise _refusal(
                "send the server's token (Authorization: Bearer <token>) or sign in on the dashboard"
            )


def _refusal(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})
