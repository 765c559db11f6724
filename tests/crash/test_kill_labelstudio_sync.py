"""``visionloop labelstudio push`` and ``pull`` SIGKILLed at random moments and run again end as
one unbroken push and pull do, against a real Label Studio: each item a task once, with one
prediction; each annotation pulled once, as one label version."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from crash.killing import KillLog, Zygote, crash_seed, kill_and_resume, timed, zygote
from crash.state import catalog_state, duplicates, leftovers, storage_state
from hardening_tally import tally
from ls_helpers import http, ls_project, pool, predict, tasks
from servers import LabelStudio
from visionloop.core.schema import TaskType
from visionloop.labeling.labelstudio import connect
from visionloop.project import Project
from visionloop.project.config import dump_config

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]

PUSH_KILLS = 6
PULL_KILLS = 3
POOL = 16


def _project(server: LabelStudio, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A pool of unlabelled items with a prediction each; one task per request, so pushes take a while."""
    project = ls_project(server, TaskType.CLASSIFICATION, monkeypatch, unlabeled=POOL)
    project.config.labelstudio.chunk_size = 1
    (project.root / "visionloop.yaml").write_text(dump_config(project.config))
    predict(project, pool(project), "v1")
    return Project.load(project.root)


def _label_studio(project: Project, server: LabelStudio) -> list[dict[str, Any]]:
    """The tasks of the project's Label Studio project; each item once, with one prediction."""
    with project.open_catalog() as catalog:
        found = tasks(server, connect(project, catalog).project_id)
    items = [task["data"]["visionloop_item"] for task in found]
    assert not duplicates(items), f"items pushed twice: {duplicates(items)}"
    assert all(len(task["predictions"]) == 1 for task in found)
    return found


def _annotate(project: Project, server: LabelStudio) -> None:
    """A person labels every other task (by item, so two projects get the same labels)."""
    with http(server) as client:
        for task in sorted(_label_studio(project, server), key=lambda task: task["data"]["visionloop_item"]):
            item = task["data"]["visionloop_item"]
            if item % 2:
                continue
            choice = {"from_name": "choice", "to_name": "image", "type": "choices"}
            body = {"result": [{**choice, "value": {"choices": ["left" if item % 4 else "right"]}}]}
            assert client.post(f"/api/tasks/{task['id']}/annotations/", json=body).status_code == 201


def _state(project: Project, server: LabelStudio) -> dict[str, Any]:
    state = catalog_state(project)
    state["labeling_tasks"] = [row[:1] + row[2:] for row in state["labeling_tasks"]]  # not the title
    pushed = _label_studio(project, server)
    state["label_studio"] = sorted(
        (task["data"]["visionloop_item"], len(task["annotations"])) for task in pushed
    )
    return {"catalog": state, "files": storage_state(project)}


def _kill_command(
    warm: Zygote, argv: list[str], budget: int, seconds: float, rng: random.Random, record: KillLog
) -> None:
    kill_and_resume(
        warm, argv, lambda *_: argv, window=(0.05, seconds * 0.6), kills=budget, rng=rng, record=record
    )


def test_push_and_pull_killed_again_and_again_then_rerun_match_an_unbroken_sync(
    tmp_path: Path, label_studio: LabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = crash_seed("labelstudio")
    rng, push_record, pull_record = random.Random(seed), KillLog(seed), KillLog(seed)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio.token)  # before the zygote starts
    with zygote(tmp_path / "logs") as warm:
        reference = _project(label_studio, monkeypatch)
        push = timed(warm, ["-p", str(reference.root), "labelstudio", "push", "--unlabelled", "--json"])
        _annotate(reference, label_studio)
        pull = timed(warm, ["-p", str(reference.root), "labelstudio", "pull", "--json"])
        expected = _state(reference, label_studio)
        assert len(expected["catalog"]["labeling_tasks"]) == POOL
        assert len(expected["catalog"]["annotations"]) == 6 + POOL // 2, (
            "6 labelled items, half the pool pulled"
        )
        round_ = 0
        while (push_record.kills < PUSH_KILLS or pull_record.kills < PULL_KILLS) and round_ < 6:
            round_ += 1
            project = _project(label_studio, monkeypatch)
            root = ["-p", str(project.root), "labelstudio"]
            _kill_command(
                warm,
                [*root, "push", "--unlabelled", "--json"],
                PUSH_KILLS - push_record.kills,
                push.seconds,
                rng,
                push_record,
            )
            _annotate(project, label_studio)
            _kill_command(
                warm,
                [*root, "pull", "--json"],
                PULL_KILLS - pull_record.kills,
                pull.seconds,
                rng,
                pull_record,
            )
            records = f"push: {push_record}; pull: {pull_record}"
            assert _state(project, label_studio) == expected, records
            assert not leftovers(project.root), records
    assert push_record.kills >= PUSH_KILLS, push_record
    assert pull_record.kills >= PULL_KILLS, pull_record
    tally("kills survived", push_record.kills + pull_record.kills)
    tally("kills survived: labelstudio push", push_record.kills)
    tally("kills survived: labelstudio pull", pull_record.kills)
