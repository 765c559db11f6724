"""How far one set of predictions is from another (or from the truth), by the task's own metric.

Two runtimes of one model (PyTorch and ONNX Runtime, fp32 and int8) should predict the same
labels. For classification that is the top class; for objects, element-wise comparison does not
work (one run may keep a box the other dropped at the score threshold), so the reference run's
labels are taken as the truth and the other run is scored with the task's metric: box mAP,
mask mAP, OKS AP, in points (0 to 100). The reference scored against itself is the ceiling (100,
or less where the metric caps detections per image, as OKS AP does at 20), and the points lost
are the ceiling minus the score. With real labels, :func:`metric_points` scores each run against
the truth instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from visionloop.core.labels import Label, ObjectLabels
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.tasks.metrics import (
    classification_task_metrics,
    detection_task_metrics,
    keypoint_task_metrics,
    segmentation_task_metrics,
)

__all__ = ["SCORED_METRICS", "metric_points", "points_lost"]

MetricsFunction = Callable[
    [Sequence[Label | None], Sequence[Label], LabelSchema, Sequence[tuple[int, int]]], dict[str, Any]
]

# Per task: the metric functions to run and the keys of theirs that count.
SCORED_METRICS: dict[TaskType, tuple[tuple[MetricsFunction, tuple[str, ...]], ...]] = {
    TaskType.CLASSIFICATION: ((classification_task_metrics, ("accuracy",)),),
    TaskType.DETECTION: ((detection_task_metrics, ("map",)),),
    TaskType.SEGMENTATION: ((segmentation_task_metrics, ("map", "mask_map")),),
    TaskType.KEYPOINTS: ((detection_task_metrics, ("map",)), (keypoint_task_metrics, ("oks_ap",))),
}


def metric_points(
    truths: Sequence[Label | None],
    predictions: Sequence[Label],
    schema: LabelSchema,
    sizes: Sequence[tuple[int, int]],
) -> dict[str, float | None]:
    """The task's counted metrics of ``predictions`` against ``truths``, in points; ``None`` where
    the metric is undefined (no truth to find)."""
    points: dict[str, float | None] = {}
    for function, keys in SCORED_METRICS[schema.task]:
        metrics = function(truths, predictions, schema, sizes)
        for key in keys:
            value = metrics.get(key)
            points[key] = None if value is None else 100.0 * float(value)
    return points


def points_lost(
    reference: Sequence[Label],
    predictions: Sequence[Label],
    schema: LabelSchema,
    sizes: Sequence[tuple[int, int]],
) -> tuple[dict[str, float], dict[str, float | None]]:
    """Points ``predictions`` lose against ``reference`` taken as the truth (its own score minus
    theirs), and their scores. Where the reference has nothing to find, predicting nothing loses
    nothing and predicting anything loses everything."""
    ceiling = metric_points(reference, reference, schema, sizes)
    scored = metric_points(reference, predictions, schema, sizes)
    lost: dict[str, float] = {}
    for key, best in ceiling.items():
        if best is None:
            lost[key] = 0.0 if not any(_objects(label) for label in predictions) else 100.0
        else:
            lost[key] = max(0.0, best - (scored[key] or 0.0))
    return lost, scored


def _objects(label: Label) -> int:
    return len(label) if isinstance(label, ObjectLabels) else 1
