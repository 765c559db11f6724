"""Record checks every loader shares, so each format rejects bad input for the same reasons."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from visionloop.core.schema import LabelSchema

#: Coordinates may exceed the image by this many pixels (rounding in the tools that wrote them).
EDGE_TOLERANCE_PX = 1.0


def finite_numbers(values: object, count: int | None = None) -> list[float] | None:
    """``values`` as floats when it is a list of finite numbers (of ``count`` items); else None."""
    if not isinstance(values, list | tuple) or (count is not None and len(values) != count):
        return None
    out: list[float] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        out.append(float(value))
    return out


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
    if width is not None and height is not None and not _inside(ring, width, height):
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


def class_problem(name: str, schema: LabelSchema | None) -> str | None:
    if schema is not None and name not in schema.classes:
        return f"unknown class {name!r}; known classes: {', '.join(schema.classes)}"
    return None


def _inside(points: npt.NDArray[np.float64], width: int, height: int) -> bool:
    tol = EDGE_TOLERANCE_PX
    return bool(
        np.all(points[:, 0] >= -tol)
        and np.all(points[:, 1] >= -tol)
        and np.all(points[:, 0] <= width + tol)
        and np.all(points[:, 1] <= height + tol)
    )


def _fmt(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"
