"""Label types, one small validated data class per kind of annotation.

Coordinates are absolute pixel floats in the image orientation *after* EXIF transpose:
boxes are ``xyxy`` (x0, y0, x1, y1), keypoints are ``(N, K, 3)`` arrays of ``x, y, visibility``
with COCO semantics (0 unlabeled, 1 labeled but hidden, 2 visible), masks are COCO RLE dicts
``{"size": [h, w], "counts": [...]}`` with uncompressed (list) counts. Every format converts at
its own boundary into these.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ClassLabel:
    """One image-level class (classification).

    A model's prediction may carry ``probabilities``: the whole distribution, one entry per class
    of the label schema it was made with, in schema order (uncertainty sampling and calibration
    need more than the top score).
    """

    class_name: str
    score: float | None = None
    probabilities: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.class_name:
            raise ValidationError("a class label needs a class name")
        if self.score is not None and not 0.0 <= self.score <= 1.0:
            raise ValidationError(f"class score must be within [0, 1], got {self.score}")
        if self.probabilities is not None:
            values = tuple(float(p) for p in self.probabilities)
            if not values or not all(0.0 <= p <= 1.0 for p in values) or abs(sum(values) - 1.0) > 1e-3:
                raise ValidationError("class probabilities must lie within [0, 1] and sum to 1")
            object.__setattr__(self, "probabilities", values)

    def class_counts(self) -> Counter[str]:
        return Counter([self.class_name])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "class", "class_name": self.class_name}
        if self.score is not None:
            out["score"] = self.score
        if self.probabilities is not None:
            out["probabilities"] = list(self.probabilities)
        return out


@dataclass(frozen=True, slots=True)
class ObjectLabels:
    """The objects in one image: boxes, optionally with shapes, keypoints and attributes.

    Column-oriented: entry ``i`` of every field describes object ``i``. Detection uses boxes;
    instance segmentation adds ``polygons`` (vector outlines, kept as drawn so formats that
    speak polygons round-trip losslessly) and/or ``masks`` (COCO RLE, for raster shapes; ``None``
    where an object has only a polygon); pose adds ``keypoints``. ``attributes`` carries
    per-object extras a labeling tool recorded (occluded, iscrowd, free attributes).
    ``keypoint_scores`` ``(N, K)`` holds a model's per-keypoint confidence in ``[0, 1]`` (the
    DeepLabCut "likelihood"); human labels leave it ``None``.
    """

    boxes: FloatArray
    class_names: tuple[str, ...]
    scores: FloatArray | None = None
    masks: tuple[dict[str, Any] | None, ...] | None = None
    keypoints: FloatArray | None = None
    polygons: tuple[tuple[FloatArray, ...], ...] | None = None
    attributes: tuple[dict[str, Any], ...] | None = None
    keypoint_scores: FloatArray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        boxes = (
            np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
            if np.size(self.boxes)
            else np.zeros((0, 4))
        )
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "class_names", tuple(self.class_names))
        n = len(boxes)
        if len(self.class_names) != n:
            raise ValidationError(f"expected {n} class names (one per box), got {len(self.class_names)}")
        if not np.all(np.isfinite(boxes)):
            raise ValidationError("boxes must be finite numbers")
        if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
            raise ValidationError("boxes must be xyxy with x1 >= x0 and y1 >= y0")
        if self.scores is not None:
            scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
            if scores.shape != (n,):
                raise ValidationError(f"expected {n} scores, got shape {scores.shape}")
            if np.any((scores < 0) | (scores > 1)):
                raise ValidationError("scores must lie within [0, 1]")
            object.__setattr__(self, "scores", scores)
        if self.masks is not None:
            masks = tuple(self.masks)
            if len(masks) != n:
                raise ValidationError(f"expected {n} masks, got {len(masks)}")
            for mask in masks:
                if mask is not None and set(mask) != {"size", "counts"}:
                    raise ValidationError("a mask must be a COCO RLE dict with 'size' and 'counts'")
            object.__setattr__(self, "masks", masks)
        if self.polygons is not None:
            object.__setattr__(self, "polygons", _checked_polygons(self.polygons, n))
        if self.attributes is not None:
            attributes = tuple(dict(a) for a in self.attributes)
            if len(attributes) != n:
                raise ValidationError(f"expected {n} attribute dicts, got {len(attributes)}")
            object.__setattr__(self, "attributes", attributes)
        if self.keypoints is not None:
            kps = np.asarray(self.keypoints, dtype=np.float64)
            if kps.ndim != 3 or kps.shape[0] != n or kps.shape[2] != 3:
                raise ValidationError(f"expected keypoints of shape ({n}, K, 3), got {kps.shape}")
            if np.any(~np.isin(kps[:, :, 2], (0, 1, 2))):
                raise ValidationError("keypoint visibility must be 0, 1 or 2")
            object.__setattr__(self, "keypoints", kps)
        if self.keypoint_scores is not None:
            if self.keypoints is None:
                raise ValidationError("keypoint scores need keypoints")
            kp_scores = np.asarray(self.keypoint_scores, dtype=np.float64)
            if kp_scores.shape != self.keypoints.shape[:2]:
                raise ValidationError(
                    f"expected keypoint scores of shape {self.keypoints.shape[:2]}, got {kp_scores.shape}"
                )
            if np.any(~((kp_scores >= 0) & (kp_scores <= 1))):
                raise ValidationError("keypoint scores must lie within [0, 1]")
            object.__setattr__(self, "keypoint_scores", kp_scores)

    def __len__(self) -> int:
        return len(self.boxes)

    def subset(self, keep: npt.ArrayLike) -> ObjectLabels:
        """The objects at the ``keep`` indices (or where a boolean mask is true), every field
        cut alike."""
        index = np.arange(len(self))[np.asarray(keep)] if len(self) else np.zeros(0, np.int64)
        picked = index.tolist()

        def rows(values: Any) -> Any:
            return None if values is None else values[index]

        def items(values: Any) -> Any:
            return None if values is None else tuple(values[i] for i in picked)

        return ObjectLabels(
            boxes=self.boxes[index],
            class_names=tuple(self.class_names[i] for i in picked),
            scores=rows(self.scores),
            masks=items(self.masks),
            keypoints=rows(self.keypoints),
            polygons=items(self.polygons),
            attributes=items(self.attributes),
            keypoint_scores=rows(self.keypoint_scores),
            extra=dict(self.extra),
        )

    def class_counts(self) -> Counter[str]:
        return Counter(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "objects",
            "boxes": self.boxes.tolist(),
            "class_names": list(self.class_names),
        }
        if self.scores is not None:
            out["scores"] = self.scores.tolist()
        if self.masks is not None:
            out["masks"] = list(self.masks)
        if self.keypoints is not None:
            out["keypoints"] = self.keypoints.tolist()
        if self.polygons is not None:
            out["polygons"] = [[ring.tolist() for ring in rings] for rings in self.polygons]
        if self.attributes is not None:
            out["attributes"] = list(self.attributes)
        if self.keypoint_scores is not None:
            out["keypoint_scores"] = self.keypoint_scores.tolist()
        if self.extra:
            out["extra"] = self.extra
        return out


def _checked_polygons(polygons: Any, n: int) -> tuple[tuple[FloatArray, ...], ...]:
    """Per object, a tuple of rings, each an ``(N, 2)`` array of at least 3 finite points."""
    out = []
    for rings in polygons:
        checked = []
        for ring in rings:
            points = ring
            if not (
                isinstance(ring, np.ndarray)
                and ring.dtype == np.float64
                and ring.ndim == 2
                and ring.shape[1] == 2
            ):
                points = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
            if len(points) < 3:
                raise ValidationError(f"a polygon needs at least 3 points, got {len(points)}")
            checked.append(points)
        out.append(tuple(checked))
    if len(out) != n:
        raise ValidationError(f"expected {n} polygon lists (one per object), got {len(out)}")
    every = [ring for rings in out for ring in rings]
    if every and not np.isfinite(np.concatenate(every)).all():  # one check for all rings
        raise ValidationError("polygon points must be finite numbers")
    return tuple(out)


Label = ClassLabel | ObjectLabels


def label_from_dict(data: dict[str, Any]) -> Label:
    """Inverse of ``to_dict``; raises :class:`ValidationError` on malformed payloads."""
    kind = data.get("type")
    try:
        if kind == "class":
            probabilities = data.get("probabilities")
            return ClassLabel(
                class_name=str(data["class_name"]),
                score=data.get("score"),
                probabilities=None if probabilities is None else tuple(probabilities),
            )
        if kind == "objects":
            scores = data.get("scores")
            keypoints = data.get("keypoints")
            masks = data.get("masks")
            polygons = data.get("polygons")
            attributes = data.get("attributes")
            kp_scores = data.get("keypoint_scores")
            return ObjectLabels(
                boxes=np.asarray(data["boxes"], dtype=np.float64),
                class_names=tuple(data["class_names"]),
                scores=None if scores is None else np.asarray(scores, dtype=np.float64),
                masks=None if masks is None else tuple(masks),
                keypoints=None if keypoints is None else np.asarray(keypoints, dtype=np.float64),
                polygons=None if polygons is None else tuple(tuple(rings) for rings in polygons),
                attributes=None if attributes is None else tuple(attributes),
                keypoint_scores=None if kp_scores is None else np.asarray(kp_scores, dtype=np.float64),
                extra=dict(data.get("extra", {})),
            )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:  # OverflowError: an int past float
        raise ValidationError(f"malformed {kind} label: {exc}") from exc
    raise ValidationError(f"unknown label type {kind!r}; expected 'class' or 'objects'")
