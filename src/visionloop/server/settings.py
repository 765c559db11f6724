"""How a server runs: where it listens, what it serves, and the limits it holds requests to."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from visionloop.imaging.probe import DEFAULT_MAX_PIXELS

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ServerSettings", "new_token"]

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


def new_token() -> str:
    """A random bearer token, for a server started without one."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ServerSettings:
    """``token`` guards every route but health. ``model``: the alias or version
    ``/v1/predict`` uses when a request names none. ``poll_seconds``: how often aliases are
    re-read, so a promotion reaches the served model without a restart. ``runtime``: ``auto``
    (ONNX Runtime when the version has a current export), ``onnx`` or ``torch``. ``spin``: ONNX
    Runtime's idle threads spin for the next request (lowest single-request latency) instead of
    sleeping (more throughput when requests arrive concurrently; measured on 2 cores, 640x480
    JPEGs at 224 px: 83 vs 95 answers/s for 50 clients, p50 11.4 vs 17.3 ms one at a time).

    Label Studio ML backend: task images are fetched from ``labelstudio_url`` with
    ``labelstudio_token`` (a legacy API token, sent as ``Authorization: Token``), or read from
    ``labelstudio_files`` (Label Studio's local-files document root) when it holds them.
    ``image_hosts``: other hosts whose http(s) image URLs may be fetched (without the token);
    any other URL in a task is refused. ``fetch_timeout_seconds`` bounds each download."""

    token: str = field(default_factory=new_token, repr=False)
    host: str = "127.0.0.1"
    port: int = 8000
    model: str = "production"
    runtime: str = "auto"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_images: int = 64
    poll_seconds: float = 1.0
    loaded_versions: int = 3
    spin: bool = False
    labelstudio_url: str | None = None
    labelstudio_token: str | None = field(default=None, repr=False)
    labelstudio_files: Path | None = None
    image_hosts: tuple[str, ...] = ()
    fetch_timeout_seconds: float = 30.0
