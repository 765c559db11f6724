"""``visionloop ingest --copy`` SIGKILLed at random moments and run again ends with the same items,
file index and copied blobs as one unbroken ingest: nothing lost, nothing twice, no temporary file."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crash.killing import KillLog, crash_seed, kill_and_resume, timed, zygote
from crash.state import catalog_state, duplicates, leftovers, storage_state
from hardening_tally import tally
from tiny_projects import make_project
from visionloop.core.schema import TaskType
from visionloop.project import Project

pytestmark = pytest.mark.slow

KILLS = 12
IMAGES = 60


def _source(folder: Path) -> Path:
    """Small PNGs and JPEGs, a few exact duplicates and a few bad files, the same for every project."""
    rng = np.random.default_rng(11)
    folder.mkdir()
    for index in range(IMAGES):
        pixels = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
        kind = "png" if index % 3 else "jpeg"
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=kind)
        (folder / f"image_{index:03d}.{kind}").write_bytes(buffer.getvalue())
    for index in range(4):
        (folder / f"copy_{index}.png").write_bytes((folder / f"image_{3 * index + 1:03d}.png").read_bytes())
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes((folder / "image_001.png").read_bytes()[:60])
    return folder


def _command(project: Project, source: Path) -> list[str]:
    return [
        "-p", str(project.root), "ingest", str(source),
        "--split", "train", "--copy", "--batch-size", "4", "--workers", "1", "--json",
    ]  # fmt: skip


def _last_ingest_succeeded(project: Project) -> bool:
    with project.open_catalog() as catalog:
        newest = max(catalog.list_runs(kind="ingest"), key=lambda run: run.created_at)
        return newest.status == "succeeded"


def test_ingest_killed_again_and_again_then_rerun_matches_one_unbroken_ingest(tmp_path: Path) -> None:
    seed = crash_seed("ingest")
    rng, record = random.Random(seed), KillLog(seed)
    source = _source(tmp_path / "source")
    with zygote(tmp_path / "logs") as warm:
        reference = make_project(tmp_path / "reference", TaskType.CLASSIFICATION, per_split=1)
        unbroken = timed(warm, _command(reference, source))
        expected = catalog_state(reference, rerun=("ingest",)), storage_state(reference, rerun=("ingest",))
        assert len(expected[0]["items"]) == 3 + IMAGES, "every good image is an item"
        round_ = 0
        while record.kills < KILLS and round_ < 12:
            round_ += 1
            project = make_project(tmp_path / f"broken-{round_}", TaskType.CLASSIFICATION, per_split=1)
            command = _command(project, source)
            kill_and_resume(
                warm,
                command,
                lambda *_, command=command: command,
                window=(0.02, unbroken.seconds * 0.95),
                kills=KILLS - record.kills,
                rng=rng,
                record=record,
            )
            assert _last_ingest_succeeded(project), record
            state = catalog_state(project, rerun=("ingest",))
            assert not duplicates([item["uri"] for item in state["items"]]), record
            assert state == expected[0], record
            assert storage_state(project, rerun=("ingest",)) == expected[1], record
            assert not leftovers(project.root), record
    assert record.kills >= KILLS, record
    tally("kills survived", record.kills)
    tally("kills survived: ingest", record.kills)
