"""``visionloop prelabel`` SIGKILLed at random moments and resumed with ``--resume RUN`` ends with
the same predictions and embeddings as an unbroken run: each item predicted once, none lost."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from crash.killing import KillLog, Outcome, crash_seed, kill_and_resume, timed, zygote
from crash.state import catalog_state, duplicates, leftovers, run_ids, storage_state
from hardening_tally import tally
from tiny_projects import RESUMABLE_TRAINING as OVERRIDES
from tiny_projects import make_project
from visionloop.core.schema import TaskType
from visionloop.project import Project

pytestmark = pytest.mark.slow

KILLS = 10
POOL = 48


def _pool(root: Path) -> Project:
    return make_project(root, TaskType.CLASSIFICATION, per_split=1, seed=5, unlabeled=POOL)


def test_prelabel_killed_again_and_again_resumes_to_the_same_predictions(tmp_path: Path) -> None:
    seed = crash_seed("prelabel")
    rng, record = random.Random(seed), KillLog(seed)
    with zygote(tmp_path / "logs") as warm:
        trained = make_project(tmp_path / "trained", TaskType.CLASSIFICATION, per_split=4)
        training = timed(warm, ["-p", str(trained.root), "train", *OVERRIDES, "--json"])
        model = json.loads(_json(training))["model_path"]

        def command(project: Project) -> list[str]:
            return [
                "-p", str(project.root), "prelabel", model,
                "--workers", "0", "--batch-size", "2", "--chunk", "4", "--runtime", "torch", "--json",
            ]  # fmt: skip

        reference = _pool(tmp_path / "reference")
        unbroken = timed(warm, command(reference))
        expected = catalog_state(reference), storage_state(reference)
        assert len(expected[0]["predictions"]) == POOL
        round_ = 0
        while record.kills < KILLS and round_ < 8:
            round_ += 1
            project = _pool(tmp_path / f"broken-{round_}")
            fresh = command(project)

            def resume(
                _: Outcome, __: int, project: Project = project, fresh: list[str] = fresh
            ) -> list[str]:
                started = run_ids(project, "prelabel")
                return [*fresh, "--resume", started[0]] if started else fresh

            kill_and_resume(
                warm,
                fresh,
                resume,
                window=(0.05, unbroken.seconds * 0.9),
                kills=KILLS - record.kills,
                rng=rng,
                record=record,
            )
            assert len(run_ids(project, "prelabel")) == 1, f"a resume started a new pre-label run: {record}"
            state = catalog_state(project)
            assert not duplicates([(row["item"], row["run_id"]) for row in state["predictions"]]), record
            assert state == expected[0], record
            assert storage_state(project) == expected[1], record
            assert not leftovers(project.root), record
    assert record.kills >= KILLS, record
    tally("kills survived", record.kills)
    tally("kills survived: prelabel", record.kills)


def _json(outcome: Outcome) -> str:
    text = outcome.output()
    return text[text.index("{") :]
