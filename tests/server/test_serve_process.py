"""``visionloop serve`` as a real process: the whole path ends with the server answering from the
newly promoted version, and again from the old one after a rollback made by another process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from servers import visionloop_server
from tiny_models import SCHEMAS, photos
from tiny_registry import gated_model
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.registry import ModelRegistry

TOKEN = "process-token-0123456789abcdef"  # noqa: S105  # a fixture token


def _cli(project: Project, *args: str) -> None:
    command = [sys.executable, "-m", "visionloop.cli", "-p", str(project.root), *args]
    environment = {**os.environ, "VISIONLOOP_USER": "ops"}
    subprocess.run(command, check=True, capture_output=True, env=environment, timeout=120)


def _served_version(url: str, image: bytes) -> int:
    answer = httpx.post(f"{url}/v1/predict", content=image, headers={"Content-Type": "image/png"}, timeout=30)
    answer.raise_for_status()
    return int(answer.json()["model"]["version"])


def _wait_for(url: str, image: bytes, version: int) -> None:
    deadline = time.monotonic() + 20
    while _served_version(url, image) != version:
        assert time.monotonic() < deadline, f"the server did not move to v{version}"
        time.sleep(0.1)


@pytest.mark.slow
def test_the_server_follows_promotions_and_rollbacks_made_elsewhere(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p", ProjectConfig(name="served", labels=SCHEMAS["classifier"]))
    with project.open_catalog() as catalog:
        registry = ModelRegistry(catalog, project.root)
        for number in (1, 2):
            registry.register(gated_model(registry, f"m{number}", seed=number).folder, "ana")
        registry.approve(1, "rui", "ok")
        registry.promote(1, "production", "ana")
    buffer = io.BytesIO()
    Image.fromarray(photos(1)[0]).save(buffer, format="PNG")
    image = buffer.getvalue()
    with visionloop_server(project.root, TOKEN, tmp_path / "serve.log", "--poll", "0.2") as url:
        assert _served_version(url, image) == 1
        _cli(project, "models", "approve", "v2", "--reason", "canary fine")
        _cli(project, "models", "promote", "v2", "--to", "production")
        _wait_for(url, image, 2)
        _cli(project, "models", "rollback", "production", "--reason", "error rate")
        _wait_for(url, image, 1)
        denied = httpx.post(f"{url}/v1/aliases/production/rollback", json={}, timeout=10)
        assert denied.status_code == 401
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert "visionloop_alias_moves 2.0" in metrics
