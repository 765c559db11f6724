"""Core labels -> the answer of a CVAT serverless (nuclio) detector function.

CVAT posts ``{"image": <base64>, "threshold": 0.5}`` to a detector and reads back a list of
shapes in absolute pixels, each with its ``label`` and its ``confidence`` as a string:

- a class: ``{"type": "tag", "label", "confidence"}``;
- a box: ``{"type": "rectangle", "points": [x0, y0, x1, y1]}`` (top-left, bottom-right);
- a mask: ``{"type": "mask", "mask": [...], "points": [x, y, ...]}``: ``mask`` is the mask's
  0/1 pixels row by row inside its inclusive pixel extent, followed by that extent ``xtl, ytl,
  xbr, ybr`` (CVAT turns it into its own RLE); ``points`` is the outline as a polygon, which CVAT
  uses when asked to convert masks to polygons;
- polygons without a mask: ``{"type": "polygon", "points": [x, y, ...]}`` (the largest ring);
- keypoints: ``{"type": "skeleton", "elements": [{"type": "points", "label": <keypoint>,
  "points": [x, y], "outside": <not labeled>}]}``, one element per keypoint of the schema.

Objects scoring below the threshold are left out; unscored ones are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.formats.masks import mask_to_polygon, polygon_area, rle_decode

__all__ = ["detector_shapes"]


def detector_shapes(
    label: Label, threshold: float, keypoint_names: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The shapes CVAT reads from a detector function for one image's ``label``."""
    if isinstance(label, ClassLabel):
        if label.score is not None and label.score < threshold:
            return []
        return [{"confidence": _confidence(label.score), "label": label.class_name, "type": "tag"}]
    if not isinstance(label, ObjectLabels):
        return []
    shapes = []
    for i in range(len(label)):
        score = None if label.scores is None else float(label.scores[i])
        if score is not None and score < threshold:
            continue
        shape = _shape(label, i, keypoint_names)
        shapes.append({"confidence": _confidence(score), "label": label.class_names[i], **shape})
    return shapes


def _shape(label: ObjectLabels, i: int, keypoint_names: Sequence[str]) -> dict[str, Any]:
    if label.keypoints is not None:
        elements = []
        for k, (x, y, visibility) in enumerate(label.keypoints[i]):
            name = keypoint_names[k] if k < len(keypoint_names) else str(k)
            elements.append(
                {
                    "label": name,
                    "type": "points",
                    "points": [float(x), float(y)],
                    "outside": bool(visibility <= 0),
                }
            )
        return {"type": "skeleton", "points": [], "elements": elements}
    rle = label.masks[i] if label.masks is not None else None
    if rle is not None:
        mask = rle_decode(rle)
        ring = mask_to_polygon(mask)
        if ring is not None:
            rows, cols = np.nonzero(mask)
            xtl, ytl, xbr, ybr = int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())
            crop = mask[ytl : ybr + 1, xtl : xbr + 1].astype(np.uint8).reshape(-1).tolist()
            return {"type": "mask", "mask": [*crop, xtl, ytl, xbr, ybr], "points": _flat(ring)}
    rings = label.polygons[i] if label.polygons is not None else ()
    if rings:
        return {"type": "polygon", "points": _flat(max(rings, key=polygon_area))}
    return {"type": "rectangle", "points": [float(v) for v in label.boxes[i]]}


def _flat(ring: npt.NDArray[np.float64]) -> list[float]:
    return [float(v) for v in ring.reshape(-1)]


def _confidence(score: float | None) -> str:
    return "1.0" if score is None else str(round(float(score), 6))
