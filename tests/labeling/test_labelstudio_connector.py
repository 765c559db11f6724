"""Push and pull against a real Label Studio: bulk tasks with predictions, no duplicates after a
crash, new model versions as new predictions, annotations back as human label versions."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import delete

from servers import LabelStudio
from tiny_projects import make_project
from visionloop.catalog.tables import labeling_tasks
from visionloop.core.errors import ConfigError, UnsafePathError
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import ProvenanceKind
from visionloop.core.schema import TaskType
from visionloop.labeling.labelstudio import LabelStudioClient, LabelStudioError, pull_annotations, push_items
from visionloop.project import Project

pytestmark = pytest.mark.labelstudio


def _project(tmp_path: Path, server: LabelStudio, task: TaskType, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    root = server.files / f"t-{uuid.uuid4().hex[:8]}"
    project = make_project(root, task, per_split=2, unlabeled=6)
    settings = project.config.labelstudio
    settings.url, settings.project_title = server.url, f"connector {root.name}"
    settings.local_files_root, settings.chunk_size = str(server.files), 4
    return project


def _pool(project: Project) -> list[int]:
    with project.open_catalog() as catalog:
        labelled = catalog.annotated_item_ids()
        return sorted(item.id for item in catalog.iter_items() if item.id not in labelled)


def _predict(project: Project, items: list[int], version: str) -> None:
    with project.open_catalog() as catalog:
        task = catalog.get_schema().task  # type: ignore[union-attr]
        if task is TaskType.CLASSIFICATION:
            entries: list[Any] = [(item, ClassLabel("left", score=0.6), 0.6) for item in items]
        else:
            boxes, scores = np.array([[4.0, 6.0, 30.0, 40.0]]), np.array([0.7])
            box = ObjectLabels(boxes=boxes, class_names=("box",), scores=scores)
            entries = [(item, box, 0.7) for item in items]
        catalog.add_predictions(version, entries)


def _client(server: LabelStudio) -> httpx.Client:
    headers = {"Authorization": f"Token {server.token}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30, trust_env=False)


def _tasks(server: LabelStudio, project_id: int) -> list[dict[str, Any]]:
    with _client(server) as client:
        body = client.get("/api/tasks", params={"project": project_id, "fields": "all", "page_size": 1000})
        tasks: list[dict[str, Any]] = body.json()["tasks"]
        return tasks


def test_push_is_bulk_idempotent_and_survives_a_crash_before_recording(
    tmp_path: Path, label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path, label_studio, TaskType.CLASSIFICATION, monkeypatch)
    pool = _pool(project)
    _predict(project, pool, "v1")
    first = push_items(project, pool)
    assert (first.created, first.already_there, first.without_prediction) == (len(pool), 0, 0)
    tasks = _tasks(label_studio, first.labelstudio_project)
    assert sorted(t["data"]["visionloop_item"] for t in tasks) == pool
    [prediction] = tasks[0]["predictions"]
    assert prediction["model_version"] == "v1" and prediction["score"] == pytest.approx(0.6)
    assert prediction["result"][0]["value"]["choices"] == ["left"]
    with _client(label_studio) as client:  # Label Studio serves the image the task names
        assert client.get(tasks[0]["data"]["image"]).status_code == 200

    again = push_items(project, pool)
    assert (again.created, again.already_there) == (0, len(pool))

    with project.open_catalog() as catalog, catalog.engine.begin() as connection:
        connection.execute(delete(labeling_tasks))  # as if the push died after Label Studio took the tasks
    resumed = push_items(project, pool)
    assert resumed.created == 0 and resumed.adopted == len(pool)
    assert len(_tasks(label_studio, first.labelstudio_project)) == len(pool)

    _predict(project, pool[:3], "v2")
    newer = push_items(project, pool)
    assert (newer.created, newer.predictions_added) == (0, 3)
    by_item = {t["data"]["visionloop_item"]: t for t in _tasks(label_studio, first.labelstudio_project)}
    assert sorted(p["model_version"] for p in by_item[pool[0]]["predictions"]) == ["v1", "v2"]
    assert [p["model_version"] for p in by_item[pool[4]]["predictions"]] == ["v1"]


def test_pull_brings_annotations_back_once_and_edits_as_new_versions(
    tmp_path: Path, label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path, label_studio, TaskType.DETECTION, monkeypatch)
    pool = _pool(project)
    _predict(project, pool, "v1")
    pushed = push_items(project, pool)
    tasks = {t["data"]["visionloop_item"]: t for t in _tasks(label_studio, pushed.labelstudio_project)}

    def box(x: float, label: str = "bar") -> list[dict[str, Any]]:
        value = {"x": x, "y": 10.0, "width": 25.0, "height": 50.0, "rotation": 0, "rectanglelabels": [label]}
        region = {"from_name": "label", "to_name": "image", "type": "rectanglelabels", "value": value}
        return [region | {"original_width": 64, "original_height": 64}]

    with _client(label_studio) as client:
        made = client.post(f"/api/tasks/{tasks[pool[0]]['id']}/annotations/", json={"result": box(10.0)})
        assert made.status_code == 201, made.text
        skipped = {"result": [], "was_cancelled": True}
        client.post(f"/api/tasks/{tasks[pool[1]]['id']}/annotations/", json=skipped)
        bad = box(10.0, "unicorn")
        client.post(f"/api/tasks/{tasks[pool[2]]['id']}/annotations/", json={"result": bad})

    report = pull_annotations(project)
    assert (report.imported, report.skipped, report.invalid) == (1, 1, 1)
    assert "unicorn" in " ".join(report.problems or [])
    with project.open_catalog() as catalog:
        [version] = catalog.annotation_history(pool[0])
    assert version.provenance.kind is ProvenanceKind.HUMAN and "@" in (version.provenance.annotator or "")
    assert isinstance(version.label, ObjectLabels)
    assert version.label.boxes.tolist() == [[6.4, 6.4, 22.4, 38.4]] and version.label.class_names == ("bar",)

    assert pull_annotations(project).imported == 0  # nothing new: a no-op

    with _client(label_studio) as client:
        edited = client.patch(f"/api/annotations/{made.json()['id']}/", json={"result": box(20.0, "box")})
        assert edited.status_code == 200, edited.text
    changed = pull_annotations(project)
    assert (changed.imported, changed.updated) == (0, 1)
    with project.open_catalog() as catalog:
        history = catalog.annotation_history(pool[0])
    assert [v.label.class_names for v in history] == [("bar",), ("box",)]  # type: ignore[union-attr]


def test_local_images_outside_the_document_root_are_refused(
    tmp_path: Path, label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    project = make_project(tmp_path, TaskType.CLASSIFICATION, per_split=1, unlabeled=1)
    project.config.labelstudio.url = label_studio.url
    project.config.labelstudio.project_title = f"outside {tmp_path.name}"
    with pytest.raises(ConfigError, match="local_files_root"):
        push_items(project, _pool(project))
    project.config.labelstudio.local_files_root = str(label_studio.files)
    with pytest.raises(UnsafePathError, match="not in a folder under"):
        push_items(project, _pool(project))
    monkeypatch.delenv("LABEL_STUDIO_API_KEY")
    with pytest.raises(ConfigError, match="LABEL_STUDIO_API_KEY"):
        push_items(project, _pool(project))


def test_the_client_retries_idempotent_requests_only() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) < 3:
            return httpx.Response(503, json={"detail": "busy"})
        return httpx.Response(200, json={"ok": True})

    client = LabelStudioClient("http://ls.invalid", "t", backoff_s=0, transport=httpx.MockTransport(handler))
    assert client.get("/api/projects") == {"ok": True} and calls == ["GET"] * 3
    calls.clear()
    with pytest.raises(LabelStudioError, match=r"503.*busy"):
        client.post("/api/projects/1/import", [])
    assert calls == ["POST"]


def test_the_commands_push_pull_and_sync(
    tmp_path: Path, label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from visionloop.cli.app import app
    from visionloop.project.config import dump_config

    project = _project(tmp_path, label_studio, TaskType.CLASSIFICATION, monkeypatch)
    (project.root / "visionloop.yaml").write_text(dump_config(project.config))
    pool = _pool(project)
    _predict(project, pool, "v1")
    runner = CliRunner()
    base = ["-p", str(project.root), "labelstudio"]
    pushed = runner.invoke(app, [*base, "push", "--unlabelled", "--json"])
    assert pushed.exit_code == 0, pushed.output
    assert json.loads(pushed.stdout)["created"] == len(pool)
    assert runner.invoke(app, [*base, "push", "--run", "nope", "--unlabelled"]).exit_code != 0
    pulled = runner.invoke(app, [*base, "pull", "--json"])
    assert pulled.exit_code == 0 and json.loads(pulled.stdout)["imported"] == 0
    synced = runner.invoke(app, [*base, "sync", "--json"])
    assert synced.exit_code == 0, synced.output
    decision = json.loads(synced.stdout)["decision"]
    assert decision["due"] is False and "waiting for 100" in decision["reason"]
