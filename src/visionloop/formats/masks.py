"""Mask conversions: binary arrays, COCO RLE (uncompressed in the core, compressed on disk),
polygons. pycocotools does the compressed and polygon work; plain numpy the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError

BoolArray = npt.NDArray[np.bool_]
# Masks larger than this are refused before anything is allocated (a file may claim any size).
MAX_MASK_PIXELS = 1 << 28


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
    if height * width > MAX_MASK_PIXELS:
        raise ValidationError(f"RLE mask of {height}x{width} exceeds the limit of {MAX_MASK_PIXELS} pixels")
    if isinstance(counts, str | bytes):
        # Our own reader, not pycocotools' decode: that one leaves pixels uninitialised (random
        # mask bits) when the runs cover less than the image.
        counts = _string_counts(counts)
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


def _string_counts(text: str | bytes) -> list[int]:
    """The run lengths of a COCO compressed-RLE string: signed 5-bit groups, low group first,
    with runs after the second stored as the difference to the run two before."""
    raw = text.encode("latin-1", "replace") if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    position = 0
    while position < len(raw):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(raw):
                raise ValidationError("undecodable compressed RLE: the string ends inside a run length")
            char = raw[position] - 48
            if not 0 <= char < 64:
                raise ValidationError(f"undecodable compressed RLE: byte {raw[position]!r} at {position}")
            value |= (char & 0x1F) << shift
            more = bool(char & 0x20)
            position, shift = position + 1, shift + 5
            if not more and char & 0x10:
                value |= -1 << shift
        counts.append(value + counts[-2] if len(counts) > 2 else value)
    return counts


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


def mask_to_polygon(mask: npt.ArrayLike) -> npt.NDArray[np.float64] | None:
    """The outline of the mask's largest region as one ``(N, 2)`` ring of pixel-corner points,
    or ``None`` for an empty mask.

    The ring runs along pixel edges (a pixel ``(row, col)`` covers ``[col, col + 1] x
    [row, row + 1]``), so it encloses exactly the region's pixels; only corners are kept. Regions
    touching at a corner count as separate (4-connectivity); holes are not part of the ring.
    Tools that speak only polygons (Label Studio's PolygonLabels, CVAT's polygons) need this.
    """
    array = np.asarray(mask, dtype=bool)
    if array.ndim != 2:
        raise ValidationError(f"a mask must be 2-D, got shape {array.shape}")
    if not array.any():
        return None
    loops = _boundary_loops(array)
    best = max(loops, key=_signed_area)
    return best if _signed_area(best) > 0 else None


# Directed boundary edges, the region kept on their right (image coordinates, y down):
# direction 0 heads +x along a top edge, 1 heads +y along a right edge, 2 heads -x along a bottom
# edge, 3 heads -y along a left edge. Outer outlines run clockwise on screen, holes the other way.
_STEPS = ((1, 0), (0, 1), (-1, 0), (0, -1))


def _boundary_loops(array: BoolArray) -> list[npt.NDArray[np.float64]]:
    padded = np.pad(array, 1)
    inside = padded[1:-1, 1:-1]
    starts: list[npt.NDArray[np.int64]] = []
    for direction, (dr, dc) in enumerate(((-1, 0), (0, 1), (1, 0), (0, -1))):
        neighbour = padded[1 + dr : padded.shape[0] - 1 + dr, 1 + dc : padded.shape[1] - 1 + dc]
        rows, cols = np.nonzero(inside & ~neighbour)
        # The edge's start corner: top-left, top-right, bottom-right, bottom-left of the pixel.
        xs = cols + (direction in (1, 2))
        ys = rows + (direction in (2, 3))
        starts.append(np.stack([xs, ys, np.full_like(xs, direction)], axis=1))
    edges = np.concatenate(starts)
    outgoing: dict[tuple[int, int], list[int]] = {}
    for index, (x, y, _) in enumerate(edges.tolist()):
        outgoing.setdefault((x, y), []).append(index)
    used = np.zeros(len(edges), dtype=bool)
    loops = []
    for first in range(len(edges)):
        if used[first]:
            continue
        corners: list[tuple[int, int]] = []
        index = first
        previous = -1
        while not used[index]:
            used[index] = True
            x, y, direction = (int(v) for v in edges[index])
            if direction != previous:
                corners.append((x, y))
            previous = direction
            step_x, step_y = _STEPS[direction]
            choices = [e for e in outgoing[(x + step_x, y + step_y)] if not used[e]]
            if not choices:
                break
            # Where two regions touch at a corner, turn right: each keeps its own outline.
            right = [e for e in choices if edges[e, 2] == (direction + 1) % 4]
            index = right[0] if right else choices[0]
        if len(corners) > 1 and edges[first, 2] == previous:
            corners.pop(0)  # the loop closed in the middle of its first straight run
        loops.append(np.array(corners, dtype=np.float64))
    return loops


def _signed_area(ring: npt.NDArray[np.float64]) -> float:
    """Positive for outlines (clockwise on screen), negative for holes."""
    x, y = ring[:, 0], ring[:, 1]
    return float((np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2.0)
