"""Predictions made on a reduced (or squashed) decode move back to the full image exactly."""

from __future__ import annotations

import numpy as np

from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.schema import TaskType
from visionloop.formats.masks import rle_decode, rle_encode
from visionloop.models.config import ModelConfig
from visionloop.tasks.registry import get_task
from visionloop.tasks.rescale import rescale_label


def test_boxes_keypoints_and_masks_scale_to_the_full_image() -> None:
    mask = np.zeros((50, 100), bool)
    mask[10:20, 30:60] = True
    label = ObjectLabels(
        boxes=np.array([[30, 10, 60, 20]], float),
        class_names=("a",),
        scores=np.array([0.9]),
        masks=(rle_encode(mask),),
        keypoints=np.array([[[30.0, 10.0, 2.0], [59.5, 19.5, 2.0]]]),
    )
    full = rescale_label(label, (50, 100), (200, 400))
    assert isinstance(full, ObjectLabels)
    assert full.boxes.tolist() == [[120, 40, 240, 80]]
    assert full.keypoints is not None and full.keypoints[0, :, :2].tolist() == [[120, 40], [238, 78]]
    assert full.masks is not None and full.masks[0] is not None
    big = rle_decode(full.masks[0])
    assert big.shape == (200, 400) and big.sum() == mask.sum() * 16
    assert big[40:80, 120:240].all()
    assert full.scores is not None and full.scores.tolist() == [0.9]


def test_class_labels_and_same_sizes_pass_through() -> None:
    label = ClassLabel("a", 0.7)
    assert rescale_label(label, (10, 10), (20, 20)) is label
    objects = ObjectLabels(boxes=np.array([[1, 1, 2, 2]], float), class_names=("a",))
    assert rescale_label(objects, (10, 10), (10, 10)) is objects


def test_only_families_that_squash_their_input_let_decoding_resize_early() -> None:
    config = ModelConfig(image_size=96)
    assert get_task(TaskType.CLASSIFICATION).family("classifier").squashed_size(config) == (96, 96)
    assert get_task(TaskType.KEYPOINTS).family("heatmap").squashed_size(config) == (96, 96)
    for task in (TaskType.DETECTION, TaskType.SEGMENTATION, TaskType.KEYPOINTS):
        detector = get_task(task).default_family
        assert get_task(task).family(detector).squashed_size(config) is None  # keeps the aspect
