"""The FastAPI application: one project's models behind REST, with limits, token auth and metrics.

Errors from the library map to HTTP statuses through one table
(:func:`visionloop.core.errors.http_status_for`): a bad image or parameter is a 4xx naming
what was wrong; only the server's own faults are 5xx.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from visionloop import __version__
from visionloop.catalog import Catalog
from visionloop.catalog.browse import warm_gallery_index
from visionloop.core.errors import VisionloopError, http_status_for
from visionloop.project import Project
from visionloop.registry import project_registry
from visionloop.server.auth import TokenGuard
from visionloop.server.cvat_detector import cvat_router
from visionloop.server.dashboard_api import dashboard_api
from visionloop.server.dashboard_static import mount_dashboard, session_router
from visionloop.server.hosting import ModelHost
from visionloop.server.labelstudio_backend import health_answer, labelstudio_router
from visionloop.server.limits import BodyLimit
from visionloop.server.memory import MemoryTrimmer, limit_malloc_arenas
from visionloop.server.metrics import ServerMetrics
from visionloop.server.predicting import InferenceSlots
from visionloop.server.routes_v1 import v1_router
from visionloop.server.settings import ServerSettings
from visionloop.tasks.onnx_session import available_cores

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(project: Project, settings: ServerSettings | None = None) -> FastAPI:
    """The server for ``project``; the catalog opens now and closes when the app shuts down."""
    settings = settings or ServerSettings()
    catalog = project.open_catalog()
    registry = project_registry(project, catalog)
    host = ModelHost(
        registry, settings.runtime, settings.poll_seconds, settings.loaded_versions, settings.spin
    )
    metrics = ServerMetrics()
    guard = TokenGuard(settings.token)
    slots = InferenceSlots(available_cores(), metrics)

    trimmer = MemoryTrimmer()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        limit_malloc_arenas()  # before the request threads exist: they would each get an arena
        host.start()
        trimmer.start()
        threading.Thread(target=_warm, args=(catalog,), name="gallery-index", daemon=True).start()
        try:
            yield
        finally:
            trimmer.stop()
            host.stop()
            catalog.close()

    app = FastAPI(
        title="visionloop",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # no third-party scripts pulled into a local server's pages
        redoc_url=None,
    )
    app.state.settings, app.state.host, app.state.registry, app.state.guard = settings, host, registry, guard
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(metrics.middleware)

    @app.exception_handler(VisionloopError)
    async def library_error(_: Request, exc: VisionloopError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=http_status_for(exc))

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(guard.reader)])
    def prometheus() -> Response:
        metrics.swaps.set(host.swaps)
        metrics.loaded.set(len(host.loaded()))
        return metrics.exposition()

    app.include_router(v1_router(host, registry, settings, slots, guard))
    app.include_router(session_router(guard))
    app.include_router(dashboard_api(project, catalog, registry), dependencies=[Depends(guard.reader)])
    mount_dashboard(app, lambda: health_answer(settings))
    app.include_router(cvat_router(host, settings, slots, guard))
    app.include_router(labelstudio_router(host, registry, settings, slots, guard))
    return app


def _warm(catalog: Catalog) -> None:
    """Build the gallery's filter index off the request path; a failure only costs the first
    filtered page its speed, so it is logged, not raised."""
    try:
        warm_gallery_index(catalog)
    except Exception:
        logger.debug("warming the gallery index failed", exc_info=True)
