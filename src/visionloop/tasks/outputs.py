"""Network outputs to core labels in numpy alone, for every runtime.

PyTorch, ONNX Runtime and the edge runtime (which has no PyTorch) turn the same output arrays
into the same labels through these functions: the families' ``labels_from_outputs`` call them,
and so does :mod:`visionloop.edge`. Coordinates come back in the pixels of the image sizes given
(absolute ``xyxy`` and ``(N, K, 3)`` keypoints, as the core defines them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from visionloop.core.labels import ClassLabel, ObjectLabels

__all__ = ["HEATMAP_STRIDE", "class_labels", "heatmap_peaks", "pose_labels", "softmax"]

HEATMAP_STRIDE = 4  # the heatmap network's score maps are a quarter of its input side
_VISIBLE = 0.05  # parts below this likelihood do not shape the instance's box
_MIN_PEAK = 0.05  # peaks below this likelihood count as missing (likelihood 0)


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Row-wise softmax in float64 (so the probabilities sum to 1 within rounding)."""
    shifted: npt.NDArray[np.float64] = logits.astype(np.float64)
    shifted -= shifted.max(axis=1, keepdims=True)
    exponentials: npt.NDArray[np.float64] = np.exp(shifted)
    exponentials /= exponentials.sum(axis=1, keepdims=True)
    return exponentials


def class_labels(logits: npt.NDArray[np.float32], classes: Sequence[str]) -> list[ClassLabel]:
    """One :class:`ClassLabel` per ``(N, C)`` logits row: the top class, its softmax probability
    as the score and the whole distribution."""
    probabilities = softmax(logits)
    indices = probabilities.argmax(axis=1)
    return [
        ClassLabel(
            class_name=classes[int(index)],
            score=min(1.0, float(row[index])),
            probabilities=tuple(row.tolist()),
        )
        for index, row in zip(indices.tolist(), probabilities, strict=True)
    ]


def _sigmoid(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = np.empty_like(values, dtype=np.float32)
    np.negative(values, out=out, dtype=np.float32)
    np.exp(out, out=out)
    out += np.float32(1.0)
    np.reciprocal(out, out=out)
    return out


def _max_pool3(maps: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """3x3 max pooling with stride 1 over the last two axes, borders padded with -inf."""
    height, width = maps.shape[-2:]
    padding = [(0, 0)] * (maps.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(maps, padding, constant_values=np.float32(-np.inf))  # keeps float32
    pooled = padded[..., 0:height, 0:width].copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(pooled, padded[..., dy : dy + height, dx : dx + width], out=pooled)
    return pooled


def heatmap_peaks(
    logits: npt.NDArray[np.float32],
    offsets: npt.NDArray[np.float32],
    stride: int = HEATMAP_STRIDE,
    max_instances: int = 1,
    min_score: float = _MIN_PEAK,
) -> npt.NDArray[np.float64]:
    """Peaks per part from ``(B, P, H, W)`` score logits and ``(B, 2P, H, W)`` x/y offsets:
    ``(B, max_instances, P, 3)`` of x, y (input pixels) and likelihood, strongest peak first.
    A peak is a local 3x3 maximum of the sigmoid; missing peaks have likelihood 0."""
    probabilities = _sigmoid(np.ascontiguousarray(logits, dtype=np.float32))
    batch, parts, height, width = probabilities.shape
    peaks = np.where(_max_pool3(probabilities) == probabilities, probabilities, np.float32(0.0))
    flat = peaks.reshape(batch, parts, height * width)
    if max_instances == 1:
        top_index = flat.argmax(axis=2)[..., None]
    else:
        top_index = np.argsort(-flat, axis=2, kind="stable")[..., :max_instances]
    top_scores = np.take_along_axis(flat, top_index, axis=2)  # (B, P, I)
    ys, xs = np.divmod(top_index, width)
    moved = np.asarray(offsets, dtype=np.float32).reshape(batch, parts, 2, height * width)
    dx = np.take_along_axis(moved[:, :, 0], top_index, axis=2)
    dy = np.take_along_axis(moved[:, :, 1], top_index, axis=2)
    x = (xs.astype(np.float32) + np.float32(0.5) + dx) * np.float32(stride)
    y = (ys.astype(np.float32) + np.float32(0.5) + dy) * np.float32(stride)
    likelihood = np.where(top_scores >= min_score, top_scores, np.float32(0.0))
    stacked = np.stack([x, y, likelihood], axis=-1)  # (B, P, I, 3)
    instances: npt.NDArray[np.float64] = stacked.transpose(0, 2, 1, 3).astype(np.float64)
    return instances


def pose_labels(
    logits: npt.NDArray[np.float32],
    offsets: npt.NDArray[np.float32],
    sizes: Sequence[tuple[int, int]],
    class_name: str,
    side: int,
) -> list[ObjectLabels]:
    """One animal per image from a heatmap network's outputs at a ``side x side`` input: each
    part at its strongest peak, moved to the image's ``(height, width)``; its likelihood is the
    keypoint score, their mean the instance score."""
    labels: list[ObjectLabels] = []
    for (height, width), found in zip(sizes, heatmap_peaks(logits, offsets), strict=True):
        instance = found[0]  # (P, 3): x, y, likelihood at the model input scale
        likelihood = np.clip(instance[:, 2], 0.0, 1.0)
        points = np.zeros((1, len(instance), 3))
        points[0, :, 0] = np.clip(instance[:, 0] * width / side, 0, width)
        points[0, :, 1] = np.clip(instance[:, 1] * height / side, 0, height)
        points[0, :, 2] = 2.0  # every part gets a position; its likelihood says how sure
        seen = points[0, likelihood >= _VISIBLE, :2]
        if len(seen) == 0:
            seen = points[0, :, :2]
        box = np.concatenate([seen.min(axis=0), seen.max(axis=0)])[None, :]
        labels.append(
            ObjectLabels(
                boxes=box,
                class_names=(class_name,),
                scores=np.array([float(likelihood.mean())]),
                keypoints=points,
                keypoint_scores=likelihood[None, :],
            )
        )
    return labels
