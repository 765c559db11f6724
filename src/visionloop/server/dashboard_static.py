"""The dashboard's page and assets: ``/`` and ``/static/``, bundled with the package (no CDN),
served with a Content-Security-Policy that allows nothing but this server's own files.

``GET /`` is shared: a browser (asking for HTML) gets the dashboard, any other client the
server's health answer, which is what Label Studio's ML-backend contract expects there."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

__all__ = ["CONTENT_SECURITY_POLICY", "mount_dashboard"]

STATIC = Path(__file__).with_name("static")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


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
