"""Record checks every loader shares, so each format rejects bad input for the same reasons."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from visionloop.core.schema import LabelSchema, is_valid_name

#: Coordinates may exceed the image by this many pixels (rounding in the tools that wrote them).
EDGE_TOLERANCE_PX = 1.0
_NUMBER_TYPES = frozenset({int, float})


def finite_numbers(values: object, count: int | None = None) -> list[float] | None:
    """``values`` itself when it is a list of finite numbers (of ``count`` items); else None.

    Runs for every coordinate list of every record, so it checks exact types (JSON gives int
    and float; ``bool`` is refused) with builtins rather than per-item Python branches, and
    returns the list as given (ints included) instead of copying it.
    """
    if type(values) is not list and type(values) is not tuple:
        return None
    if count is not None and len(values) != count:
        return None
    if not set(map(type, values)) <= _NUMBER_TYPES:
        return None
    try:
        total = math.fsum(values)  # NaN or an infinity anywhere makes the sum non-finite
    except OverflowError:
        return None
    if not math.isfinite(total):
        return None
    return values if type(values) is list else list(values)


def box_problem(box: Sequence[float], width: int | None, height: int | None) -> str | None:
    """Why an ``xyxy`` box is invalid for an image of this size, or None."""
    x0, y0, x1, y1 = box
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return f"box {_fmt(box)} has zero or negative size"
    if width is not None and height is not None:
        tol = EDGE_TOLERANCE_PX
        if x0 < -tol or y0 < -tol or x1 > width + tol or y1 > height + tol:
            return f"box {_fmt(box)} lies outside the {width}x{height} image"
    return None


def polygon_problem(ring: npt.NDArray[np.float64], width: int | None, height: int | None) -> str | None:
    if len(ring) < 3:
        return f"polygon has {len(ring)} points; at least 3 are needed"
    if width is not None and height is not None:
        low, high = ring.min(axis=0), ring.max(axis=0)
        if not _bounds_inside(float(low[0]), float(low[1]), float(high[0]), float(high[1]), width, height):
            return f"polygon lies outside the {width}x{height} image"
    return None


def flat_polygon_problem(flat: list[float], width: int | None, height: int | None) -> str | None:
    """:func:`polygon_problem` for a flat ``[x0, y0, x1, y1, ...]`` list, without numpy overhead."""
    if len(flat) < 6:
        return f"polygon has {len(flat) // 2} points; at least 3 are needed"
    if width is not None and height is not None:
        xs, ys = flat[0::2], flat[1::2]
        if not _bounds_inside(min(xs), min(ys), max(xs), max(ys), width, height):
            return f"polygon lies outside the {width}x{height} image"
    return None


def keypoints_problem(
    keypoints: npt.NDArray[np.float64], width: int | None, height: int | None
) -> str | None:
    """``keypoints`` is ``(K, 3)``; labeled points (visibility > 0) must lie in the image."""
    if np.any(~np.isin(keypoints[:, 2], (0, 1, 2))):
        return "keypoint visibility must be 0, 1 or 2"
    labeled = keypoints[keypoints[:, 2] > 0, :2]
    if width is not None and height is not None and len(labeled) and not _inside(labeled, width, height):
        return f"keypoint lies outside the {width}x{height} image"
    return None


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a class or keypoint name, or None."""
    if not is_valid_name(name):
        return f"invalid name {name[:140]!r}: use 1 to 128 printable characters without commas"
    return None


def class_problem(name: str, schema: LabelSchema | None) -> str | None:
    if schema is not None and name not in schema.classes:
        return f"unknown class {name!r}; known classes: {', '.join(schema.classes)}"
    return None


def _inside(points: npt.NDArray[np.float64], width: int, height: int) -> bool:
    low, high = points.min(axis=0), points.max(axis=0)
    return _bounds_inside(float(low[0]), float(low[1]), float(high[0]), float(high[1]), width, height)


def _bounds_inside(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> bool:
    tol = EDGE_TOLERANCE_PX
    return x0 >= -tol and y0 >= -tol and x1 <= width + tol and y1 <= height + tol


def _fmt(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"
