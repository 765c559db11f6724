"""The numpy decoders every runtime shares: heat-map peaks against a plain loop, softmax labels,
pose labels in the image's pixels, and the PyTorch families calling the same code."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.models.config import ModelConfig
from visionloop.tasks.classification import ClassifierFamily
from visionloop.tasks.outputs import class_labels, heatmap_peaks, pose_labels, softmax
from visionloop.tasks.pose import HeatmapFamily


def _reference_peaks(logits: np.ndarray, offsets: np.ndarray, stride: int, k: int) -> np.ndarray:
    """Local 3x3 maxima of the sigmoid found by looping over every pixel, strongest k first."""
    batch, parts, height, width = logits.shape
    probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    out = np.zeros((batch, k, parts, 3))
    for b in range(batch):
        for p in range(parts):
            found = []
            for y in range(height):
                for x in range(width):
                    window = probabilities[b, p, max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
                    if probabilities[b, p, y, x] >= window.max():
                        found.append((probabilities[b, p, y, x], y, x))
            found.sort(key=lambda peak: -peak[0])
            for i, (score, y, x) in enumerate(found[:k]):
                dx, dy = offsets[b, 2 * p, y, x], offsets[b, 2 * p + 1, y, x]
                out[b, i, p] = (
                    (x + 0.5 + dx) * stride,
                    (y + 0.5 + dy) * stride,
                    score if score >= 0.05 else 0,
                )
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 2])
def test_heatmap_peaks_match_a_plain_loop(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    batch, parts, height, width = 2, 3, int(rng.integers(3, 12)), int(rng.integers(3, 12))
    logits = rng.normal(0, 3, (batch, parts, height, width)).astype(np.float32)
    offsets = rng.normal(0, 1, (batch, 2 * parts, height, width)).astype(np.float32)
    np.testing.assert_allclose(
        heatmap_peaks(logits, offsets, 4, max_instances=k), _reference_peaks(logits, offsets, 4, k), atol=1e-5
    )


def test_a_weak_peak_counts_as_missing() -> None:
    logits = np.full((1, 1, 4, 4), -10.0, np.float32)
    logits[0, 0, 1, 2] = -4.0  # sigmoid ~0.018, below the 0.05 floor
    peaks = heatmap_peaks(logits, np.zeros((1, 2, 4, 4), np.float32))
    assert peaks.shape == (1, 1, 1, 3)
    assert peaks[0, 0, 0].tolist() == [(2 + 0.5) * 4, (1 + 0.5) * 4, 0.0]


def test_class_labels_take_the_top_softmax_class() -> None:
    logits = np.array([[0.0, 2.0, 1.0], [5.0, -1.0, 0.0]], np.float32)
    labels = class_labels(logits, ["a", "b", "c"])
    assert [label.class_name for label in labels] == ["b", "a"]
    probabilities = softmax(logits)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert labels[0].score == pytest.approx(probabilities[0, 1])
    assert labels[1].probabilities == tuple(probabilities[1].tolist())


def test_pose_labels_land_in_the_image_pixels() -> None:
    logits = np.full((2, 2, 8, 8), -10.0, np.float32)
    logits[:, 0, 2, 3] = 4.0
    logits[:, 1, 6, 1] = 4.0
    offsets = np.zeros((2, 4, 8, 8), np.float32)
    labels = pose_labels(logits, offsets, [(64, 64), (128, 32)], "animal", side=32)
    first, second = labels
    np.testing.assert_allclose(first.keypoints[0, :, :2], [[14 * 2, 10 * 2], [6 * 2, 26 * 2]])
    np.testing.assert_allclose(second.keypoints[0, :, :2], [[14, 10 * 4], [6, 26 * 4]])
    assert first.boxes.tolist() == [[12.0, 20.0, 28.0, 52.0]]
    assert first.scores is not None and first.scores[0] == pytest.approx(1 / (1 + np.exp(-4.0)), abs=1e-6)


def test_the_pytorch_families_decode_with_the_shared_functions() -> None:
    rng = np.random.default_rng(0)
    schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=["x", "y"])
    logits = rng.normal(size=(3, 2)).astype(np.float32)
    sizes = [(10, 10)] * 3
    family_labels = ClassifierFamily().labels_from_outputs(
        [logits], sizes, schema, ModelConfig(image_size=32)
    )
    assert family_labels == class_labels(logits, schema.classes)
    assert all(isinstance(label, ClassLabel) for label in family_labels)

    pose_schema = LabelSchema(task=TaskType.KEYPOINTS, classes=["animal"], keypoints=["a", "b"])
    maps = rng.normal(size=(3, 2, 8, 8)).astype(np.float32)
    offsets = rng.normal(size=(3, 4, 8, 8)).astype(np.float32)
    sizes = [(40, 50), (32, 32), (10, 90)]
    ours = HeatmapFamily().labels_from_outputs(
        [maps, offsets], sizes, pose_schema, ModelConfig(image_size=32)
    )
    shared = pose_labels(maps, offsets, sizes, "animal", 32)
    for mine, theirs in zip(ours, shared, strict=True):
        assert isinstance(mine, ObjectLabels)
        np.testing.assert_array_equal(mine.keypoints, theirs.keypoints)
        np.testing.assert_array_equal(mine.keypoint_scores, theirs.keypoint_scores)
