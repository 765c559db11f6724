"""``visionloop serve`` as a real process: the whole path ends with the server answering from the
newly promoted version, and again from the old one after a rollback made by another process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from servers import visionloop_server
from tiny_models import photos
from tiny_registry import classifier_project
from tiny_served import png
from visionloop.project import Project

TOKEN = "process-token-0123456789abcdef"  # noqa: S105  # a fixture token
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _cli(project: Project, *args: str) -> None:
    command = [sys.executable, "-m", "visionloop.cli", "-p", str(project.root), *args]
    environment = {**os.environ, "VISIONLOOP_USER": "ops"}
    subprocess.run(command, check=True, capture_output=True, env=environment, timeout=120)


def _served_version(url: str, image: bytes) -> int:
    headers = {"Content-Type": "image/png", **AUTH}
    answer = httpx.post(f"{url}/v1/predict", content=image, headers=headers, timeout=30)
    answer.raise_for_status()
    return int(answer.json()["model"]["version"])


def _wait_for(url: str, image: bytes, version: int) -> None:
    deadline = time.monotonic() + 20
    while _served_version(url, image) != version:
        assert time.monotonic() < deadline, f"the server did not move to v{version}"
        time.sleep(0.1)


@pytest.mark.slow
def test_the_server_follows_promotions_and_rollbacks_made_elsewhere(tmp_path: Path) -> None:
    project = classifier_project(tmp_path, approved=(1,))
    image = png(photos(1)[0])
    with visionloop_server(project.root, TOKEN, tmp_path / "serve.log", "--poll", "0.2") as url:
        assert _served_version(url, image) == 1
        _cli(project, "models", "approve", "v2", "--reason", "canary fine")
        _cli(project, "models", "promote", "v2", "--to", "production")
        _wait_for(url, image, 2)
        _cli(project, "models", "rollback", "production", "--reason", "error rate")
        _wait_for(url, image, 1)
        denied = httpx.post(f"{url}/v1/aliases/production/rollback", json={}, timeout=10)
        assert denied.status_code == 401
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 401
        metrics = httpx.get(f"{url}/metrics", headers=AUTH, timeout=10).text
        assert "visionloop_alias_moves 2.0" in metrics
