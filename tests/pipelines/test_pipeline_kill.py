"""``model-assisted-labeling`` killed with SIGKILL at several points, resumed each time, ends exactly
where an uninterrupted run ends: the same items, model weights, predictions and selection, each
selected item pushed to a real Label Studio once, and no label written twice or lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from servers import LabelStudio
from tiny_projects import make_project
from visionloop.catalog import Catalog
from visionloop.catalog.tables import annotation_versions, predictions
from visionloop.core.schema import TaskType
from visionloop.pipelines.named import get_pipeline
from visionloop.pipelines.runner import pipeline_run, resume_pipeline, run_pipeline
from visionloop.project import Project
from visionloop.project.config import dump_config

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]

BUDGET = 6
TRAIN = {  # deterministic, so a resumed training ends with the same weights as an unbroken one
    "deterministic": True,
    "threads": 1,
    "seed": 7,
    "model": {"image_size": 32},
    "optim": {"batch_size": 2, "epochs": 2},
    "checkpoint": {"every_steps": 1},
    "early_stopping": {"patience": None},
    "augment": {"pipeline": "default"},
}
PARAMS = {"budget": BUDGET, "workers": 0, "batch_size": 2, "train": TRAIN}


def _pool(folder: Path, count: int = 14) -> Path:
    """New images to ingest, the same bytes for both projects."""
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True)
    for index in range(count):
        image = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
        image[:, : 20 if index % 2 else 40] = 220
        Image.fromarray(image).save(folder / f"new_{index:02d}.png")
    return folder


def _project(root: Path, server: LabelStudio, title: str) -> Project:
    project = make_project(root, TaskType.CLASSIFICATION, per_split=8)
    project.config.labelstudio.url = server.url
    project.config.labelstudio.project_title = title
    project.config.labelstudio.local_files_root = str(server.files)
    project.config.labelstudio.chunk_size = 1  # one task per request: a push slow enough to kill midway
    project.config.pipelines["model-assisted-labeling"] = {**PARAMS, "source": str(root / "new")}
    (project.root / "visionloop.yaml").write_text(dump_config(project.config))
    _pool(root / "new")
    return Project.load(project.root)


def _steps(catalog: Catalog, run_id: str) -> dict[str, str]:
    from visionloop.pipelines.store import read_steps

    return {step.name: step.status for step in read_steps(catalog, run_id)}


def _wait(process: subprocess.Popen[bytes], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the pipeline ended before {what}: {process.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            if condition():
                return
        except Exception:  # noqa: BLE001,S110 - the database is being written: look again
            pass
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def _cli(project: Project, *args: str) -> subprocess.Popen[bytes]:
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "visionloop.cli", "-p", str(project.root), "pipeline", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _training_checkpointed(project: Project) -> bool:
    return any(project.root.glob("runs/*/checkpoints/checkpoint.pt"))


def _state(project: Project, run_id: str, server: LabelStudio) -> dict[str, Any]:
    """What a run leaves behind, keyed by image content so two projects compare."""
    run = pipeline_run(project, run_id)
    assert run.status == "succeeded", run.to_dict()
    outputs = run.outputs
    with project.open_catalog() as catalog:
        sha = {item.id: item.sha256 for item in catalog.iter_items()}
        predicted = catalog.run_predictions(outputs["prelabel"]["run_id"])
        with catalog.engine.connect() as connection:
            versions = connection.execute(select(func.count()).select_from(annotation_versions)).scalar_one()
            rows = connection.execute(
                select(predictions.c.item_id, func.count())
                .where(predictions.c.run_id == outputs["prelabel"]["run_id"])
                .group_by(predictions.c.item_id)
            ).all()
    assert all(count == 1 for _, count in rows), "an item was predicted twice by one run"
    tasks = _label_studio_tasks(server, project.config.labelstudio.project_title or "")
    pushed = [task["data"]["visionloop_item"] for task in tasks]
    assert len(pushed) == len(set(pushed)), "an item was pushed twice"
    assert all(len(task["predictions"]) == 1 for task in tasks)
    return {
        "items": sorted(sha.values()),
        "weights": outputs["train"]["model_sha256"],
        "predictions": {
            sha[item]: (label.to_dict(), round(score or 0.0, 5)) for item, (label, score) in predicted.items()
        },
        "selection": sorted(sha[item] for item in outputs["select"]["items"]),
        "pushed": sorted(sha[int(item)] for item in pushed),
        "annotation_versions": versions,
    }


def _label_studio_tasks(server: LabelStudio, title: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Token {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30, trust_env=False) as client:
        found = client.get("/api/projects", params={"title": title, "page_size": 100}).json()
        [project] = [p for p in found["results"] if p["title"] == title]
        body = client.get("/api/tasks", params={"project": project["id"], "fields": "all", "page_size": 1000})
        tasks: list[dict[str, Any]] = body.json()["tasks"]
        return tasks


def test_sigkill_at_several_points_then_resume_matches_an_unbroken_run(
    tmp_path: Path, label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    base = label_studio.files / f"kill-{tmp_path.name}"
    unbroken = _project(base / "unbroken", label_studio, f"unbroken {tmp_path.name}")
    broken = _project(base / "broken", label_studio, f"broken {tmp_path.name}")

    reference = run_pipeline(unbroken, get_pipeline("model-assisted-labeling"), {})
    expected = _state(unbroken, reference.run_id, label_studio)

    process = _cli(broken, "run", "model-assisted-labeling")
    with broken.open_catalog() as catalog:
        _wait(process, lambda: bool(catalog.list_runs(kind="pipeline")), "the run was recorded")
        run_id = catalog.list_runs(kind="pipeline")[0].id
        kills: list[str] = []

        def killed_in(step: str, extra: Callable[[], bool] = lambda: True) -> None:
            _wait(process, lambda: _steps(catalog, run_id).get(step) == "running" and extra(), step)
            _kill(process)
            kills.append(step)

        killed_in("train", lambda: _training_checkpointed(broken))  # mid-training, after a checkpoint
        process = _cli(broken, "resume", run_id)
        killed_in("prelabel")
        process = _cli(broken, "resume", run_id)
        title = broken.config.labelstudio.project_title or ""
        killed_in("push", lambda: len(_label_studio_tasks(label_studio, title)) >= 2)  # mid-push
        assert kills == ["train", "prelabel", "push"]
        assert _steps(catalog, run_id)["push"] == "running"  # the kill left it unfinished

    finished = resume_pipeline(broken, run_id)
    assert finished.status == "succeeded"
    assert [step.attempts for step in finished.steps] == [1, 2, 2, 1, 2]
    with broken.open_catalog() as catalog:
        trainings = catalog.child_runs(run_id, "train")
    assert len(trainings) == 1, "the killed training was resumed, not started again"
    assert _state(broken, run_id, label_studio) == expected
