"""An exported R-CNN detector's outputs to core labels, in numpy alone.

The graph returns what the network computes at its own input size (see
:mod:`visionloop.tasks.detection_inputs`): boxes, 1-based labels and scores, plus each object's
``M x M`` mask probabilities (Mask R-CNN) or ``K`` keypoint heat maps (Keypoint R-CNN). The rest
of torchvision's post-processing happens here, with its arithmetic: boxes and keypoints scale
back to the image, masks are pasted into the image at the size of their box, keypoints are the
peaks of their heat maps resized bicubically to their box. Doing it outside the graph keeps ONNX
Runtime from building ``N x H x W`` float masks at photo size (gigabytes for a 12 MP photo and
100 objects) and from running an ONNX loop per object for keypoints; here each object costs its
box's pixels. Nothing imports PyTorch, so the edge runtime decodes with the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.labels import ObjectLabels
from visionloop.formats.masks import rle_encode
from visionloop.tasks.detection_inputs import network_size, resize_bilinear

__all__ = [
    "MASK_THRESHOLD",
    "cubic_taps",
    "detection_labels",
    "heatmap_keypoints",
    "object_labels",
    "paste_masks",
    "rescale_points",
]

MASK_THRESHOLD = 0.5
_CUBIC_A = np.float32(-0.75)  # PyTorch's bicubic kernel
_MASK_PADDING = 1  # torchvision pads each M x M mask by one pixel before pasting


def rescale_points(
    values: npt.NDArray[np.floating[Any]], network: tuple[int, int], image: tuple[int, int]
) -> npt.NDArray[np.float32]:
    """x, y columns (boxes ``(N, 4)`` or points ``(..., 2+)``) from the network's input pixels to
    the image's, with torchvision's float32 ratios."""
    ratio_y = np.float32(image[0]) / np.float32(network[0])
    ratio_x = np.float32(image[1]) / np.float32(network[1])
    out = np.array(values, dtype=np.float32)
    if out.ndim == 2 and out.shape[1] == 4:
        out *= np.array([ratio_x, ratio_y, ratio_x, ratio_y], np.float32)
    else:
        out[..., 0] *= ratio_x
        out[..., 1] *= ratio_y
    return out


def paste_masks(
    probabilities: npt.NDArray[np.float32], boxes: npt.NDArray[np.float32], size: tuple[int, int]
) -> tuple[dict[str, Any], ...]:
    """One COCO RLE per object: its ``M x M`` probabilities padded by a pixel, resized to its
    (padded, whole-pixel) box, pasted into an image of ``size`` and thresholded at 0.5."""
    height, width = size
    count = len(probabilities)
    if count == 0:
        return ()
    side = probabilities.shape[-1]
    padded = np.pad(probabilities.reshape(count, side, side).astype(np.float32), ((0, 0), (1, 1), (1, 1)))
    scale = np.float32((side + 2 * _MASK_PADDING) / side)
    boxes = boxes.astype(np.float32)
    half_w = (boxes[:, 2] - boxes[:, 0]) * np.float32(0.5) * scale
    half_h = (boxes[:, 3] - boxes[:, 1]) * np.float32(0.5) * scale
    center_x = (boxes[:, 2] + boxes[:, 0]) * np.float32(0.5)
    center_y = (boxes[:, 3] + boxes[:, 1]) * np.float32(0.5)
    expanded = np.stack(
        [center_x - half_w, center_y - half_h, center_x + half_w, center_y + half_h], axis=1
    ).astype(np.int64)  # truncation toward zero, as torch's cast
    masks = []
    for mask, (x0, y0, x1, y1) in zip(padded, expanded.tolist(), strict=True):
        box_w, box_h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
        left, right = max(x0, 0), min(x1 + 1, width)
        top, bottom = max(y0, 0), min(y1 + 1, height)
        if right <= left or bottom <= top:
            masks.append({"size": [height, width], "counts": [height * width]})
            continue
        resized = resize_bilinear(mask, (box_h, box_w))
        strip = np.zeros((height, right - left), dtype=bool)  # the box's columns, full height
        strip[top:bottom] = resized[top - y0 : bottom - y0, left - x0 : right - x0] >= MASK_THRESHOLD
        masks.append(_strip_rle(strip, left, width))
    return tuple(masks)


def _strip_rle(strip: npt.NDArray[np.bool_], left: int, width: int) -> dict[str, Any]:
    """The COCO RLE of a ``width``-wide image that is zero outside ``strip``, the full-height
    columns from ``left``: the strip's runs, with the columns before and after it added to the
    first and last run of zeros (encoding the whole image would cost its every pixel)."""
    height = strip.shape[0]
    counts: list[int] = list(rle_encode(strip)["counts"])
    counts[0] += left * height  # runs alternate zeros, ones, ... starting with zeros
    after = (width - left - strip.shape[1]) * height
    if after and len(counts) % 2 == 1:
        counts[-1] += after
    elif after:
        counts.append(after)
    return {"size": [height, width], "counts": counts}


def cubic_taps(source: int, target: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """``(target, 4)`` source indices and weights of PyTorch's bicubic interpolation along one
    axis (``align_corners=False``, a = -0.75, edges repeated)."""
    scale = np.float32(source) / np.float32(target)
    position = scale * (np.arange(target, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    base = np.minimum(np.floor(position).astype(np.intp), source - 1)
    t = np.clip(position - base.astype(np.float32), 0.0, 1.0).astype(np.float32)
    a = _CUBIC_A

    def near(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1).astype(np.float32)
    indices = np.clip(base[:, None] + np.arange(-1, 3)[None, :], 0, source - 1)
    return indices, weights


def heatmap_keypoints(
    heatmaps: npt.NDArray[np.float32], boxes: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Keypoints ``(N, K, 2)`` and their logits ``(N, K)`` from ``(N, K, S, S)`` heat maps over
    ``boxes`` (network pixels): each map resized bicubically to its box's whole-pixel size, its
    first maximum taken at the centre of its pixel (torchvision's ``heatmaps_to_keypoints``)."""
    count, parts = heatmaps.shape[:2]
    points = np.zeros((count, parts, 2), np.float32)
    logits = np.zeros((count, parts), np.float32)
    boxes = boxes.astype(np.float32)
    widths = np.maximum(boxes[:, 2] - boxes[:, 0], np.float32(1.0))
    heights = np.maximum(boxes[:, 3] - boxes[:, 1], np.float32(1.0))
    for index in range(count):
        out_w, out_h = int(np.ceil(widths[index])), int(np.ceil(heights[index]))
        maps = heatmaps[index].astype(np.float32)
        columns, column_weights = cubic_taps(maps.shape[2], out_w)
        rows, row_weights = cubic_taps(maps.shape[1], out_h)
        across = np.einsum("kyxj,xj->kyx", maps[:, :, columns], column_weights)  # (K, S, out_w)
        resized = np.einsum("kyjx,yj->kyx", across[:, rows], row_weights)  # (K, out_h, out_w)
        flat = resized.reshape(parts, -1)
        peak = flat.argmax(axis=1)
        y, x = np.divmod(peak, out_w)
        points[index, :, 0] = (x.astype(np.float32) + np.float32(0.5)) * (widths[index] / np.float32(out_w))
        points[index, :, 1] = (y.astype(np.float32) + np.float32(0.5)) * (heights[index] / np.float32(out_h))
        points[index, :, 0] += boxes[index, 0]
        points[index, :, 1] += boxes[index, 1]
        logits[index] = flat[np.arange(parts), peak]
    return points, logits


