"""Core labels -> Label Studio regions: the one implementation behind the file saver
(:mod:`visionloop.formats.labelstudio`) and the ML backend (``visionloop serve``).

Core coordinates are absolute pixels (boxes ``xyxy``, keypoints ``x, y, v``); regions hold
percent (0-100) of ``original_width``/``original_height``, which every geometric region carries,
and a rectangle's ``x, y`` is its top-left corner. Which control tag receives each kind of
region, and under which label, is a :class:`RegionTargets`: the saver uses the tag names of the
config :func:`~visionloop.formats.labelstudio.labeling_config` writes, the ML backend those of
the project's own config (:mod:`visionloop.formats.ls_config`).

An object becomes, in this order of preference: its polygons (PolygonLabels), its mask as a brush
(BrushLabels), its mask traced to a polygon, its polygons painted as a brush, its box as a
rectangle, as a polygon or as a brush; the first the targets can hold. An object with keypoints
becomes its rectangle plus one KeyPointLabels region per labeled point, tied to the rectangle by
``parentID``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError
from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.formats import ls_brush
from visionloop.formats.masks import mask_to_polygon, polygons_to_mask, rle_decode

__all__ = [
    "BRUSH",
    "CHOICE",
    "IMAGE",
    "KEYPOINT",
    "KEYPOINT_WIDTH_PCT",
    "LABEL",
    "POLYGON",
    "RegionTargets",
    "RegionWriter",
]

#: Control tag names of the generated config; regions use them as ``from_name``.
IMAGE, CHOICE, LABEL, POLYGON, BRUSH, KEYPOINT = "image", "choice", "label", "polygon", "brush", "kp"
#: Keypoint marker size, in percent of the image width.
KEYPOINT_WIDTH_PCT = 0.5


@dataclass(frozen=True)
class RegionTargets:
    """Where regions go. Each control field is the ``from_name`` of the tag that takes that
    region type, ``None`` where the config has none; ``to_name`` is the image tag.

    ``labels`` maps model class names to the config's label values; ``None`` keeps names as
    they are, and with a map, objects (or a class) whose name it lacks are left out.
    ``keypoint_labels`` gives, per model keypoint index, the config's keypoint label (``None``:
    not in the config, the point is left out), so it must list the model schema's keypoints.
    """

    to_name: str = IMAGE
    choices: str | None = CHOICE
    rectangle: str | None = LABEL
    polygon: str | None = POLYGON
    brush: str | None = BRUSH
    keypoint: str | None = KEYPOINT
    labels: Mapping[str, str] | None = None
    keypoint_labels: tuple[str | None, ...] = ()

    def label_for(self, class_name: str) -> str | None:
        return class_name if self.labels is None else self.labels.get(class_name)


class RegionWriter:
    """Builds result lists; region ids are unique across the writer's life (``vl1``, ``vl2``...)."""

    def __init__(self, targets: RegionTargets | None = None) -> None:
        self.targets = targets or RegionTargets()
        self._ids: Iterator[str] = (f"vl{n}" for n in itertools.count(1))

    def regions(
        self, label: Label, width: int | None, height: int | None, scores: bool
    ) -> list[dict[str, Any]]:
        """The regions of one label on an image of ``width`` x ``height`` pixels; ``scores``
        adds each object's (or the class's) score. Raises ``ValidationError`` when a geometric
        label comes without the image size."""
        if isinstance(label, ClassLabel):
            return self._choice(label, width, height, scores)
        if not isinstance(label, ObjectLabels):
            raise ValidationError(f"cannot write a {type(label).__name__} as Label Studio regions")
        if len(label) and (width is None or height is None):
            raise ValidationError("cannot write Label Studio regions without the image's width/height")
        out: list[dict[str, Any]] = []
        for i in range(len(label)):
            name = self.targets.label_for(label.class_names[i])
            if name is None:
                continue
            assert width is not None and height is not None  # noqa: S101 - checked above
            regions = self._object(label, i, name, width, height)
            if scores and label.scores is not None:
                for region in regions:
                    region["score"] = float(label.scores[i])
            out.extend(regions)
        return out

    # -- one region ----------------------------------------------------------------------------
    def _region(
        self, kind: str, from_name: str, value: dict[str, Any], width: int | None, height: int | None
    ) -> dict[str, Any]:
        region: dict[str, Any] = {
            "id": next(self._ids),
            "type": kind,
            "from_name": from_name,
            "to_name": self.targets.to_name,
        }
        if width is not None and height is not None:
            region["original_width"], region["original_height"] = width, height
            region["image_rotation"] = 0
        region["value"] = value
        return region

    def _choice(
        self, label: ClassLabel, width: int | None, height: int | None, scores: bool
    ) -> list[dict[str, Any]]:
        name = self.targets.label_for(label.class_name)
        if name is None or self.targets.choices is None:
            return []
        region = self._region("choices", self.targets.choices, {"choices": [name]}, width, height)
        if scores and label.score is not None:
            region["score"] = label.score
        return [region]

    # -- objects -------------------------------------------------------------------------------
    def _object(
        self, label: ObjectLabels, i: int, name: str, width: int, height: int
    ) -> list[dict[str, Any]]:
        if label.keypoints is not None:
            return self._pose(label, i, name, width, height)
        rings = label.polygons[i] if label.polygons is not None else ()
        rle = label.masks[i] if label.masks is not None else None
        mask = None if rle is None else _fitted(rle_decode(rle), width, height)
        if mask is not None and not mask.any():
            mask = None  # an empty mask says nothing a box does not
        t = self.targets
        if rings and t.polygon:
            return [self._polygon(ring, name, width, height) for ring in rings]
        if mask is not None and t.brush:
            return [self._brush(mask, name, width, height)]
        if mask is not None and t.polygon:
            ring = mask_to_polygon(mask)
            return [] if ring is None else [self._polygon(ring, name, width, height)]
        if rings and t.brush:
            return [self._brush(polygons_to_mask(list(rings), height, width), name, width, height)]
        box = [float(v) for v in label.boxes[i]]
        if t.rectangle:
            return [self._rectangle(box, name, width, height)]
        x0, y0, x1, y1 = box
        if t.polygon:
            corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            return [self._polygon(corners, name, width, height)]
        if t.brush:
            painted = np.zeros((height, width), dtype=bool)
            painted[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))] = True
            return [self._brush(painted, name, width, height)]
        return []

    def _rectangle(self, box: list[float], name: str, width: int, height: int) -> dict[str, Any]:
        assert self.targets.rectangle is not None  # noqa: S101 - callers check
        x0, y0, x1, y1 = box
        value = {
            "x": x0 / width * 100,
            "y": y0 / height * 100,
            "width": (x1 - x0) / width * 100,
            "height": (y1 - y0) / height * 100,
            "rotation": 0,
            "rectanglelabels": [name],
        }
        return self._region("rectanglelabels", self.targets.rectangle, value, width, height)

    def _polygon(self, ring: npt.NDArray[np.float64], name: str, width: int, height: int) -> dict[str, Any]:
        assert self.targets.polygon is not None  # noqa: S101 - callers check
        points = (np.asarray(ring, dtype=np.float64) / [width, height] * 100).tolist()
        value = {"points": points, "polygonlabels": [name], "closed": True}
        return self._region("polygonlabels", self.targets.polygon, value, width, height)

    def _brush(self, mask: npt.NDArray[np.bool_], name: str, width: int, height: int) -> dict[str, Any]:
        assert self.targets.brush is not None  # noqa: S101 - callers check
        value = {"format": "rle", "rle": ls_brush.encode(mask), "brushlabels": [name]}
        return self._region("brushlabels", self.targets.brush, value, width, height)

    def _pose(self, label: ObjectLabels, i: int, name: str, width: int, height: int) -> list[dict[str, Any]]:
        """The object's rectangle (when the targets have one) and its labeled points."""
        assert label.keypoints is not None  # noqa: S101 - callers check
        regions = []
        parent = None
        if self.targets.rectangle:
            parent = self._rectangle([float(v) for v in label.boxes[i]], name, width, height)
            regions.append(parent)
        if self.targets.keypoint is None:
            return regions
        names = self.targets.keypoint_labels
        for k, (x, y, visibility) in enumerate(label.keypoints[i]):
            point_name = names[k] if k < len(names) else None
            if visibility <= 0 or point_name is None:
                continue
            value = {
                "x": float(x) / width * 100,
                "y": float(y) / height * 100,
                "width": KEYPOINT_WIDTH_PCT,
                "keypointlabels": [point_name],
            }
            point = self._region("keypointlabels", self.targets.keypoint, value, width, height)
            if parent is not None:
                point["parentID"] = parent["id"]
            regions.append(point)
        return regions


def _fitted(mask: npt.NDArray[np.bool_], width: int, height: int) -> npt.NDArray[np.bool_]:
    if mask.shape != (height, width):
        raise ValidationError(
            f"cannot write a Label Studio region: mask of shape {mask.shape} does not fit an image of "
            f"{width}x{height}"
        )
    return mask
