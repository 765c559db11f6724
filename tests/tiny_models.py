"""Model folders written straight from a freshly built network (ImageNet backbone, new head):
no training, so tests that only need *a* model of a family get one in a second."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from visionloop.core.schema import LabelSchema, TaskType
from visionloop.models.artifact import ModelArtifact, write_artifact
from visionloop.models.config import ModelConfig
from visionloop.tasks.registry import get_task

SCHEMAS = {
    "classifier": LabelSchema(task=TaskType.CLASSIFICATION, classes=["cat", "dog", "fox"]),
    "heatmap": LabelSchema(task=TaskType.KEYPOINTS, classes=["animal"], keypoints=["nose", "tail"]),
    "faster_rcnn": LabelSchema(task=TaskType.DETECTION, classes=["box"]),
    "mask_rcnn": LabelSchema(task=TaskType.SEGMENTATION, classes=["box", "bar"]),
    "keypoint_rcnn": LabelSchema(
        task=TaskType.KEYPOINTS, classes=["box"], keypoints=["left", "right", "top"]
    ),
}


def write_model(
    folder: Path, family: str = "classifier", image_size: int = 32, seed: int = 0, max_detections: int = 20
) -> ModelArtifact:
    """A model folder of ``family``; ``seed`` perturbs the head so two calls differ in weights.
    Detectors keep at most ``max_detections`` objects per image (their untrained heads find
    objects everywhere)."""
    schema = SCHEMAS[family]
    config = ModelConfig(
        family=family, image_size=image_size, weights="imagenet", max_detections=max_detections
    )
    network, _ = get_task(schema.task).family(family).build(schema, config)
    torch.manual_seed(seed)
    head = [m for m in network.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)][-1]
    with torch.no_grad():
        head.weight.normal_(0.0, 0.05)
    return write_artifact(folder, network.state_dict(), schema, config, family, run_id=None)


def photos(count: int = 12, seed: int = 0) -> list[npt.NDArray[np.uint8]]:
    """Smooth random RGB images of assorted sizes (gradients plus blobs, not white noise)."""
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        height, width = 40 + 7 * index, 60 - 2 * index
        y, x = np.mgrid[0:height, 0:width]
        base = rng.random(3) * 255
        slope = rng.normal(0, 2, (3, 2))
        image = base + slope[:, 0] * y[..., None] + slope[:, 1] * x[..., None]
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        image[(y - cy) ** 2 + (x - cx) ** 2 < (height * width) / 20] = rng.random(3) * 255
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return images
