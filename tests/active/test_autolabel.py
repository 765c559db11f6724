"""Auto-labeling accepts only what its calibration certifies, refuses with too little evidence
(saying how much more it needs), never calibrates on training items, and never hides a human
label behind an auto one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionloop.active.autolabel import AutolabelOptions, autolabel, candidate_label
from visionloop.active.uncertainty import item_confidence
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.ingest import IngestOptions, ingest
from visionloop.metrics.matching import box_iou, keypoint_oks, objects_agree
from visionloop.models.artifact import write_training_items
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.storage import Filesystem

CLASSES = ["cat", "dog"]


def _project(root: Path, count: int) -> tuple[Project, list[int]]:
    """``count`` distinct tiny images in a new classification project; returns the item ids."""
    project = Project.create(
        root / "project",
        ProjectConfig(name="auto", labels=LabelSchema(task=TaskType.CLASSIFICATION, classes=CLASSES)),
    )
    folder = root / "images"
    folder.mkdir()
    for i in range(count):
        pixels = np.full((8, 8, 3), 0, np.uint8)
        pixels.reshape(-1)[:3] = (i % 256, i // 256, 7)
        Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    with project.open_catalog() as catalog:
        ingest(catalog, Filesystem(str(folder)), IngestOptions(split="train", workers=1))
        ids = [item.id for item in catalog.iter_items()]
    return project, ids


def _prediction(rng: np.random.Generator, truth: str, sure: bool) -> ClassLabel:
    """Sure predictions are right 99% of the time, unsure ones 60%."""
    right = rng.random() < (0.99 if sure else 0.6)
    name = truth if right else CLASSES[1 - CLASSES.index(truth)]
    top = rng.uniform(0.95, 1.0) if sure else rng.uniform(0.5, 0.8)
    probabilities = (top, 1 - top) if name == "cat" else (1 - top, top)
    return ClassLabel(name, top, probabilities)


def _prelabel_run(
    project: Project,
    root: Path,
    truths: dict[int, str],
    pool: list[int],
    trained_on: list[int],
    seed: int = 0,
) -> str:
    """Store a pre-label run as 'visionloop prelabel' would: predictions for the pool and the
    held-out human-labelled items, and a model folder recording its training items."""
    rng = np.random.default_rng(seed)
    model = root / "model"
    model.mkdir(exist_ok=True)
    write_training_items(model, trained_on)
    with project.open_catalog() as catalog:
        catalog.add_annotations(
            [(item, ClassLabel(name), Provenance.human("ann")) for item, name in truths.items()]
        )
        run = catalog.start_run(
            "prelabel", {"items": "unlabeled"}, {"model": str(model), "model_version": "run:m1"}
        )
        entries = []
        for item in [*truths, *pool]:
            label = _prediction(rng, truths.get(item, "cat"), sure=item % 2 == 0)
            entries.append((item, label, label.score))
        catalog.add_predictions("run:m1", entries, run_id=run)
        catalog.finish_run(run, {})
    return run


def test_certified_labels_are_accepted_as_auto_and_human_labels_still_win(tmp_path: Path) -> None:
    project, ids = _project(tmp_path, 1500)
    held_out, pool = ids[:1200], ids[1200:]
    truths = {item: CLASSES[item // 2 % 2] for item in held_out}  # half cats, half dogs
    run = _prelabel_run(project, tmp_path, truths, pool, trained_on=[])

    report = autolabel(project, AutolabelOptions(target_accuracy=0.95, audit=0.1), prelabel_run=run)

    assert report.calibration_items == 1200 and report.candidates == 300
    # The sure half (99% right) is certified at 95%; of the unsure half (60%) at most the top
    # few can join before the accepted set's error bound would pass 5%.
    assert 100 <= report.accepted <= 180
    certified = [entry for entry in report.thresholds.values() if entry["threshold"] is not None]
    assert certified and all(entry["threshold"] >= 0.7 for entry in certified)
    assert all(entry["error_bound"] <= 0.05 for entry in certified)
    with project.open_catalog() as catalog:
        current = catalog.current_annotations(pool)
        autos = {item: a for item, a in current.items() if a.provenance.kind is ProvenanceKind.AUTO}
        assert len(autos) == report.accepted
        assert all(a.provenance.calibration_run == report.run_id for a in autos.values())
        unsure = [item for item in autos if item % 2]
        assert len(unsure) <= 0.1 * len(autos)  # almost all of them the sure ones
        assert set(report.audit_items) <= set(autos) and len(report.audit_items) == np.ceil(0.1 * len(autos))
        item = next(iter(autos))
        catalog.add_annotation(item, ClassLabel("dog"), Provenance.human("reviewer"))
        assert catalog.current_annotations([item])[item].provenance.kind is ProvenanceKind.HUMAN


def test_too_few_held_out_labels_accept_nothing_and_say_how_many_more(tmp_path: Path) -> None:
    project, ids = _project(tmp_path, 140)
    truths = {item: "cat" for item in ids[:40]}
    run = _prelabel_run(project, tmp_path, truths, ids[40:], trained_on=[])
    report = autolabel(project, AutolabelOptions(), prelabel_run=run)
    assert report.accepted == 0 and report.labels_needed is not None and report.labels_needed > 0
    with project.open_catalog() as catalog:
        kinds = {a.provenance.kind for a in catalog.current_annotations().values()}
    assert kinds == {ProvenanceKind.HUMAN}


def test_items_the_model_trained_on_never_calibrate(tmp_path: Path) -> None:
    project, ids = _project(tmp_path, 700)
    truths = {item: CLASSES[item % 2] for item in ids[:600]}
    run = _prelabel_run(project, tmp_path, truths, ids[600:], trained_on=ids[:500])
    report = autolabel(project, AutolabelOptions(dry_run=True), prelabel_run=run)
    assert report.calibration_items == 100


def test_a_dry_run_stores_nothing(tmp_path: Path) -> None:
    project, ids = _project(tmp_path, 900)
    truths = {item: CLASSES[item % 3 % 2] for item in ids[:600]}
    run = _prelabel_run(project, tmp_path, truths, ids[600:], trained_on=[])
    report = autolabel(project, AutolabelOptions(dry_run=True), prelabel_run=run)
    assert report.accepted > 0
    with project.open_catalog() as catalog:
        assert not set(catalog.current_annotations(ids[600:]))


def _objects(
    boxes: list[list[float]], names: tuple[str, ...], scores: list[float] | None = None
) -> ObjectLabels:
    return ObjectLabels(
        boxes=np.array(boxes, float).reshape(-1, 4),
        class_names=names,
        scores=None if scores is None else np.array(scores),
    )


def test_objects_agree_only_on_a_one_to_one_match_of_the_same_class() -> None:
    truth = _objects([[0, 0, 10, 10], [20, 20, 30, 30]], ("a", "b"))
    close = _objects([[21, 20, 30, 31], [0, 1, 10, 10]], ("b", "a"), [0.9, 0.8])
    assert objects_agree(truth, close, "box", 0.5)
    assert not objects_agree(
        truth, _objects([[21, 20, 30, 31], [0, 1, 10, 10]], ("a", "b"), [0.9, 0.8]), "box", 0.5
    )
    assert not objects_agree(truth, close.subset([0]), "box", 0.5)  # a missed object
    assert not objects_agree(truth, close, "box", 0.95)  # not tight enough
    assert objects_agree(_objects([], ()), _objects([], ()), "box", 0.5)
    assert box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]))[0, 0] == pytest.approx(1 / 3)


def test_keypoint_similarity_is_one_for_exact_points_and_falls_with_distance() -> None:
    points = np.array([[[2.0, 2.0, 2], [8.0, 8.0, 2]]])
    truth = ObjectLabels(boxes=np.array([[0, 0, 10, 10]], float), class_names=("a",), keypoints=points)
    shifted = points.copy()
    shifted[0, :, 0] += 3
    moved = ObjectLabels(boxes=np.array([[0, 0, 10, 10]], float), class_names=("a",), keypoints=shifted)
    assert keypoint_oks(truth, truth)[0, 0] == pytest.approx(1.0)
    assert 0 < keypoint_oks(truth, moved)[0, 0] < 0.5


def test_object_labels_keep_their_confident_objects_and_score_by_the_least_decisive() -> None:
    label = _objects([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]], ("a", "b", "a"), [0.97, 0.1, 0.6])
    kept = candidate_label(label, 0.5)
    assert isinstance(kept, ObjectLabels) and kept.class_names == ("a", "a")
    assert item_confidence(label) == pytest.approx(0.6)  # the 0.6 object might be wrong
    assert item_confidence(kept) == pytest.approx(0.6)
    assert item_confidence(_objects([], (), [])) == 1.0


def test_masks_agree_by_mask_overlap_not_by_box() -> None:
    from visionloop.formats.masks import rle_encode

    ring = np.zeros((20, 20), bool)
    ring[2:18, 2:18] = True
    ring[5:15, 5:15] = False  # a hollow square: same box as the filled one, a third of its area
    filled = np.zeros((20, 20), bool)
    filled[2:18, 2:18] = True
    box = [[2, 2, 18, 18]]
    truth = ObjectLabels(boxes=np.array(box, float), class_names=("a",), masks=(rle_encode(ring),))
    solid = ObjectLabels(
        boxes=np.array(box, float), class_names=("a",), scores=np.array([0.9]), masks=(rle_encode(filled),)
    )
    assert objects_agree(truth, solid, "box", 0.9)
    assert not objects_agree(truth, solid, "mask", 0.9)
    assert objects_agree(truth, solid, "mask", 0.5)  # IoU = 156 / 256


def test_the_cli_reports_coverage_and_what_is_missing(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from visionloop.cli.app import app

    project, ids = _project(tmp_path, 140)
    _prelabel_run(project, tmp_path, {item: "cat" for item in ids[:40]}, ids[40:], trained_on=[])
    runner = CliRunner()
    result = runner.invoke(app, ["-p", str(project.root), "autolabel", "--global"])
    assert result.exit_code == 0, result.output
    assert "auto-accepted 0 of 100" in result.output and "more held-out items" in result.output
    result = runner.invoke(app, ["-p", str(project.root), "autolabel", "--global", "--json", "--dry-run"])
    report = json.loads(result.output)
    assert report["accepted"] == 0 and report["labels_needed"] > 0 and report["candidates"] == 100


def _audited(project: Project, items: list[int], wrong: int) -> None:
    """Humans check the audit items: ``wrong`` of them disagree with the auto label."""
    with project.open_catalog() as catalog:
        current = catalog.current_annotations(items)
        for n, item in enumerate(items):
            auto = current[item].label
            assert isinstance(auto, ClassLabel)
            name = auto.class_name if n >= wrong else CLASSES[1 - CLASSES.index(auto.class_name)]
            catalog.add_annotation(item, ClassLabel(name), Provenance.human("auditor"))


def test_a_failed_audit_revokes_the_calibration_and_its_auto_labels_stop_counting(tmp_path: Path) -> None:
    from visionloop.active.audit import audit_autolabel

    project, ids = _project(tmp_path, 1500)
    held_out, pool = ids[:1200], ids[1200:]
    truths = {item: CLASSES[item // 2 % 2] for item in held_out}
    run = _prelabel_run(project, tmp_path, truths, pool, trained_on=[])
    report = autolabel(project, AutolabelOptions(audit=0.2), prelabel_run=run)
    audit_items = report.audit_items
    assert len(audit_items) >= 20

    _audited(project, audit_items[:10], wrong=0)  # half the audit done, all agree
    partial = audit_autolabel(project, report.run_id)
    assert partial.audited == 10 and partial.errors == 0 and not partial.revoked

    _audited(project, audit_items[10:], wrong=len(audit_items) - 10)  # the rest all disagree
    verdict = audit_autolabel(project, report.run_id)
    assert verdict.revoked and verdict.errors == len(audit_items) - 10
    assert "above" in verdict.reason
    with project.open_catalog() as catalog:
        assert catalog.get_run(report.run_id).status == "revoked"
        current = catalog.current_annotations(pool)
        assert all(a.provenance.kind is ProvenanceKind.HUMAN for a in current.values())
        assert set(current) == set(audit_items)  # the revoked auto labels no longer count...
        assert set(pool) - set(audit_items) <= set(pool) - catalog.annotated_item_ids()  # ...pool again
        kept = [
            entry
            for item in pool
            for entry in catalog.annotation_history(item)
            if entry.provenance.kind is ProvenanceKind.AUTO
        ]
        assert len(kept) == report.accepted  # ...but stay in the history
