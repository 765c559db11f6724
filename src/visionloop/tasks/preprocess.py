"""Image-to-tensor conversions shared by the model families.

The numpy half (squash, ImageNet normalisation of a batch) is
:mod:`visionloop.imaging.model_input`, which ONNX Runtime and the edge runtime use without
PyTorch; the tensors here follow the same arithmetic.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from visionloop.imaging.model_input import IMAGENET_MEAN, IMAGENET_STD, normalised_batch, resize_image

__all__ = ["normalised_batch", "normalised_tensor", "resize_image", "unit_tensor"]

_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def unit_tensor(image: npt.NDArray[np.uint8]) -> torch.Tensor:
    """``(3, H, W)`` float in [0, 1] (the detectors normalise internally)."""
    return torch.tensor(image, dtype=torch.float32).permute(2, 0, 1).div_(255.0)


def normalised_tensor(image: npt.NDArray[np.uint8], side: int) -> torch.Tensor:
    """Squash to ``side x side`` and normalise with the ImageNet statistics (the arithmetic of
    :func:`~visionloop.imaging.model_input.normalised_batch`, for one image)."""
    return (unit_tensor(resize_image(image, (side, side))) - _MEAN) / _STD
