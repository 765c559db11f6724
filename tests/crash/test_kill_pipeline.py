"""``visionloop pipeline run build`` SIGKILLed at random moments and continued with ``pipeline
resume RUN`` ends where an unbroken build ends: one pipeline run with every step succeeded, one
registered version with the same weights and gate verdict, one finished training run, the labels
untouched, and no temporary file.

Kills land anywhere: in the snapshot, in training (which resumes from its checkpoint), in the
evaluation, between a step's work and its record. A step killed halfway may leave its own run
behind as ``running`` (an evaluation is started again, not continued), so runs are compared by
what finished, not by count."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from crash.killing import KillLog, Outcome, crash_seed, kill_and_resume, timed, zygote
from crash.state import catalog_state, leftovers, run_ids
from hardening_tally import tally
from tiny_projects import RESUMABLE_TRAINING as OVERRIDES
from tiny_projects import make_project
from visionloop.core.schema import TaskType
from visionloop.pipelines.runner import pipeline_run
from visionloop.project import Project
from visionloop.registry import project_registry

pytestmark = pytest.mark.slow

KILLS = 8


def _params(folder: Path) -> Path:
    train = yaml.safe_load("\n".join(line.replace("=", ": ", 1) for line in OVERRIDES))
    nested: dict[str, Any] = {}
    for key, value in train.items():  # "optim.epochs: 2" -> {"optim": {"epochs": 2}}
        *parents, leaf = key.split(".")
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    path = folder / "build.yaml"
    path.write_text(yaml.safe_dump({"train": nested, "robustness": False, "eval_split": "test"}))
    return path


def _result(project: Project) -> dict[str, Any]:
    """What a build leaves that must not depend on being killed: the registry, the finished
    runs, the labels."""
    with project.open_catalog() as catalog:
        versions = project_registry(project, catalog).versions()
        pipelines = catalog.list_runs(kind="pipeline")
        trained = [run for run in catalog.list_runs(kind="train") if run.status == "succeeded"]
        evaluated = [run for run in catalog.list_runs(kind="evaluate") if run.status == "succeeded"]
    state = catalog_state(project, rerun=("pipeline", "train", "evaluate", "snapshot"))
    return {
        "pipelines": [(run.status, run.error) for run in pipelines],
        "steps": [(step.name, step.status) for step in pipeline_run(project, pipelines[0].id).steps],
        "versions": [(v.version, v.weights_sha256, v.gate.passed if v.gate else None) for v in versions],
        "trained": len(trained),
        "evaluated": len(evaluated),
        "items": state["items"],
        "annotations": state["annotations"],
    }


def test_a_build_pipeline_killed_again_and_again_resumes_to_the_same_model(tmp_path: Path) -> None:
    seed = crash_seed("pipeline")
    rng, record = random.Random(seed), KillLog(seed)
    params = _params(tmp_path)
    with zygote(tmp_path / "logs") as warm:
        reference = make_project(tmp_path / "reference", TaskType.CLASSIFICATION, per_split=8)
        unbroken = timed(
            warm, ["-p", str(reference.root), "pipeline", "run", "build", "--params", str(params)]
        )
        expected = _result(reference)
        assert expected["versions"] and expected["trained"] == 1, expected
        round_ = 0
        while record.kills < KILLS and round_ < 6:
            round_ += 1
            project = make_project(tmp_path / f"broken-{round_}", TaskType.CLASSIFICATION, per_split=8)
            fresh = ["-p", str(project.root), "pipeline", "run", "build", "--params", str(params)]

            def resume(
                _: Outcome, __: int, project: Project = project, fresh: list[str] = fresh
            ) -> list[str]:
                started = run_ids(project, "pipeline")
                if not started:  # killed before the run was recorded: start it again
                    return fresh
                return ["-p", str(project.root), "pipeline", "resume", started[0]]

            kill_and_resume(
                warm,
                fresh,
                resume,
                window=(0.05, unbroken.seconds * 0.95),
                kills=KILLS - record.kills,
                rng=rng,
                record=record,
            )
            got = _result(project)
            assert got["pipelines"] == expected["pipelines"], record  # one run, succeeded
            assert got == expected, record
            assert not leftovers(project.root), record
    print(record)
    assert record.kills >= KILLS, record
    tally("kills survived", record.kills)
    tally("kills survived: pipelines", record.kills)
