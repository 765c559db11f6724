"""``labelstudio sync`` decides from the catalog and never runs two trainings at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tiny_projects import make_project
from visionloop.core.schema import TaskType
from visionloop.labeling import labelstudio
from visionloop.pipelines import leases
from visionloop.pipelines.retrain import TRAINING_LEASE
from visionloop.pipelines.sync import sync_labelstudio
from visionloop.project.config import RetrainPolicy


class _Pulled:
    def to_dict(self) -> dict[str, Any]:
        return {"imported": 0}


def test_a_due_retraining_is_skipped_while_another_process_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION, unlabeled=4)
    monkeypatch.setattr(labelstudio, "pull_annotations", lambda _project: _Pulled())  # no server here
    with project.open_catalog() as catalog:
        assert leases.acquire(catalog, TRAINING_LEASE, "other-host:1:x", ttl_s=600)
    report = sync_labelstudio(project, policy=RetrainPolicy(after_labels=1))
    assert report.decision["due"] and report.pipeline_run is None
    assert "already running" in report.note
    with project.open_catalog() as catalog:
        assert not catalog.list_runs(kind="pipeline") and not catalog.list_runs(kind="train")


def test_nothing_new_means_no_retraining(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path, TaskType.CLASSIFICATION)
    monkeypatch.setattr(labelstudio, "pull_annotations", lambda _project: _Pulled())
    with project.open_catalog() as catalog:
        catalog.finish_run(catalog.start_run("train", {}, {}), {})
    report = sync_labelstudio(project)
    assert not report.decision["due"] and "no new human labels" in report.decision["reason"]
    assert report.pipeline_run is None
