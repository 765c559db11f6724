"""Prometheus metrics of one server: requests by route and status, latency, images, model swaps."""

from __future__ import annotations

import time

from fastapi import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Plain ASGI (no per-request task or body copy): counts and times every HTTP request."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started, status = time.perf_counter(), 500

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                name = getattr(scope.get("route"), "path", "unmatched")
                self.requests.labels(name, scope["method"], str(status)).inc()
                self.latency.labels(name).observe(time.perf_counter() - started)

        return measured

    def exposition(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
