"""Scoring one run's labels against another's with the task's metric: what counts as lost points."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.masks import rle_encode
from visionloop.tasks.agreement import metric_points, points_lost

DETECTION = LabelSchema(task=TaskType.DETECTION, classes=["box", "bar"])
SIZES = [(100, 100)] * 3


def _objects(*boxes: tuple[float, float, float, float], names: tuple[str, ...] | None = None) -> ObjectLabels:
    count = len(boxes)
    return ObjectLabels(
        boxes=np.array(boxes, float).reshape(-1, 4),
        class_names=names or ("box",) * count,
        scores=np.linspace(0.9, 0.5, count) if count else np.zeros(0),
    )


REFERENCE = [
    _objects((10, 10, 40, 40), (50, 50, 90, 80)),
    _objects((5, 5, 30, 60)),
    _objects((20, 20, 70, 70), names=("bar",)),
]


@pytest.mark.parametrize(
    ("predictions", "lost_at_least", "lost_at_most"),
    [
        (REFERENCE, 0.0, 0.0),
        (
            [_objects((10.3, 10, 40, 40.2), (50, 50, 90, 80)), *REFERENCE[1:]],
            0.0,
            0.5,
        ),  # a fraction of a pixel
        ([_objects((10, 10, 40, 40)), *REFERENCE[1:]], 10.0, 100.0),  # one object missed
        (
            [REFERENCE[0], REFERENCE[1], _objects((20, 20, 70, 70), names=("box",))],
            10.0,
            100.0,
        ),  # wrong class
        ([_objects(), _objects(), _objects()], 100.0, 100.0),  # nothing found
    ],
)
def test_points_lost_against_the_reference(
    predictions: list[Label], lost_at_least: float, lost_at_most: float
) -> None:
    lost, scored = points_lost(REFERENCE, predictions, DETECTION, SIZES)
    assert set(lost) == {"map"} and lost_at_least <= lost["map"] <= lost_at_most
    assert scored["map"] is not None and scored["map"] == pytest.approx(100.0 - lost["map"])


def test_a_reference_with_nothing_to_find() -> None:
    empty = [_objects(), _objects(), _objects()]
    assert points_lost(empty, empty, DETECTION, SIZES)[0] == {"map": 0.0}
    assert points_lost(empty, REFERENCE, DETECTION, SIZES)[0] == {"map": 100.0}


def test_classification_points_are_top_one_agreement() -> None:
    schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=["cat", "dog"])
    reference = [ClassLabel("cat"), ClassLabel("dog"), ClassLabel("dog"), ClassLabel("cat")]
    predictions = [ClassLabel("cat"), ClassLabel("dog"), ClassLabel("cat"), ClassLabel("cat")]
    lost, scored = points_lost(reference, predictions, schema, [(8, 8)] * 4)
    assert lost == {"accuracy": pytest.approx(25.0)} and scored == {"accuracy": pytest.approx(75.0)}


def test_segmentation_and_keypoints_count_every_head() -> None:
    mask = np.zeros((100, 100), bool)
    mask[10:40, 10:40] = True
    segmented = [
        ObjectLabels(boxes=np.array([[10, 10, 40, 40]]), class_names=("box",), masks=(rle_encode(mask),))
    ]
    schema = LabelSchema(task=TaskType.SEGMENTATION, classes=["box"])
    assert set(metric_points(segmented, segmented, schema, [(100, 100)])) == {"map", "mask_map"}
    points = np.array([[[12.0, 12.0, 2.0], [38.0, 38.0, 2.0]]])
    posed = [ObjectLabels(boxes=np.array([[10, 10, 40, 40]]), class_names=("box",), keypoints=points)]
    schema = LabelSchema(task=TaskType.KEYPOINTS, classes=["box"], keypoints=["a", "b"])
    lost, _ = points_lost(posed, posed, schema, [(100, 100)])
    assert lost == {"map": 0.0, "oks_ap": 0.0}
