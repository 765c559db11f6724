"""Raw RGB images to what an exported R-CNN detector takes, in numpy alone.

The PyTorch detectors resize inside the model (torchvision's ``GeneralizedRCNNTransform``:
keep the aspect ratio, scale so both sides fit ``side``, bilinear without antialiasing). The
ONNX export leaves that resize out of the graph and does it here, with the same size rule and
the same interpolation arithmetic, so ONNX Runtime and the edge runtime (no PyTorch) feed the
network the numbers PyTorch would. Resizing before the graph also keeps the graph's input small
whatever the photo size: a 12 MP photo is 144 MB as float32, its network input about 1 MB.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["detector_input", "linear_taps", "network_size", "resize_bilinear"]


def network_size(height: int, width: int, side: int) -> tuple[int, int]:
    """The ``(height, width)`` a detector with ``min_size = max_size = side`` resizes an image
    to: torchvision's rule, in Python floats and truncation as its eager path computes it."""
    if height < 1 or width < 1:
        raise ValueError(f"an image needs at least one pixel, got {height}x{width}")
    scale = min(side / min(height, width), side / max(height, width))
    return int(height * scale), int(width * scale)


def linear_taps(
    source: int, target: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """For each of ``target`` output positions along one axis: the two source indices and the
    weight of the second, as PyTorch's bilinear interpolation (``align_corners=False``, scale
    from the sizes, no antialiasing) computes them in float32."""
    scale = np.float32(source) / np.float32(target)
    position = scale * (np.arange(target, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    position = np.maximum(position, np.float32(0.0))
    low = np.minimum(np.floor(position).astype(np.intp), source - 1)
    weight = np.clip(position - low.astype(np.float32), 0.0, 1.0).astype(np.float32)
    high = np.where(low < source - 1, low + 1, low)
    return low, high, weight


def resize_bilinear(values: npt.NDArray[np.generic], size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """``values`` (``(H, W)`` or ``(H, W, C)``, any number type) resized to ``(height, width)``
    as float32, one axis after the other. Rows are gathered before anything is converted, so a
    large photo costs the output's rows, not its pixels."""
    height, width = size
    top, bottom, down = linear_taps(values.shape[0], height)
    left, right, across = linear_taps(values.shape[1], width)
    extra = (None,) * (values.ndim - 1)
    upper = values[top].astype(np.float32)
    rows = upper + (values[bottom].astype(np.float32) - upper) * down[(slice(None), *extra)]
    weight = across[(None, slice(None), *extra[1:])]
    first = rows[:, left]
    resized: npt.NDArray[np.float32] = first + (rows[:, right] - first) * weight
    return resized


def detector_input(image: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.float32]:
    """``(1, 3, h, w)`` float32 in ``[0, 1]``: ``image`` (RGB, any size) resized to the
    detector's network size; the graph normalises and pads it itself."""
    size = network_size(int(image.shape[0]), int(image.shape[1]), side)
    resized = resize_bilinear(image, size) if image.shape[:2] != size else image.astype(np.float32)
    batch: npt.NDArray[np.float32] = np.ascontiguousarray(resized.transpose(2, 0, 1)[None])
    batch /= np.float32(255.0)
    return batch
