"""Image-to-tensor conversions shared by the model families."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from visionloop.models.backbones import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["normalised_batch", "normalised_tensor", "resize_image", "unit_tensor"]

_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)
_MEAN_ARRAY = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
_STD_ARRAY = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)


def resize_image(image: npt.NDArray[np.uint8], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """Resize an RGB array to ``(height, width)`` with bilinear filtering (no-op when equal)."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    resized = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized)


def unit_tensor(image: npt.NDArray[np.uint8]) -> torch.Tensor:
    """``(3, H, W)`` float in [0, 1] (the detectors normalise internally)."""
    return torch.tensor(image, dtype=torch.float32).permute(2, 0, 1).div_(255.0)


def normalised_tensor(image: npt.NDArray[np.uint8], side: int) -> torch.Tensor:
    """Squash to ``side x side`` and normalise with the ImageNet statistics."""
    return (unit_tensor(resize_image(image, (side, side))) - _MEAN) / _STD


def normalised_batch(images: Sequence[npt.NDArray[np.uint8]], side: int) -> npt.NDArray[np.float32]:
    """``(N, 3, side, side)`` float32: every image squashed to ``side x side`` and normalised
    with the ImageNet statistics, the same arithmetic as :func:`normalised_tensor` done once for
    the whole batch (and without torch, so ONNX Runtime inference can use it)."""
    stacked = np.stack([resize_image(image, (side, side)) for image in images])
    batch: npt.NDArray[np.float32] = np.empty((len(images), 3, side, side), np.float32)
    batch[...] = stacked.transpose(0, 3, 1, 2)
    batch /= np.float32(255.0)
    batch -= _MEAN_ARRAY
    batch /= _STD_ARRAY
    return batch
