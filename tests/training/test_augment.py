"""Augmentations move the image and every label together: boxes, masks and keypoints stay on the
object after albumentations' affine steps, flips swap left/right keypoints, and the same
generator seed gives the same sample (what resume relies on)."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.core.schema import LabelSchema, TaskType
from visionloop.tasks.examples import Example, flip_pairs
from visionloop.training.augment import build_augment, horizontal_flip
from visionloop.training.config import AugmentConfig

pytest.importorskip("albumentations")

KEYPOINTS = ["left_corner", "right_corner", "middle"]
SIZE = 96
RECTS = [(10, 14, 40, 50), (52, 30, 88, 70)]  # x0, y0, x1, y1 (exclusive)


def _example() -> Example:
    image = np.full((SIZE, SIZE, 3), 30, np.uint8)
    masks = np.zeros((len(RECTS), SIZE, SIZE), np.uint8)
    keypoints = np.zeros((len(RECTS), 3, 3), np.float32)
    for i, (x0, y0, x1, y1) in enumerate(RECTS):
        image[y0:y1, x0:x1] = (200, 60 + 100 * i, 40)
        masks[i, y0:y1, x0:x1] = 1
        # Points well inside the object, so a one-pixel rounding cannot move them off it.
        keypoints[i] = [[x0 + 4.5, y0 + 4.5, 2], [x1 - 4.5, y0 + 4.5, 2], [(x0 + x1) / 2, (y0 + y1) / 2, 2]]
    return Example(
        image=image,
        boxes=np.array(RECTS, np.float32),
        labels=np.array([0, 1], np.int64),
        masks=masks,
        keypoints=keypoints,
    )


def _schema() -> LabelSchema:
    return LabelSchema(task=TaskType.KEYPOINTS, classes=["a", "b"], keypoints=KEYPOINTS)


def _albumentations(hflip: bool = False) -> object:
    augment = build_augment(AugmentConfig(pipeline="albumentations", hflip=hflip), _schema())
    assert augment is not None
    return augment


def test_albumentations_keeps_boxes_masks_and_keypoints_on_their_objects() -> None:
    augment = _albumentations()
    moved = 0
    for seed in range(24):
        out = augment(_example(), np.random.default_rng(seed))  # type: ignore[operator]
        assert out.masks is not None and out.boxes is not None and out.keypoints is not None
        assert out.labels is not None
        assert out.masks.shape[1:] == out.image.shape[:2]
        assert len(out.boxes) == len(out.labels) == len(out.masks) == len(out.keypoints)
        for box, mask, points in zip(out.boxes, out.masks, out.keypoints, strict=True):
            ys, xs = np.nonzero(mask)
            extent = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            assert np.abs(box - extent).max() <= 2.0, (seed, box, extent)
            for x, y, visible in points:
                if visible > 0:
                    row, col = int(y), int(x)
                    assert mask[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2].any(), (seed, x, y)
        if not np.array_equal(out.boxes, np.array(RECTS, np.float32)[out.labels]):
            moved += 1
    assert moved >= 4  # the affine step really ran (p=0.5 over 24 samples)


def test_albumentations_is_a_function_of_the_generator_seed() -> None:
    augment = _albumentations()
    first = augment(_example(), np.random.default_rng(7))  # type: ignore[operator]
    again = augment(_example(), np.random.default_rng(7))  # type: ignore[operator]
    assert np.array_equal(first.image, again.image)
    assert first.boxes is not None and again.boxes is not None
    assert np.array_equal(first.boxes, again.boxes)
    assert first.keypoints is not None and again.keypoints is not None
    assert np.array_equal(first.keypoints, again.keypoints)


def test_horizontal_flip_mirrors_every_label_and_swaps_left_and_right_points() -> None:
    example = _example()
    pairs = flip_pairs(KEYPOINTS)
    assert pairs == [(0, 1)]
    out = horizontal_flip(example, pairs)
    assert out.boxes is not None and out.masks is not None and out.keypoints is not None
    assert example.keypoints is not None
    x0, y0, x1, y1 = RECTS[0]
    assert out.boxes[0].tolist() == [SIZE - x1, y0, SIZE - x0, y1]
    assert np.array_equal(out.masks[0], example.masks[0][:, ::-1])  # type: ignore[index]
    # The point that was the left corner is now on the right, and is named right_corner.
    assert out.keypoints[0, 1, 0] == SIZE - example.keypoints[0, 0, 0]
    assert out.keypoints[0, 0, 0] == SIZE - example.keypoints[0, 1, 0]
    assert out.keypoints[0, 0, 0] < out.keypoints[0, 1, 0]
    assert np.array_equal(horizontal_flip(out, pairs).keypoints, example.keypoints)  # type: ignore[arg-type]
