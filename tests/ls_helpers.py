"""Shared set-up for the Label Studio connector tests: a tiny project whose images Label Studio
can serve, stored predictions, and a plain HTTP client to look at what Label Studio holds."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import numpy as np
import pytest

from servers import LabelStudio
from tiny_projects import make_project
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.schema import TaskType
from visionloop.project import Project


def ls_project(
    server: LabelStudio, task: TaskType, monkeypatch: pytest.MonkeyPatch, unlabeled: int = 6
) -> Project:
    """A tiny project under Label Studio's document root, pushed in chunks of 4 tasks."""
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    root = server.files / f"t-{uuid.uuid4().hex[:8]}"
    project = make_project(root, task, per_split=2, unlabeled=unlabeled)
    settings = project.config.labelstudio
    settings.url, settings.project_title = server.url, f"connector {root.name}"
    settings.local_files_root, settings.chunk_size = str(server.files), 4
    return project


def pool(project: Project) -> list[int]:
    with project.open_catalog() as catalog:
        labelled = catalog.annotated_item_ids()
        return sorted(item.id for item in catalog.iter_items() if item.id not in labelled)


def predict(project: Project, items: list[int], version: str) -> None:
    with project.open_catalog() as catalog:
        task = catalog.get_schema().task  # type: ignore[union-attr]
        if task is TaskType.CLASSIFICATION:
            entries: list[Any] = [(item, ClassLabel("left", score=0.6), 0.6) for item in items]
        else:
            boxes, scores = np.array([[4.0, 6.0, 30.0, 40.0]]), np.array([0.7])
            box = ObjectLabels(boxes=boxes, class_names=("box",), scores=scores)
            entries = [(item, box, 0.7) for item in items]
        catalog.add_predictions(version, entries)


def http(server: LabelStudio) -> httpx.Client:
    headers = {"Authorization": f"Token {server.token}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30, trust_env=False)


def tasks(server: LabelStudio, project_id: int) -> list[dict[str, Any]]:
    with http(server) as client:
        body = client.get("/api/tasks", params={"project": project_id, "fields": "all", "page_size": 1000})
        found: list[dict[str, Any]] = body.json()["tasks"]
        return found


def tasks_by_item(server: LabelStudio, project_id: int) -> dict[int, dict[str, Any]]:
    return {task["data"]["visionloop_item"]: task for task in tasks(server, project_id)}
