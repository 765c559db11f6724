"""Does a predicted set of objects agree with the human one? Per-image, for auto-labeling.

COCO mAP scores a model over a dataset; auto-labeling needs a yes/no per image: would a human
accept this prediction as the image's label? Here it is yes when every human object is matched
one-to-one by a predicted object of the same class whose similarity (box IoU, mask IoU or
keypoint OKS) reaches the threshold, and no predicted object is left over. Matching is greedy by
predicted score, as COCO's evaluation does.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from pycocotools import mask as coco_mask

from visionloop.core.labels import ObjectLabels
from visionloop.metrics.coco import DEFAULT_OKS_SIGMA

__all__ = ["MatchKind", "box_iou", "keypoint_oks", "mask_iou", "objects_agree"]

MatchKind = Literal["box", "mask", "keypoints"]
FloatArray = npt.NDArray[np.float64]


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """``(N, M)`` IoU of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    width = np.clip(
        np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    height = np.clip(
        np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None
    )
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    result: FloatArray = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return result


def mask_iou(truth: ObjectLabels, predicted: ObjectLabels) -> FloatArray:
    """``(N, M)`` mask IoU; an object without a mask counts as its box."""
    size = _mask_size(truth) or _mask_size(predicted)
    if size is None:
        return box_iou(truth.boxes, predicted.boxes)
    height, width = size
    ious = coco_mask.iou(_encoded(predicted, height, width), _encoded(truth, height, width), [0] * len(truth))
    return np.asarray(ious, dtype=np.float64).reshape(len(predicted), len(truth)).T


def _encoded(label: ObjectLabels, height: int, width: int) -> list[dict[str, object]]:
    encoded = []
    for index in range(len(label)):
        rle = label.masks[index] if label.masks is not None else None
        if rle is None:
            x0, y0, x1, y1 = label.boxes[index]
            encoded.append(coco_mask.frPyObjects([[x0, y0, x1, y0, x1, y1, x0, y1]], height, width)[0])
        elif isinstance(rle.get("counts"), list):
            encoded.append(coco_mask.frPyObjects(rle, height, width))
        else:
            encoded.append(rle)
    return encoded


def _mask_size(label: ObjectLabels) -> tuple[int, int] | None:
    for rle in label.masks or ():
        if rle is not None:
            height, width = rle["size"]
            return int(height), int(width)
    return None


def keypoint_oks(
    truth: ObjectLabels, predicted: ObjectLabels, sigma: float = DEFAULT_OKS_SIGMA
) -> FloatArray:
    """``(N, M)`` object keypoint similarity (COCO's formula, one sigma for every keypoint; the
    object's scale is its box area). A human object without labelled keypoints scores 0."""
    if truth.keypoints is None or predicted.keypoints is None:
        return np.zeros((len(truth), len(predicted)))
    gt, dt = truth.keypoints, predicted.keypoints
    boxes = truth.boxes
    areas = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1.0)
    variance = (2 * sigma) ** 2
    squared = ((gt[:, None, :, :2] - dt[None, :, :, :2]) ** 2).sum(axis=3)  # (N, M, K)
    error = squared / variance / areas[:, None, None] / 2
    visible = gt[:, :, 2] > 0  # (N, K)
    counts = visible.sum(axis=1)
    similarity = (np.exp(-error) * visible[:, None, :]).sum(axis=2)
    result: FloatArray = np.where(counts[:, None] > 0, similarity / np.maximum(counts, 1)[:, None], 0.0)
    return result


def objects_agree(truth: ObjectLabels, predicted: ObjectLabels, kind: MatchKind, threshold: float) -> bool:
    """Whether ``predicted`` matches ``truth`` object for object at ``threshold``."""
    if len(truth) != len(predicted):
        return False
    if len(truth) == 0:
        return True
    if kind == "box":
        similarity = box_iou(truth.boxes, predicted.boxes)
    elif kind == "mask":
        similarity = mask_iou(truth, predicted)
    else:
        similarity = keypoint_oks(truth, predicted)
    same_class = np.array(truth.class_names)[:, None] == np.array(predicted.class_names)[None, :]
    similarity = np.where(same_class, similarity, -1.0)
    order = np.argsort(-predicted.scores) if predicted.scores is not None else np.arange(len(predicted))
    unmatched = np.ones(len(truth), bool)
    for column in order.tolist():
        candidates = np.where(unmatched, similarity[:, column], -1.0)
        best = int(np.argmax(candidates))
        if candidates[best] < threshold:
            return False
        unmatched[best] = False
    return True
