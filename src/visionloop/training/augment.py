"""Training augmentations that move the image and every kind of label together.

Each call gets its own ``numpy`` generator, derived by the data loader from (seed, epoch,
sample index), so an augmented sample does not depend on what ran before it: that is what lets a
run killed mid-epoch resume to the same weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import MissingDependencyError
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.tasks.examples import Example, flip_pairs
from visionloop.training.config import AugmentConfig

__all__ = ["Augment", "build_augment", "horizontal_flip"]

Augment = Callable[[Example, np.random.Generator], Example]


def build_augment(config: AugmentConfig, schema: LabelSchema) -> Augment | None:
    if config.pipeline == "none":
        return None
    pairs = flip_pairs(schema.keypoints)
    steps: list[Augment] = []
    if config.hflip:
        steps.append(lambda example, rng: horizontal_flip(example, pairs) if rng.random() < 0.5 else example)
    if config.pipeline == "albumentations":
        steps.append(_albumentations_step(config))
    else:
        if schema.task is TaskType.CLASSIFICATION and config.crop_scale < 1.0:
            steps.append(lambda example, rng: _random_crop(example, config.crop_scale, rng))
        if config.color > 0:
            steps.append(lambda example, rng: _jitter(example, config.color, rng))

    def augment(example: Example, rng: np.random.Generator) -> Example:
        for step in steps:
            example = step(example, rng)
        return example

    return augment


def horizontal_flip(example: Example, pairs: list[tuple[int, int]]) -> Example:
    """Mirror the image; boxes, masks and keypoints follow, and left/right keypoints swap names."""
    width = example.image.shape[1]
    image = np.ascontiguousarray(example.image[:, ::-1])
    boxes = None
    if example.boxes is not None:
        boxes = example.boxes.copy()
        boxes[:, [0, 2]] = width - example.boxes[:, [2, 0]]
    masks = None if example.masks is None else np.ascontiguousarray(example.masks[:, :, ::-1])
    keypoints = None
    if example.keypoints is not None:
        keypoints = example.keypoints.copy()
        keypoints[:, :, 0] = np.where(keypoints[:, :, 2] > 0, width - keypoints[:, :, 0], keypoints[:, :, 0])
        for a, b in pairs:
            keypoints[:, [a, b]] = keypoints[:, [b, a]]
    return replace(example, image=image, boxes=boxes, masks=masks, keypoints=keypoints)


def _jitter(example: Example, strength: float, rng: np.random.Generator) -> Example:
    brightness = 1.0 + rng.uniform(-strength, strength)
    contrast = 1.0 + rng.uniform(-strength, strength)
    pixels = example.image.astype(np.float32)
    mean = pixels.mean()
    pixels = (pixels - mean) * contrast + mean * brightness
    return example.with_image(np.clip(pixels, 0, 255).astype(np.uint8))


def _random_crop(example: Example, min_scale: float, rng: np.random.Generator) -> Example:
    """Classification only: a random crop of ``min_scale``..1 of each side (labels unaffected)."""
    height, width = example.image.shape[:2]
    scale = rng.uniform(min_scale, 1.0)
    crop_h, crop_w = max(1, round(height * scale)), max(1, round(width * scale))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    return example.with_image(np.ascontiguousarray(example.image[top : top + crop_h, left : left + crop_w]))


def _albumentations_step(config: AugmentConfig) -> Augment:
    try:
        import albumentations as A
    except ImportError as exc:
        raise MissingDependencyError("albumentations", "augment", "The albumentations pipeline") from exc
    pipeline = A.Compose(
        [
            A.Affine(scale=(0.85, 1.15), translate_percent=(-0.06, 0.06), rotate=(-10, 10), p=0.5),
            A.RandomBrightnessContrast(brightness_limit=config.color, contrast_limit=config.color, p=0.5),
            A.HueSaturationValue(p=0.3),
            A.GaussNoise(std_range=(0.02, 0.08), p=0.2),
            A.GaussianBlur(blur_limit=(3, 5), p=0.1),
        ],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["object_index"], min_visibility=0.3),
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
    )

    def step(example: Example, rng: np.random.Generator) -> Example:
        pipeline.set_random_seed(int(rng.integers(0, 2**31 - 1)))
        return _apply_albumentations(pipeline, example)

    return step


def _apply_albumentations(pipeline: Any, example: Example) -> Example:
    height, width = example.image.shape[:2]
    boxes = example.boxes if example.boxes is not None else np.zeros((0, 4), np.float32)
    keypoints = example.keypoints
    flat = np.zeros((0, 2), np.float32) if keypoints is None else keypoints[:, :, :2].reshape(-1, 2)
    inputs: dict[str, Any] = {
        "image": example.image,
        "bboxes": np.clip(boxes, 0, [width, height, width, height]),
        "object_index": np.arange(len(boxes)),
        "keypoints": flat,
    }
    if example.masks is not None and len(example.masks):
        inputs["masks"] = list(example.masks)
    out = pipeline(**inputs)
    kept: npt.NDArray[np.int64] = np.asarray(out["object_index"], dtype=np.int64)
    image = np.ascontiguousarray(out["image"], dtype=np.uint8)
    new_height, new_width = image.shape[:2]
    result = replace(example, image=image)
    if example.boxes is not None:
        result = replace(
            result,
            boxes=np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4),
            labels=None if example.labels is None else example.labels[kept],
        )
    if "masks" in out and example.masks is not None:
        masks = np.stack(out["masks"]) if len(out["masks"]) else example.masks[:0]
        result = replace(result, masks=np.ascontiguousarray(masks[kept], dtype=np.uint8))
    if keypoints is not None:
        moved = np.asarray(out["keypoints"], dtype=np.float32).reshape(
            keypoints.shape[0], keypoints.shape[1], 2
        )
        visible = keypoints[:, :, 2].copy()
        outside = (
            (moved[..., 0] < 0)
            | (moved[..., 1] < 0)
            | (moved[..., 0] >= new_width)
            | (moved[..., 1] >= new_height)
        )
        visible[outside] = 0
        result = replace(result, keypoints=np.concatenate([moved, visible[..., None]], axis=2)[kept])
    return result
