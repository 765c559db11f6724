"""Move a predicted label from a reduced decode back to the image's full pixel grid.

Pre-labeling decodes JPEGs at a reduced scale (``Image.draft``: 2x to 8x less work) when the
model will shrink the image anyway; what it predicts is then in the reduced image's pixels, and
the catalog stores labels in the full image's. Boxes, keypoints and polygons scale; masks are
resized with nearest-neighbour sampling.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image

from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.formats.masks import rle_decode, rle_encode

__all__ = ["rescale_label"]


def rescale_label(label: Label, source: tuple[int, int], target: tuple[int, int]) -> Label:
    """``label`` drawn on an image of ``source`` (height, width), moved to ``target``."""
    if isinstance(label, ClassLabel) or source == target or not isinstance(label, ObjectLabels):
        return label
    scale_y, scale_x = target[0] / source[0], target[1] / source[1]
    height, width = target
    boxes = label.boxes * np.array([scale_x, scale_y, scale_x, scale_y])
    boxes = np.clip(boxes, 0.0, [width, height, width, height])
    keypoints = None
    if label.keypoints is not None:
        keypoints = label.keypoints.copy()
        keypoints[:, :, 0] *= scale_x
        keypoints[:, :, 1] *= scale_y
    polygons = None
    if label.polygons is not None:
        polygons = tuple(
            tuple(ring * np.array([scale_x, scale_y]) for ring in rings) for rings in label.polygons
        )
    masks = None
    if label.masks is not None:
        masks = tuple(None if rle is None else _resize_mask(rle, target) for rle in label.masks)
    return replace(label, boxes=boxes, keypoints=keypoints, polygons=polygons, masks=masks)


def _resize_mask(rle: dict[str, object], target: tuple[int, int]) -> dict[str, object]:
    mask = Image.fromarray(rle_decode(rle).astype(np.uint8) * 255)
    resized = mask.resize((target[1], target[0]), Image.Resampling.NEAREST)
    return rle_encode(np.asarray(resized) > 127)
