"""``visionloop train`` SIGKILLed at random moments and resumed with ``--resume RUN`` ends with the
same weights, catalog rows and files as an unbroken training, and leaves no temporary file."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from crash.killing import KillLog, Outcome, crash_seed, kill_and_resume, timed, zygote
from crash.state import catalog_state, leftovers, run_ids, storage_state
from hardening_tally import tally
from tiny_projects import RESUMABLE_TRAINING, make_project
from visionloop.core.schema import TaskType
from visionloop.project import Project

pytestmark = pytest.mark.slow

KILLS = 10
OVERRIDES = RESUMABLE_TRAINING


def test_training_killed_again_and_again_resumes_to_the_same_weights(tmp_path: Path) -> None:
    seed = crash_seed("training")
    rng, record = random.Random(seed), KillLog(seed)
    with zygote(tmp_path / "logs") as warm:
        reference = make_project(tmp_path / "reference", TaskType.CLASSIFICATION, per_split=8)
        unbroken = timed(warm, ["-p", str(reference.root), "train", *OVERRIDES, "--json"])
        expected = (catalog_state(reference), storage_state(reference))
        round_ = 0
        while record.kills < KILLS and round_ < 8:
            round_ += 1
            project = make_project(tmp_path / f"broken-{round_}", TaskType.CLASSIFICATION, per_split=8)
            fresh = ["-p", str(project.root), "train", *OVERRIDES, "--json"]

            def resume(
                _: Outcome, __: int, project: Project = project, fresh: list[str] = fresh
            ) -> list[str]:
                started = run_ids(project, "train")
                return (
                    ["-p", str(project.root), "train", "--resume", started[0], "--json"] if started else fresh
                )

            kill_and_resume(
                warm,
                fresh,
                resume,
                window=(0.05, unbroken.seconds * 0.9),
                kills=KILLS - record.kills,
                rng=rng,
                record=record,
            )
            assert len(run_ids(project, "train")) == 1, f"a resume started a new training: {record}"
            assert catalog_state(project) == expected[0], record
            assert storage_state(project) == expected[1], record
            assert not leftovers(project.root), record
    print(record)
    assert record.kills >= KILLS, record
    tally("kills survived", record.kills)
    tally("kills survived: training", record.kills)
