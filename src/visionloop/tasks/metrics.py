"""Each task's metrics from ground-truth and predicted core labels (one pair per image).

These adapters turn labels into what the metric functions in :mod:`visionloop.metrics` take
and flatten the headline numbers to the top level so training, tuning and gates can read them.
Images without ground truth are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from visionloop.core.errors import ValidationError
from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.core.schema import LabelSchema
from visionloop.metrics.classification import classification_metrics
from visionloop.metrics.coco import detection_map, keypoint_map, mask_map
from visionloop.metrics.keypoints import keypoint_pixel_error

__all__ = [
    "classification_task_metrics",
    "detection_task_metrics",
    "keypoint_task_metrics",
    "segmentation_task_metrics",
]


def _pairs(
    truths: Sequence[Label | None], predictions: Sequence[Label], sizes: Sequence[tuple[int, int]]
) -> tuple[list[Label], list[Label], list[tuple[int, int]]]:
    if not len(truths) == len(predictions) == len(sizes):
        raise ValidationError("truths, predictions and image sizes must have one entry per image")
    kept = [(t, p, s) for t, p, s in zip(truths, predictions, sizes, strict=True) if t is not None]
    return [t for t, _, _ in kept], [p for _, p, _ in kept], [s for _, _, s in kept]


def classification_task_metrics(
    truths: Sequence[Label | None],
    predictions: Sequence[Label],
    schema: LabelSchema,
    sizes: Sequence[tuple[int, int]],
) -> dict[str, Any]:
    truth, predicted, _ = _pairs(truths, predictions, sizes)
    if not truth:
        return {}
    if not all(isinstance(label, ClassLabel) for label in [*truth, *predicted]):
        raise ValidationError("classification metrics need class labels")
    probabilities = None
    if all(isinstance(p, ClassLabel) and p.probabilities is not None for p in predicted):
        probabilities = np.array([p.probabilities for p in predicted if isinstance(p, ClassLabel)])
        if probabilities.shape[1] != len(schema.classes):
            probabilities = None
    return classification_metrics(
        [label.class_name for label in truth if isinstance(label, ClassLabel)],
        [label.class_name for label in predicted if isinstance(label, ClassLabel)],
        probabilities,
        schema.classes,
    )


def _objects(labels: Sequence[Label]) -> list[ObjectLabels]:
    out = [label for label in labels if isinstance(label, ObjectLabels)]
    if len(out) != len(labels):
        raise ValidationError("detection metrics need object labels")
    return out


def _object_pairs(
    truths: Sequence[Label | None], predictions: Sequence[Label], sizes: Sequence[tuple[int, int]]
) -> tuple[list[ObjectLabels], list[ObjectLabels], list[tuple[int, int]]]:
    """The labelled images' truths and predictions as object labels, with their sizes."""
    truth, predicted, kept_sizes = _pairs(truths, predictions, sizes)
    return _objects(truth), _objects(predicted), kept_sizes


def detection_task_metrics(
    truths: Sequence[Label | None],
    predictions: Sequence[Label],
    schema: LabelSchema,
    sizes: Sequence[tuple[int, int]],
) -> dict[str, Any]:
    truth, predicted, kept_sizes = _object_pairs(truths, predictions, sizes)
    if not truth:
        return {}
    return detection_map(truth, predicted, kept_sizes, schema.classes)


def segmentation_task_metrics(
    truths: Sequence[Label | None],
    predictions: Sequence[Label],
    schema: LabelSchema,
    sizes: Sequence[tuple[int, int]],
) -> dict[str, Any]:
    truth, predicted, kept_sizes = _object_pairs(truths, predictions, sizes)
    if not truth:
        return {}
    boxes = detection_map(truth, predicted, kept_sizes, schema.classes)
    masks = mask_map(truth, predicted, kept_sizes, schema.classes)
    return {**boxes, **{f"mask_{key}": value for key, value in masks.items()}}


def keypoint_task_metrics(
    truths: Sequence[Label | None],
    predictions: Sequence[Label],
    schema: LabelSchema,
    sizes: Sequence[tuple[int, int]],
) -> dict[str, Any]:
    truth, predicted, kept_sizes = _object_pairs(truths, predictions, sizes)
    if not truth:
        return {}
    oks = keypoint_map(truth, predicted, kept_sizes, schema.classes)
    pixels = keypoint_pixel_error(truth, predicted, keypoint_names=schema.keypoints)
    return {
        **{f"oks_{key}": value for key, value in oks.items()},
        "oks_ap": oks.get("map"),
        "pixel_error": pixels.get("mean_error"),
        "pixel_error_cutoff": pixels.get("mean_error_cutoff"),
        "keypoints": pixels,
    }
