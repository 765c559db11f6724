"""Prometheus metrics of one server: requests by route and status, latency, images, model swaps."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["ServerMetrics"]


class ServerMetrics:
    """Its own registry, so two apps in one process (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "visionloop_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "visionloop_request_seconds",
            "Time to answer a request",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.images = Counter(
            "visionloop_predicted_images", "Images predicted", ["version", "runtime"], registry=self.registry
        )
        self.swaps = Gauge(
            "visionloop_alias_moves", "Alias moves the server followed", registry=self.registry
        )
        self.loaded = Gauge("visionloop_loaded_versions", "Model versions in memory", registry=self.registry)

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        self.requests.labels(name, request.method, str(response.status_code)).inc()
        self.latency.labels(name).observe(time.perf_counter() - started)
        return response

    def exposition(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
