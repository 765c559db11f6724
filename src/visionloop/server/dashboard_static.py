"""The dashboard's page and assets: ``/`` and ``/static/``, bundled with the package (no CDN),
served with a Content-Security-Policy that allows nothing but this server's own files.

``GET /`` is shared: a browser (asking for HTML) gets the dashboard, any other client the
server's health answer, which is what Label Studio's ML-backend contract expects there. The
page and its assets hold no project data, so they are open; everything they show comes from
``/api``, which needs the token or the session cookie ``POST /api/session`` hands out for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.staticfiles import StaticFiles

from visionloop.server.auth import SESSION_COOKIE, TokenGuard

__all__ = ["CONTENT_SECURITY_POLICY", "mount_dashboard", "session_router"]

STATIC = Path(__file__).with_name("static")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=1024)


def session_router(guard: TokenGuard) -> APIRouter:
    """Sign the browser in (the token in, an HttpOnly session cookie out) and out again."""
    router = APIRouter(prefix="/api/session", include_in_schema=False)

    @router.post("")
    def sign_in(body: SignIn, response: Response) -> dict[str, bool]:
        if not guard.matches(body.token):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "that is not this server's token")
        response.set_cookie(SESSION_COOKIE, guard.session_value, httponly=True, samesite="strict", path="/")
        return {"signed_in": True}

    @router.delete("")
    def sign_out(response: Response) -> dict[str, bool]:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return {"signed_in": False}

    return router


def mount_dashboard(app: FastAPI, health: Callable[[], dict[str, Any]]) -> None:
    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.url.path == "/" or request.url.path.startswith("/static/"):
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.get("/", include_in_schema=False, response_model=None)
    def index(request: Request) -> FileResponse | dict[str, Any]:
        if "text/html" in request.headers.get("accept", ""):
            return FileResponse(STATIC / "index.html", media_type="text/html")
        return health()

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
