"""The labeling loop with an oracle: labels come only from the oracle and only when asked,
calibration items never train, every step is a stored run, and the report is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from visionloop.cli.app import app
from visionloop.core.provenance import ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.ingest import IngestOptions, ingest
from visionloop.models.artifact import read_training_items
from visionloop.pipelines.loop import CALIBRATION_SPLIT, LoopReport, LoopRound, read_loop
from visionloop.pipelines.loop_report import write_loop_report
from visionloop.pipelines.oracle import ORACLE_ANNOTATOR, Oracle
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.storage import Filesystem

CLASSES = ["left", "right"]


def _image(rng: np.random.Generator, name: str) -> Image.Image:
    pixels = (rng.random((32, 32, 3)) * 60).astype(np.uint8)
    half = slice(0, 16) if name == "left" else slice(16, 32)
    pixels[:, half] = 200
    return Image.fromarray(pixels)


def _project(root: Path, pool: int, test: int) -> Project:
    """Images in class folders (the oracle's truth), ingested without labels: pool -> train."""
    project = Project.create(
        root / "project",
        ProjectConfig(name="loop", labels=LabelSchema(task=TaskType.CLASSIFICATION, classes=CLASSES)),
    )
    rng = np.random.default_rng(0)
    with project.open_catalog() as catalog:
        for split, count in (("train", pool), ("test", test)):
            for i in range(count):
                name = CLASSES[i % 2]
                folder = root / split / name
                folder.mkdir(parents=True, exist_ok=True)
                _image(rng, name).save(folder / f"{i:04d}.png")
            ingest(catalog, Filesystem(str(root / split)), IngestOptions(split=split, workers=1))
    return project


def test_the_oracle_reveals_only_what_it_is_asked_and_only_what_it_knows(tmp_path: Path) -> None:
    project = _project(tmp_path, pool=6, test=2)
    with project.open_catalog() as catalog:
        oracle = Oracle.merged(
            [
                Oracle.from_file(
                    catalog, "imagefolder", tmp_path / split, str(tmp_path / split), project.config.labels
                )
                for split in ("train", "test")
            ]
        )
        assert len(oracle.truth) == 8 and not catalog.annotated_item_ids()
        items = sorted(oracle.truth)
        assert oracle.reveal(catalog, [items[0], 10_000], run_id=None) == [items[0]]
        current = catalog.current_annotations()
        assert list(current) == [items[0]]
        assert current[items[0]].provenance.annotator == ORACLE_ANNOTATOR


def test_the_loop_labels_only_through_the_oracle_and_writes_its_report(tmp_path: Path) -> None:
    project = _project(tmp_path, pool=160, test=12)
    args = [
        "-p", str(project.root), "loop",
        "--oracle", str(tmp_path / "train"), "--oracle", str(tmp_path / "test"),
        "--rounds", "2", "--budget", "10", "--calibration", "80", "--strategy", "margin", "--audit", "0.1",
        "--target-accuracy", "0.9",
        "model.image_size=32", "model.freeze_backbone=true", "optim.epochs=4", "optim.batch_size=8",
        "optim.lr=0.1", "data.val_fraction=0",
        "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    rounds = report["rounds"]
    assert [r["labels"] for r in rounds] == [10, 20]  # seed, then seed + one budget
    assert rounds[0]["selected"] == 10 and rounds[1]["selected"] == 0
    assert report["eval_items"] == 12 and report["calibration_items"] == 80
    audited = report["audit"].get("audited", 0)
    assert report["human_labels"] == 10 + 10 + 80 + audited
    with project.open_catalog() as catalog:
        calibration = {item.id for item in catalog.iter_items(split=CALIBRATION_SPLIT)}
        assert len(calibration) == 80
        current = catalog.current_annotations()
        humans = {i for i, a in current.items() if a.provenance.kind is ProvenanceKind.HUMAN}
        assert all(current[i].provenance.annotator == ORACLE_ANNOTATOR for i in humans)
        assert len(humans) == 12 + 80 + 20 + audited  # nothing labelled that was not asked for
        for entry in rounds:  # calibration items never train
            model = project.root / "runs" / entry["train_run"] / "model"
            trained_on = read_training_items(model)
            assert trained_on is not None and not trained_on & calibration
            assert catalog.get_run(entry["train_run"]).parent_id == report["run_id"]
        autos = {i: a for i, a in current.items() if a.provenance.kind is ProvenanceKind.AUTO}
        assert len(autos) + audited == report["auto_accepted"]  # audited items now show the human label
        assert all(a.provenance.calibration_run == report["autolabel"]["run_id"] for a in autos.values())
        assert catalog.get_run(report["run_id"]).status == "succeeded"
    # left/right halves are easy: the last model is sure of most of the pool, and right
    assert report["auto_accepted"] > 0 and report["auto_accuracy"] >= 0.9
    page = Path(report["report"])
    text = page.read_text(encoding="utf-8")
    for part in ("Learning curve", "Risk-coverage", "Confusion matrix", "Most uncertain", "Auto-accepted"):
        assert part in text
    assert (page.parent / "learning_curve.png").is_file() and (page.parent / "risk_coverage.png").is_file()
    assert read_loop(page.parent).rounds[1].labels == 20

    baseline = LoopReport(
        "b", "random", "classification", "accuracy", rounds=[LoopRound(1, 10, "t", "e", 0.5, {})]
    )
    again = write_loop_report(project, read_loop(page.parent), baseline=baseline)
    assert "random: accuracy" in again.read_text(encoding="utf-8")


def test_a_loop_without_evaluation_truth_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path, pool=6, test=2)
    args = ["-p", str(project.root), "loop", "--oracle", str(tmp_path / "train"), "--rounds", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "evaluation split" in result.output
    with project.open_catalog() as catalog:
        assert not catalog.annotated_item_ids()
