"""Mask conversions: binary arrays, COCO RLE (uncompressed in the core, compressed on disk),
polygons. pycocotools does the compressed and polygon work; plain numpy the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError

BoolArray = npt.NDArray[np.bool_]


def rle_encode(mask: npt.ArrayLike) -> dict[str, Any]:
    """Binary ``(H, W)`` mask -> COCO RLE with uncompressed counts (column-major, starting with 0s)."""
    array = np.asarray(mask, dtype=bool)
    if array.ndim != 2:
        raise ValidationError(f"a mask must be 2-D, got shape {array.shape}")
    height, width = array.shape
    flat = array.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return {"size": [height, width], "counts": [int(r) for r in runs]}


def rle_decode(rle: dict[str, Any]) -> BoolArray:
    """COCO RLE (list or compressed string counts) -> binary ``(H, W)`` mask."""
    size = rle.get("size")
    counts = rle.get("counts")
    if not (
        isinstance(size, list | tuple) and len(size) == 2 and all(isinstance(v, int) and v >= 0 for v in size)
    ):
        raise ValidationError(f"RLE size must be [height, width], got {size!r}")
    height, width = size
    if isinstance(counts, str | bytes):
        from pycocotools import mask as coco_mask

        try:
            decoded = coco_mask.decode({"size": [height, width], "counts": counts})
        except Exception as exc:
            raise ValidationError(f"undecodable compressed RLE: {exc}") from exc
        return np.asarray(decoded, dtype=bool)
    if not isinstance(counts, list) or not all(isinstance(c, int) and c >= 0 for c in counts):
        raise ValidationError("RLE counts must be a list of non-negative integers or a compressed string")
    if sum(counts) != height * width:
        raise ValidationError(
            f"RLE counts sum to {sum(counts)}, expected {height}x{width} = {height * width}"
        )
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((width, height)).T


def rle_compress(rle: dict[str, Any]) -> dict[str, Any]:
    """Uncompressed-count RLE -> the compressed-string form COCO files usually hold."""
    from pycocotools import mask as coco_mask

    encoded = coco_mask.frPyObjects({"size": list(rle["size"]), "counts": list(rle["counts"])}, *rle["size"])
    counts = encoded["counts"]
    return {
        "size": list(rle["size"]),
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


def rle_area(rle: dict[str, Any]) -> int:
    counts = rle["counts"]
    if isinstance(counts, list):
        return int(sum(counts[1::2]))
    return int(rle_decode(rle).sum())


def polygons_to_mask(rings: Sequence[npt.NDArray[np.float64]], height: int, width: int) -> BoolArray:
    """Rasterise polygons (``(N, 2)`` pixel rings) the way COCO's tools do."""
    from pycocotools import mask as coco_mask

    flat = [ring.reshape(-1).tolist() for ring in rings]
    if not flat:
        return np.zeros((height, width), dtype=bool)
    merged = coco_mask.merge(coco_mask.frPyObjects(flat, height, width))
    return np.asarray(coco_mask.decode(merged), dtype=bool)


def polygon_area(ring: npt.NDArray[np.float64]) -> float:
    """Shoelace formula (slices rather than ``np.roll``, which is slow on small arrays)."""
    x, y = ring[:, 0], ring[:, 1]
    twice = np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]) + x[-1] * y[0] - x[0] * y[-1]
    return float(abs(twice) / 2.0)
