"""``visionloop import`` (COCO, images ingested first) SIGKILLed at random moments and run again
ends with the same items and annotation versions as one unbroken import: every label once."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from crash.killing import KillLog, crash_seed, kill_and_resume, timed, zygote
from crash.state import catalog_state, duplicates, leftovers, storage_state
from hardening_tally import tally
from tiny_projects import make_project
from visionloop.core.schema import TaskType
from visionloop.project import Project
from visionloop.project.config import ProjectConfig

pytestmark = pytest.mark.slow

KILLS = 10
RERUN = ("ingest", "import")


def _empty(root: Path, labelled: Project) -> Project:
    return Project.create(root / "project", ProjectConfig(name="imported", labels=labelled.config.labels))


def _command(project: Project, annotations: Path, images: Path) -> list[str]:
    return [
        "-p",
        str(project.root),
        "import",
        str(annotations),
        "--format",
        "coco",
        "--images",
        str(images),
        "--json",
    ]


def test_import_killed_again_and_again_then_rerun_writes_every_label_once(tmp_path: Path) -> None:
    seed = crash_seed("import")
    rng, record = random.Random(seed), KillLog(seed)
    labelled = make_project(tmp_path / "labelled", TaskType.DETECTION, per_split=12)
    images, annotations = tmp_path / "labelled" / "images", tmp_path / "coco" / "annotations.json"
    with zygote(tmp_path / "logs") as warm:
        timed(warm, ["-p", str(labelled.root), "export", str(annotations.parent), "--format", "coco"])
        reference = _empty(tmp_path / "reference", labelled)
        unbroken = timed(warm, _command(reference, annotations, images))
        expected = catalog_state(reference, RERUN), storage_state(reference, RERUN)
        assert len(expected[0]["annotations"]) == 36, "every label was imported"
        round_ = 0
        while record.kills < KILLS and round_ < 12:
            round_ += 1
            project = _empty(tmp_path / f"broken-{round_}", labelled)
            command = _command(project, annotations, images)
            kill_and_resume(
                warm,
                command,
                lambda *_, command=command: command,
                window=(0.02, unbroken.seconds * 0.95),
                kills=KILLS - record.kills,
                rng=rng,
                record=record,
            )
            state = catalog_state(project, RERUN)
            assert not duplicates([(note["item"], note["version"]) for note in state["annotations"]]), record
            assert state == expected[0], record
            assert storage_state(project, RERUN) == expected[1], record
            assert not leftovers(project.root), record
    assert record.kills >= KILLS, record
    tally("kills survived", record.kills)
    tally("kills survived: import", record.kills)
