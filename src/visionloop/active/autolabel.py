"""``visionloop autolabel``: accept model labels without a human where that is provably safe.

1. The calibration set: items a human labelled that the model did not train on (the model
   records its training items), predicted by the same model.
2. Each calibration prediction is turned into the label that would be accepted (for object
   tasks: the objects scoring at least ``object_score``) and checked against the human label
   (classification: same class; boxes and masks: every object matched at IoU >= ``match``;
   keypoints: OKS >= ``match``), giving (confidence, correct) pairs.
3. :func:`~visionloop.active.calibration.calibrate_thresholds` certifies a threshold per class
   (or one global) such that, with probability ``confidence``, the accepted labels' accuracy is
   at least ``target_accuracy``. Too few calibration items: nothing is accepted and the report
   says how many more human labels are needed.
4. Unlabelled items of the pre-label run scoring at or above their threshold get the label with
   provenance ``auto`` naming this run. Human labels always win: an item a human labels later
   shows the human label. A random ``audit`` share of the accepted items is listed for humans
   to check.

Confidence is :func:`~visionloop.active.uncertainty.item_confidence`, the score pre-labeling
stores with each prediction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.active.calibration import Calibration, calibrate_thresholds, labels_needed, risk_coverage
from visionloop.active.select import latest_prelabel_run
from visionloop.active.store import PRELABEL_KIND
from visionloop.active.uncertainty import item_confidence
from visionloop.catalog import Catalog
from visionloop.core.errors import ValidationError
from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import TaskType
from visionloop.metrics.matching import MatchKind, objects_agree
from visionloop.models.artifact import read_training_items
from visionloop.project import Project

__all__ = ["AutolabelOptions", "AutolabelReport", "autolabel", "candidate_label"]

RUN_KIND = "autolabel"
_MATCH_KIND: dict[TaskType, MatchKind] = {
    TaskType.DETECTION: "box",
    TaskType.SEGMENTATION: "mask",
    TaskType.KEYPOINTS: "keypoints",
}


@dataclass(frozen=True)
class AutolabelOptions:
    target_accuracy: float = 0.95
    confidence: float = 0.95
    audit: float = 0.02
    per_class: bool = False
    match: float = 0.5
    object_score: float = 0.5
    seed: int = 0
    dry_run: bool = False
    calibration_split: str | None = None  # only held-out human items of this split calibrate


@dataclass
class AutolabelReport:
    run_id: str
    prelabel_run: str
    model_version: str
    calibration_items: int
    candidates: int
    accepted: int = 0
    coverage: float = 0.0
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)
    audit_items: list[int] = field(default_factory=list)
    labels_needed: int | None = None
    notes: list[str] = field(default_factory=list)
    risk_coverage: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def candidate_label(label: Label, object_score: float) -> Label:
    """What auto-accepting ``label`` would store: a class, or the objects scoring enough."""
    if isinstance(label, ObjectLabels) and label.scores is not None:
        return label.subset(label.scores >= object_score)
    return label


def _group(label: Label, per_class: bool) -> str | None:
    """The calibration group: the predicted class when per class (object tasks: one group)."""
    return label.class_name if per_class and isinstance(label, ClassLabel) else None


def agrees(task: TaskType, truth: Label, predicted: Label, match: float) -> bool:
    if isinstance(truth, ClassLabel) and isinstance(predicted, ClassLabel):
        return truth.class_name == predicted.class_name
    if isinstance(truth, ObjectLabels) and isinstance(predicted, ObjectLabels):
        return objects_agree(truth, predicted, _MATCH_KIND.get(task, "box"), match)
    return False


def _predictions_by(catalog: Catalog, item_ids: list[int], version: str) -> dict[int, Label]:
    return {
        item: label
        for item, (model_version, label, _) in catalog.latest_predictions(item_ids).items()
        if model_version == version
    }


def autolabel(
    project: Project, options: AutolabelOptions, prelabel_run: str | None = None
) -> AutolabelReport:
    task = project.config.labels.task
    with project.open_catalog() as catalog:
        run_of_predictions = prelabel_run or latest_prelabel_run(catalog)
        record = catalog.get_run(run_of_predictions)
        if record.kind != PRELABEL_KIND or record.status != "succeeded":
            raise ValidationError(f"run {run_of_predictions} is not a finished pre-label run")
        version = str(record.inputs["model_version"])
        trained_on = read_training_items(Path(str(record.inputs["model"])))
        current = catalog.current_annotations()
        human = {
            item: annotation.label
            for item, annotation in current.items()
            if annotation.provenance.kind is ProvenanceKind.HUMAN
        }
        notes: list[str] = []
        if trained_on is None:
            notes.append("the model did not record its training items; only val/test items calibrate")
            held_out = {item.id for item in catalog.iter_items() if item.split in ("val", "test")}
            calibration_ids = sorted(set(human) & held_out)
        else:
            calibration_ids = sorted(set(human) - trained_on)
        if options.calibration_split is not None:
            in_split = {item.id for item in catalog.iter_items(split=options.calibration_split)}
            calibration_ids = [item for item in calibration_ids if item in in_split]
        predicted = _predictions_by(catalog, calibration_ids, version)
    missing = sorted(set(calibration_ids) - set(predicted))
    if missing:  # predict the held-out items the pre-label run did not cover (it covers the pool)
        from visionloop.active.prelabel import PrelabelOptions, prelabel

        prelabel(project, str(record.inputs["model"]), PrelabelOptions(items="labeled"), only=missing)
    with project.open_catalog() as catalog:
        predicted = _predictions_by(catalog, calibration_ids, version)
        pairs = [
            (candidate_label(predicted[item], options.object_score), human[item])
            for item in sorted(predicted)
        ]
        groups = None
        if options.per_class and task is TaskType.CLASSIFICATION:
            groups = [label.class_name if isinstance(label, ClassLabel) else "" for label, _ in pairs]
        calibration = None
        scores = [item_confidence(label) for label, _ in pairs]
        correct = [agrees(task, truth, label, options.match) for label, truth in pairs]
        if pairs:
            calibration = calibrate_thresholds(
                scores,
                correct,
                target_accuracy=options.target_accuracy,
                confidence=options.confidence,
                groups=groups,
            )
        pool = {
            item: label
            for item, (label, _) in catalog.run_predictions(run_of_predictions).items()
            if item not in current
        }
        run_id = catalog.start_run(
            RUN_KIND,
            asdict(options),
            {"prelabel_run": run_of_predictions, "model_version": version, "calibration_items": len(pairs)},
            parent_id=run_of_predictions,
        )
        report = AutolabelReport(run_id, run_of_predictions, version, len(pairs), len(pool), notes=notes)
        report.risk_coverage = risk_coverage(scores, correct, options.confidence)
        accepted = _accept(pool, calibration, options, report)
        if accepted and not options.dry_run:
            catalog.add_annotations(
                [
                    (item, label, Provenance.auto(version, run_id, score=item_confidence(label)))
                    for item, label in accepted
                ],
                run_id=run_id,
            )
        rng = np.random.default_rng(options.seed)
        audit = math.ceil(options.audit * len(accepted)) if accepted else 0
        report.audit_items = sorted(int(i) for i in rng.permutation([item for item, _ in accepted])[:audit])
        catalog.finish_run(run_id, report.to_dict())
    return report


def _accept(
    pool: dict[int, Label],
    calibration: Calibration | None,
    options: AutolabelOptions,
    report: AutolabelReport,
) -> list[tuple[int, Label]]:
    if calibration is None:
        report.labels_needed = labels_needed(options.target_accuracy, 1.0 - options.confidence)
        report.notes.append("no calibration items: label held-out items (val or test split) first")
        return []
    report.thresholds = {
        str(group if group is not None else "*"): {
            "threshold": entry.threshold,
            "calibration_items": entry.calibration_items,
            "accepted_items": entry.accepted_items,
            "accepted_errors": entry.accepted_errors,
            "error_bound": entry.error_bound,
            "reason": entry.reason,
        }
        for group, entry in calibration.thresholds.items()
    }
    if all(entry.threshold is None for entry in calibration.thresholds.values()):
        report.labels_needed = max(entry.more_needed for entry in calibration.thresholds.values()) or None
    accepted: list[tuple[int, Label]] = []
    for item, prediction in sorted(pool.items()):
        label = candidate_label(prediction, options.object_score)
        group = _group(label, calibration.per_class)
        if calibration.accepts(group, item_confidence(label)):
            accepted.append((item, label))
    report.accepted = len(accepted)
    report.coverage = len(accepted) / len(pool) if pool else 0.0
    return accepted
