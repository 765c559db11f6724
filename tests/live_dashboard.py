"""A real browser (Debian's Chromium through Playwright) and a live server for the dashboard's
end-to-end tests, and where their screenshots go."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from visionloop.project import Project
from visionloop.server import ServerSettings, create_app

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots" / "dashboard"
TOKEN = "dashboard-token-0123456789"  # noqa: S105  # a fixture token
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def live_server(project: Project) -> Iterator[str]:
    """``visionloop serve``'s app under uvicorn on a free 127.0.0.1 port, in a thread."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    app = create_app(project, ServerSettings(token=TOKEN, poll_seconds=0.1))
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        missing = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):  # CI installs it (.ci/run): its absence there is a failure
            pytest.fail(missing)
        pytest.skip(missing)
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Any, base: str, *, signed_in: bool = True) -> tuple[Any, Any, list[str]]:
    """A fresh page (1280x900) that records script errors and refused loads; signed in (the
    session cookie ``POST /api/session`` hands out) unless told otherwise."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if signed_in:
        answer = context.request.post(f"{base}/api/session", data={"token": TOKEN})
        assert answer.ok, answer.status
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.base = base
    return context, page, errors


def visit(page: Any, route: str) -> None:
    page.goto(f"{page.base}/#{route}")
    page.wait_for_selector("#page[data-ready='true']")


def screenshot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