def _sigmoid(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = 0.5 * (1.0 + np.tanh(0.5 * values))  # no overflow for large logits
    return out


def object_labels(
    boxes: npt.NDArray[np.floating[Any]],
    labels: npt.NDArray[np.generic],
    scores: npt.NDArray[np.floating[Any]],
    classes: Sequence[str],
    masks: tuple[dict[str, Any], ...] | None = None,
    keypoints: npt.NDArray[np.floating[Any]] | None = None,
    keypoint_logits: npt.NDArray[np.floating[Any]] | None = None,
) -> ObjectLabels:
    """The core label for one image's detections in its pixels: ``labels`` are 1-based (0 is
    torchvision's background), keypoints ``(N, K, 2+)`` all visible with their sigmoid as the
    score. PyTorch's prediction path ends here too, so both runtimes give labels of one form."""
    names = tuple(classes[int(index) - 1] for index in np.asarray(labels).reshape(-1).tolist())
    points = scores_of_points = None
    if keypoints is not None:
        found = np.asarray(keypoints, np.float64)
        points = np.zeros((found.shape[0], found.shape[1], 3))
        points[:, :, :2] = found[:, :, :2]
        points[:, :, 2] = 2.0  # every keypoint gets a position; its score says how sure
        if keypoint_logits is not None:
            scores_of_points = _sigmoid(np.asarray(keypoint_logits, np.float64))
    return ObjectLabels(
        boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
        class_names=names,
        scores=np.clip(np.asarray(scores, np.float64).reshape(-1), 0.0, 1.0),
        masks=masks,
        keypoints=points,
        keypoint_scores=scores_of_points,
    )


def detection_labels(
    outputs: Mapping[str, npt.NDArray[Any]], size: tuple[int, int], side: int, classes: Sequence[str]
) -> ObjectLabels:
    """One image's label from the graph's outputs by name (``boxes``, ``labels``, ``scores``,
    optionally ``masks`` and ``keypoint_heatmaps``) for an image of ``size`` ``(height, width)``
    run at input side ``side``."""
    network = network_size(size[0], size[1], side)
    boxes = np.asarray(outputs["boxes"], np.float32).reshape(-1, 4)
    image_boxes = rescale_points(boxes, network, size)
    masks = keypoints = logits = None
    if "masks" in outputs:
        masks = paste_masks(np.asarray(outputs["masks"], np.float32), image_boxes, size)
    if "keypoint_heatmaps" in outputs:
        found, logits = heatmap_keypoints(np.asarray(outputs["keypoint_heatmaps"], np.float32), boxes)
        keypoints = rescale_points(found, network, size)
    return object_labels(
        image_boxes,
        np.asarray(outputs["labels"]),
        np.asarray(outputs["scores"]),
        classes,
        masks=masks,
        keypoints=keypoints,
        keypoint_logits=logits,
    )
