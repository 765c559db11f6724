"""Raw RGB images to the float batches ImageNet-style networks take, in numpy alone.

Training (PyTorch), ONNX Runtime inference and the edge runtime (no PyTorch) must feed a network
exactly the same numbers, so the squash-and-normalise arithmetic lives here once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "normalised_batch", "resize_image"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN_ARRAY = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
_STD_ARRAY = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)


def resize_image(image: npt.NDArray[np.uint8], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """Resize an RGB array to ``(height, width)`` with bilinear filtering (no-op when equal)."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    resized = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized)


def normalised_batch(images: Sequence[npt.NDArray[np.uint8]], side: int) -> npt.NDArray[np.float32]:
    """``(N, 3, side, side)`` float32: every image squashed to ``side x side`` and normalised
    with the ImageNet statistics, once for the whole batch."""
    stacked = np.stack([resize_image(image, (side, side)) for image in images])
    batch: npt.NDArray[np.float32] = np.empty((len(images), 3, side, side), np.float32)
    batch[...] = stacked.transpose(0, 3, 1, 2)
    batch /= np.float32(255.0)
    batch -= _MEAN_ARRAY
    batch /= _STD_ARRAY
    return batch
