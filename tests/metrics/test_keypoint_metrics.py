"""Pixel errors, the likelihood cutoff and PCK, DeepLabCut style."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from visionloop.core.errors import ValidationError
from visionloop.core.labels import ObjectLabels
from visionloop.metrics.keypoints import keypoint_pixel_error

NAMES = ["nose", "left_ear", "right_ear", "tail"]
POINTS = np.array([[20.0, 20.0, 2], [40.0, 30.0, 2], [30.0, 60.0, 1], [0.0, 0.0, 0]])  # tail unlabeled


def animal(points: np.ndarray, **kwargs: Any) -> ObjectLabels:
    """One mouse in a 100x100 box (PCK threshold 0.1 * 141.4 px)."""
    return ObjectLabels(
        boxes=np.array([[0.0, 0.0, 100.0, 100.0]]), class_names=("mouse",), keypoints=points[None], **kwargs
    )


def shifted(points: np.ndarray, dx: float, dy: float = 0.0) -> np.ndarray:
    out = points.copy()
    out[:, 0] += dx
    out[:, 1] += dy
    out[:, 2] = 2
    return out


def test_three_pixel_offset_gives_three_pixel_error() -> None:
    truth = animal(POINTS)
    prediction = animal(shifted(POINTS, 3.0))
    metrics = keypoint_pixel_error([truth], [prediction], keypoint_names=NAMES)
    assert metrics["mean_error"] == pytest.approx(3.0)
    assert metrics["median_error"] == pytest.approx(3.0)
    assert metrics["per_keypoint_error"] == {"nose": 3.0, "left_ear": 3.0, "right_ear": 3.0, "tail": None}
    assert metrics["labeled_keypoints"] == metrics["compared_keypoints"] == 3
    assert metrics["mean_error_cutoff"] == pytest.approx(3.0) and metrics["kept_fraction"] == 1.0
    assert metrics["pck"] == 1.0  # 3 px < 0.1 * 141 px


def test_likelihood_cutoff_excludes_unsure_keypoints() -> None:
    predicted = shifted(POINTS, 3.0)
    predicted[1, :2] += (30.0, 40.0)  # left ear 3 px + (30, 40) away: (33, 40) -> 51.86 px
    prediction = animal(predicted, keypoint_scores=np.array([[0.9, 0.2, 0.95, 0.1]]))
    metrics = keypoint_pixel_error([animal(POINTS)], [prediction], likelihood_cutoff=0.6)
    far = float(np.hypot(33.0, 40.0))
    assert metrics["mean_error"] == pytest.approx((3.0 + far + 3.0) / 3)
    assert metrics["mean_error_cutoff"] == pytest.approx(3.0)
    assert metrics["median_error_cutoff"] == pytest.approx(3.0)
    assert metrics["kept_fraction"] == pytest.approx(2 / 3)
    assert metrics["pck"] == pytest.approx(2 / 3)


def test_instances_are_matched_regardless_of_order() -> None:
    other = POINTS.copy()
    other[:, :2] += 200.0
    truth = ObjectLabels(
        boxes=np.array([[0, 0, 100, 100], [200, 200, 300, 300]]),
        class_names=("mouse", "mouse"),
        keypoints=np.stack([POINTS, other]),
    )
    prediction = ObjectLabels(
        boxes=np.array([[200, 200, 300, 300], [0, 0, 100, 100]]),
        class_names=("mouse", "mouse"),
        keypoints=np.stack([shifted(other, 0.0, 3.0), shifted(POINTS, 0.0, -3.0)]),
    )
    metrics = keypoint_pixel_error([truth], [prediction])
    assert metrics["mean_error"] == pytest.approx(3.0)
    assert metrics["matched_instances"] == 2 and metrics["unmatched_truths"] == 0


def test_missed_instances_and_keypoints_count_against_pck_only() -> None:
    missing = shifted(POINTS, 3.0)
    missing[2, :2] = np.nan  # the model did not place the right ear
    empty = ObjectLabels(boxes=np.zeros((0, 4)), class_names=())
    metrics = keypoint_pixel_error([animal(POINTS), animal(POINTS)], [animal(missing), empty])
    assert metrics["mean_error"] == pytest.approx(3.0)
    assert metrics["compared_keypoints"] == 2
    assert metrics["labeled_keypoints"] == 6
    assert metrics["unmatched_truths"] == 1
    assert metrics["pck"] == pytest.approx(2 / 6)


def test_nothing_to_compare_gives_none() -> None:
    empty = ObjectLabels(boxes=np.zeros((0, 4)), class_names=())
    metrics = keypoint_pixel_error([empty], [empty])
    assert metrics["mean_error"] is None and metrics["pck"] is None and metrics["kept_fraction"] is None


def test_bad_input_is_rejected() -> None:
    truth = animal(POINTS)
    with pytest.raises(ValidationError, match="1 truths but 0 predictions"):
        keypoint_pixel_error([truth], [])
    with pytest.raises(ValidationError, match="same number of keypoints"):
        keypoint_pixel_error([truth], [animal(POINTS[:3])])
    with pytest.raises(ValidationError, match="cutoff"):
        keypoint_pixel_error([truth], [truth], likelihood_cutoff=1.5)
    with pytest.raises(ValidationError, match="4 keypoint names"):
        keypoint_pixel_error([truth], [truth], keypoint_names=["a"])
