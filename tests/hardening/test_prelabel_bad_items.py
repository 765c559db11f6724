"""``visionloop prelabel`` over the odd corpus images and over items whose files were swapped for
bad ones after ingest (a bomb, a truncated file, random bytes): the odd ones are predicted, each
swapped one is listed as failed with its path and reason, and the run finishes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardening.bounds import Bounds
from hardening.corpus_images import OVER_TEST_LIMIT_ONLY, image_corpus, write_images
from hardening_tally import tally
from tiny_registry import classifier_project
from visionloop.active.prelabel import PrelabelOptions, prelabel
from visionloop.ingest import IngestOptions, ingest
from visionloop.storage import Filesystem

pytestmark = pytest.mark.slow


def test_prelabel_predicts_odd_images_and_reports_swapped_bad_files(tmp_path: Path) -> None:
    project = classifier_project(tmp_path)
    cases = image_corpus()
    odd = [case for case in cases if not case.bad and not case.name.startswith("huge_")]
    bad = [
        case
        for case in cases
        if case.bad
        and case.name.startswith(("bomb_", "under_", "truncated_jpg"))
        and case.name not in OVER_TEST_LIMIT_ONLY  # prelabel decodes under the default limit
    ]
    folder = tmp_path / "pool"
    write_images(folder, odd)
    victims = [folder / f"victim_{i:03d}.png" for i in range(len(bad))]
    for index, victim in enumerate(victims):  # distinct valid files, ingested, then swapped
        victim.write_bytes(next(c for c in cases if c.name == "mode_rgba.png").data + bytes([index]))
    with project.open_catalog() as catalog:
        report = ingest(catalog, Filesystem(str(folder)), IngestOptions(split="train", workers=1))
    assert report.rejected == 0
    for victim, case in zip(victims, bad, strict=True):
        victim.write_bytes(case.data)

    bounds = Bounds(seconds=60.0)
    with bounds.check("prelabel of the pool"):
        result = prelabel(project, str(project.root / "m1"), PrelabelOptions(items="all", workers=0))
    assert not bounds.over, bounds.summary()
    failed = {entry["reason"].split(": ", 1)[0] for entry in result.failed}
    assert failed == {str(victim) for victim in victims}, result.failed
    assert all(len(entry["reason"]) > len(str(victims[0])) + 4 for entry in result.failed)
    assert result.predicted >= len(odd) - 2  # a couple of odd files share bytes: one item each
    tally("bad inputs refused: images swapped in before prelabel", len(bad))
