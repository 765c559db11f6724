"""``visionloop serve``: the project's registered models behind a local REST server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from visionloop.cli.context import current_project
from visionloop.cli.output import stderr
from visionloop.core.errors import MissingDependencyError

HELP = """Serve the project's registered models over HTTP (FastAPI + uvicorn).

POST /v1/predict takes one or many images (multipart files, JSON with base64 strings, or a raw
image body) and answers core JSON labels from the --model alias or version, or the one a
request names (?model=v3). The served model follows its alias: promote or roll back and the
server switches within --poll seconds, loading the new version before it moves, so no request
is dropped. GET /v1/models lists versions, GET /v1/health and GET /metrics (Prometheus) report
on the server. Every route but health needs the token: 'Authorization: Bearer TOKEN' (the
dashboard at / asks for it once). Without --token (or $VISIONLOOP_TOKEN) a random one is made and
printed. Binds 127.0.0.1 unless told otherwise. Needs the serve extra: pip install
'visionloop\\[serve]'.

The same server is a Label Studio ML backend (connect it in the project's Model settings with
this server's URL; Basic auth, any user, the token as password) and a CVAT detector function
(POST /v1/cvat/detector). Label Studio tasks name their images by URL: give --labelstudio-url
and --labelstudio-token so they can be downloaded, or --labelstudio-files (Label Studio's
local-files document root) to read local files directly. Other image hosts are refused unless
named with --image-host.
"""


def serve(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Option(help="Alias or version answering requests that name none.")
    ] = "production",
    host: Annotated[
        str, typer.Option(help="Address to bind; other than 127.0.0.1 exposes the server.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(help="Token every route but health needs (default: $VISIONLOOP_TOKEN or a new one)."),
    ] = None,
    runtime: Annotated[str, typer.Option(help="auto (ONNX Runtime when exported), onnx or torch.")] = "auto",
    max_body_mb: Annotated[float, typer.Option(min=0.01, help="Largest request body, in MB.")] = 32.0,
    max_images: Annotated[int, typer.Option(min=1, max=1024, help="Most images per request.")] = 64,
    poll: Annotated[float, typer.Option(min=0.05, help="Seconds between re-reads of the aliases.")] = 1.0,
    spin: Annotated[
        bool,
        typer.Option(
            "--spin/--no-spin",
            help="ONNX Runtime threads spin between requests: lower latency one at a time, "
            "less throughput under concurrent load.",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    labelstudio_url: Annotated[
        str | None,
        typer.Option(
            envvar=["VISIONLOOP_LABELSTUDIO_URL", "LABEL_STUDIO_URL"],
            help="Label Studio's URL, where task images are downloaded from.",
        ),
    ] = None,
    labelstudio_token: Annotated[
        str | None,
        typer.Option(
            envvar=["VISIONLOOP_LABELSTUDIO_TOKEN", "LABEL_STUDIO_API_KEY"],
            help="Label Studio API token (legacy token) for those downloads.",
        ),
    ] = None,
    labelstudio_files: Annotated[
        Path | None,
        typer.Option(
            envvar="LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT",
            file_okay=False,
            exists=True,
            help="Label Studio's local-files document root: local-files images are read from it.",
        ),
    ] = None,
    image_host: Annotated[
        list[str] | None,
        typer.Option(help="Another host whose http(s) image URLs tasks may name (repeatable)."),
    ] = None,
) -> None:
    try:
        import uvicorn

        from visionloop.server import ServerSettings, create_app
        from visionloop.server.settings import new_token
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "fastapi", "serve", "visionloop serve") from exc

    project = current_project(ctx)
    chosen = token or os.environ.get("VISIONLOOP_TOKEN")
    if chosen is None:
        chosen = new_token()
        stderr.print(
            f"server token (every route but health needs it): [bold]{chosen}[/] "
            "(set $VISIONLOOP_TOKEN to choose one)"
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        stderr.print(f"[yellow]warning:[/] listening on {host}: other machines can reach this server")
    settings = ServerSettings(
        token=chosen,
        host=host,
        port=port,
        model=model,
        runtime=runtime,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_images=max_images,
        poll_seconds=poll,
        spin=spin,
        labelstudio_url=_http_url(labelstudio_url),
        labelstudio_token=labelstudio_token,
        labelstudio_files=labelstudio_files,
        image_hosts=tuple(image_host or ()),
    )
    uvicorn.run(create_app(project, settings), host=host, port=port, log_level=log_level)


def _http_url(url: str | None) -> str | None:
    if url is not None and not url.lower().startswith(("http://", "https://")):
        raise typer.BadParameter(f"expected an http(s) URL, got {url!r}", param_hint="--labelstudio-url")
    return url
