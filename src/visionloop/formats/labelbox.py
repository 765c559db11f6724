"""Labelbox NDJSON, the shape of a model-assisted-labeling (MAL) or label import.

One JSON object per line, one annotation per object: ``uuid`` (unique in the file),
``dataRow`` (``{"globalKey": name}`` or ``{"id": ...}``; the key becomes the image name),
``name`` (the ontology feature) and one geometry: ``bbox {top, left, height, width}`` in
absolute pixels, ``polygon [{x, y}, ...]``, ``point {x, y}``, ``mask {"png": base64}`` (a
single-channel PNG of 0/1), or a classification ``answer`` (radio ``{"name"}``, checklist
``[{"name"}]`` with exactly one answer). An optional ``confidence`` (top level or inside the
answer) marks a model prediction; everything else is a human label.

Conventions and losses, all because NDJSON cannot say more:

* Images carry no size, so only size-free checks apply and loaded images have no width/height.
* Labelbox has no instance grouping for points: in a keypoints project every point of a data row
  (per human/model side) forms **one** instance. It attaches to the row's bounding box when the
  row has exactly one; otherwise it becomes its own object whose box is the points' extent, of
  the schema's first class. Points have no visibility flag: saved hidden points load as visible.
* A polygon object's box is the polygon's extent; a mask object's box is the mask's extent.
  Multi-ring polygons are written one line per ring (they load as separate objects).
* Masks given as ``instanceURI`` are rejected: mask URLs are never fetched.
* ``records`` counts non-blank lines; the locator of a rejection is ``line N`` (1-based).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.errors import UnsafePathError
from visionloop.core.labels import ClassLabel, FloatArray, ObjectLabels
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.common import (
    ObjectRow,
    human_provenance,
    labels_to_save,
    model_provenance,
    objects_label,
)
from visionloop.formats.masks import rle_decode, rle_encode
from visionloop.formats.model import Annotation, ImportResult, LabeledImage, LabelSet, Rejection
from visionloop.formats.registry import LoadOptions, SaveOptions
from visionloop.formats.safeio import FormatFileError, json_object_line, read_text
from visionloop.formats.validate import (
    box_problem,
    class_problem,
    finite_numbers,
    name_problem,
    polygon_problem,
)
from visionloop.storage import atomic_write_local, safe_relative_path

#: Model version of imported predictions unless ``--as model:VERSION`` says otherwise.
MODEL_VERSION = "labelbox-import"
#: Largest mask PNG decoded (pixels); bigger ones are rejected before their pixels are read.
MAX_MASK_PIXELS = 100_000_000
#: Question name written for classifications (Labelbox radio questions need one).
CLASS_QUESTION = "class"
_UUID_NAMESPACE = uuid.UUID("6f1c5d0e-4b8a-5c1e-9d2f-0a6b3c7e8f91")
_GEOMETRIES = ("bbox", "polygon", "point", "mask", "answer")


class _Reject(Exception):
    """Internal: a line is invalid for the reason given."""


@dataclass
class _Item:
    """One parsed line before the schema decides whether it fits."""

    line: int
    image: str
    kind: str  # one of _GEOMETRIES
    name: str  # class (objects), answer (classifications) or keypoint name (points)
    score: float | None
    box: list[float] | None = None
    ring: FloatArray | None = None
    mask: dict[str, Any] | None = None
    point: tuple[float, float] | None = None


@dataclass
class _Side:
    """What one image collects for one provenance side (human or model)."""

    rows: list[ObjectRow] = field(default_factory=list)
    classes: list[ClassLabel] = field(default_factory=list)
    points: dict[int, tuple[float, float]] = field(default_factory=dict)
    point_scores: list[float] = field(default_factory=list)


def load(path: Path, options: LoadOptions) -> ImportResult:
    try:
        text = read_text(path)
    except FormatFileError as exc:
        return ImportResult(LabelSet(options.schema), 1, [Rejection(str(path), "line 1", str(exc))])
    return _Loader(path, options).run(text)


class _Loader:
    def __init__(self, path: Path, options: LoadOptions) -> None:
        self.path = path
        self.options = options
        self.records = 0
        self.rejections: list[Rejection] = []

    def reject(self, line: int, reason: str) -> None:
        self.rejections.append(Rejection(str(self.path), f"line {line}", reason))

    def run(self, text: str) -> ImportResult:
        items: list[_Item] = []
        seen_uuids: set[str] = set()
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            self.records += 1
            try:
                items.append(_parse_line(line, number, seen_uuids))
            except _Reject as exc:
                self.reject(number, str(exc))
            except UnsafePathError as exc:
                self.reject(number, f"unsafe data row key: {exc}")
        schema = self.options.schema or _infer_schema(items, self.options.task)
        accepted = []
        for item in items:
            problem = _fit_problem(item, schema)
            if problem:
                self.reject(item.line, problem)
            else:
                accepted.append(item)
        labels = LabelSet(schema)
        if schema is not None:
            self._group(accepted, schema, labels)
        return ImportResult(labels, self.records, self.rejections)

    def _group(self, items: list[_Item], schema: LabelSchema, labels: LabelSet) -> None:
        """Collect items per image and side, then build one annotation per side (and per class)."""
        sides: dict[tuple[str, bool], _Side] = defaultdict(_Side)
        for item in items:
            side = sides[(item.image, item.score is not None)]
            labels.image(item.image)
            if item.kind == "answer":
                side.classes.append(ClassLabel(item.name, item.score))
            elif item.kind == "point":
                assert item.point is not None  # noqa: S101 - _parse_point set it
                index = schema.keypoints.index(item.name)
                if index in side.points:
                    self.reject(
                        item.line,
                        f"duplicate point {item.name!r} for data row {item.image!r}: Labelbox has no "
                        "instance grouping, so each data row holds one instance",
                    )
                    continue
                side.points[index] = item.point
                if item.score is not None:
                    side.point_scores.append(item.score)
            else:
                side.rows.append(_object_row(item, schema))
        for (name, predicted), side in sides.items():
            self._add_side(labels.image(name), side, predicted, schema)

    def _add_side(self, image: LabeledImage, side: _Side, predicted: bool, schema: LabelSchema) -> None:
        override = self.options.provenance
        for label in side.classes:
            provenance = (
                model_provenance(MODEL_VERSION, label.score, override)
                if predicted
                else human_provenance(self.path, override)
            )
            image.annotations.append(Annotation(label, provenance))
        rows = side.rows
        if side.points:
            _attach_points(side, schema)
        if not rows:
            return
        keypoint_count = len(schema.keypoints)
        scores = [r.score for r in rows if r.score is not None]
        provenance = (
            model_provenance(MODEL_VERSION, float(np.mean(scores)) if scores else None, override)
            if predicted
            else human_provenance(self.path, override)
        )
        image.annotations.append(Annotation(objects_label(rows, keypoint_count), provenance))


def _attach_points(side: _Side, schema: LabelSchema) -> None:
    """All points of a data row form one instance (Labelbox cannot group points per instance)."""
    points = np.zeros((len(schema.keypoints), 3))
    for index, (x, y) in side.points.items():
        points[index] = (x, y, 2.0)
    if len(side.rows) == 1:
        side.rows[0].keypoints = points
        return
    labeled = points[points[:, 2] > 0, :2]
    box = [*labeled.min(axis=0).tolist(), *labeled.max(axis=0).tolist()]
    score = float(np.mean(side.point_scores)) if side.point_scores else None
    side.rows.append(ObjectRow(box=box, class_name=schema.classes[0], score=score, keypoints=points))


def _object_row(item: _Item, schema: LabelSchema) -> ObjectRow:
    assert item.box is not None  # noqa: S101 - every object kind has a box
    row = ObjectRow(box=item.box, class_name=item.name, score=item.score, mask=item.mask)
    if item.ring is not None:
        row.polygons.append(item.ring)
    if schema.task is TaskType.KEYPOINTS:
        row.keypoints = np.zeros((len(schema.keypoints), 3))
    return row


# -- parsing one line ------------------------------------------------------------------------
def _parse_line(line: str, number: int, seen_uuids: set[str]) -> _Item:
    try:
        record = json_object_line(line)
    except ValueError as exc:
        raise _Reject(str(exc)) from exc
    key = record.get("uuid")
    if not isinstance(key, str) or not key:
        raise _Reject("'uuid' must be a non-empty string")
    if key in seen_uuids:
        raise _Reject(f"duplicate uuid {key!r}")
    seen_uuids.add(key)
    image = _data_row_name(record.get("dataRow"))
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _Reject("'name' (the feature name) must be a non-empty string; schemaId alone is not supported")
    kinds = [kind for kind in _GEOMETRIES if kind in record]
    if len(kinds) != 1:
        if "line" in record:
            raise _Reject("line (polyline) annotations are not supported")
        raise _Reject(f"expected exactly one of {', '.join(_GEOMETRIES)}, found {kinds or 'none'}")
    kind = kinds[0]
    score = _confidence(record.get("confidence"))
    item = _Item(number, image, kind, name.strip(), score)
    if kind == "answer":
        item.name, answer_score = _answer(record["answer"])
        item.score = score if answer_score is None else answer_score
    elif kind == "bbox":
        item.box = _bbox(record["bbox"])
    elif kind == "polygon":
        item.ring = _polygon(record["polygon"])
        item.box = _extent(item.ring)
    elif kind == "point":
        item.point = _point(record["point"])
        item.box = [*item.point, *item.point]
    else:
        item.mask, item.box = _mask(record["mask"])
    problem = name_problem(item.name)
    if problem:
        raise _Reject(problem)
    return item


def _data_row_name(data_row: Any) -> str:
    if not isinstance(data_row, dict):
        raise _Reject("'dataRow' must be an object with 'globalKey' or 'id'")
    key = data_row.get("globalKey", data_row.get("id"))
    if not isinstance(key, str) or not key:
        raise _Reject("'dataRow' needs a non-empty string 'globalKey' or 'id'")
    return safe_relative_path(key)


def _confidence(value: Any) -> float | None:
    if value is None:
        return None
    numbers = finite_numbers([value])
    if numbers is None or not 0.0 <= numbers[0] <= 1.0:
        raise _Reject(f"confidence must be a number within [0, 1], got {value!r}")
    return numbers[0]


def _answer(answer: Any) -> tuple[str, float | None]:
    """A radio answer, or a checklist with exactly one answer, as (class name, confidence)."""
    if isinstance(answer, list):
        if len(answer) != 1:
            raise _Reject(
                f"multi-label classification is not supported (checklist with {len(answer)} answers)"
            )
        answer = answer[0]
    if isinstance(answer, str):
        raise _Reject("free-text answers are not supported")
    if not isinstance(answer, dict) or not isinstance(answer.get("name"), str) or not answer["name"].strip():
        raise _Reject("'answer' must be an object with a non-empty 'name'")
    return answer["name"].strip(), _confidence(answer.get("confidence"))


def _bbox(bbox: Any) -> list[float]:
    if not isinstance(bbox, dict):
        raise _Reject("'bbox' must be an object with top, left, height and width")
    values = finite_numbers([bbox.get(key) for key in ("left", "top", "width", "height")], 4)
    if values is None:
        raise _Reject("bbox top, left, height and width must be finite numbers")
    left, top, width, height = values
    box = [left, top, left + width, top + height]
    problem = box_problem(box, None, None)
    if problem:
        raise _Reject(problem)
    return box


def _xy(point: Any, what: str) -> tuple[float, float]:
    if not isinstance(point, dict):
        raise _Reject(f"{what} must be an object with x and y")
    values = finite_numbers([point.get("x"), point.get("y")], 2)
    if values is None:
        raise _Reject(f"{what} x and y must be finite numbers")
    return values[0], values[1]


def _polygon(polygon: Any) -> FloatArray:
    if not isinstance(polygon, list):
        raise _Reject("'polygon' must be a list of {x, y} points")
    ring = np.array([_xy(point, "a polygon point") for point in polygon], dtype=np.float64).reshape(-1, 2)
    problem = polygon_problem(ring, None, None) or box_problem(_extent(ring), None, None)
    if problem:
        raise _Reject(problem)
    return ring


def _point(point: Any) -> tuple[float, float]:
    return _xy(point, "'point'")


def _extent(ring: FloatArray) -> list[float]:
    return [
        float(ring[:, 0].min()),
        float(ring[:, 1].min()),
        float(ring[:, 0].max()),
        float(ring[:, 1].max()),
    ]


def _mask(mask: Any) -> tuple[dict[str, Any], list[float]]:
    """A base64 PNG of 0/1 as (uncompressed RLE, extent box); URLs are never fetched."""
    if not isinstance(mask, dict):
        raise _Reject("'mask' must be an object with 'png'")
    png = mask.get("png")
    if png is None:
        if "instanceURI" in mask:
            raise _Reject("mask URLs are not fetched; embed the mask as {'png': base64}")
        raise _Reject("'mask' needs 'png' (base64 PNG of 0/1)")
    if not isinstance(png, str):
        raise _Reject("mask 'png' must be a base64 string")
    try:
        data = base64.b64decode(png, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Reject(f"mask 'png' is not valid base64: {exc}") from exc
    array = _decode_png(data)
    highest = int(array.max()) if array.size else 0
    if highest > 1:
        raise _Reject(f"mask values must be 0 or 1, found {highest}")
    binary = array.astype(bool)
    ys, xs = np.nonzero(binary)
    if not len(xs):
        raise _Reject("mask is empty (no pixel is 1)")
    box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    return rle_encode(binary), box


def _decode_png(data: bytes) -> Any:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            width, height = image.size
            if width * height > MAX_MASK_PIXELS:
                raise _Reject(f"mask of {width}x{height} pixels exceeds the limit of {MAX_MASK_PIXELS}")
            if image.mode not in ("1", "L", "P", "I", "I;16"):
                raise _Reject(f"mask PNG must have a single channel of 0/1, got mode {image.mode}")
            image.load()
            return np.asarray(image)
    except _Reject:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, Image.DecompressionBombError) as exc:
        raise _Reject(f"mask 'png' is not a readable PNG: {exc}") from exc


# -- schema -----------------------------------------------------------------------------------
def _infer_schema(items: list[_Item], task: TaskType | None) -> LabelSchema | None:
    """NDJSON has no ontology: classes and keypoint names in order of first use."""
    if not items:
        return None
    kinds = {item.kind for item in items}
    if task is None:
        if kinds == {"answer"}:
            task = TaskType.CLASSIFICATION
        elif "point" in kinds:
            task = TaskType.KEYPOINTS
        elif kinds & {"polygon", "mask"}:
            task = TaskType.SEGMENTATION
        else:
            task = TaskType.DETECTION
    if task is TaskType.CLASSIFICATION:
        classes = [i.name for i in items if i.kind == "answer"]
        return LabelSchema(task=task, classes=list(dict.fromkeys(classes)) or ["object"])
    classes = [i.name for i in items if i.kind not in ("answer", "point")]
    keypoints = [i.name for i in items if i.kind == "point"] if task is TaskType.KEYPOINTS else []
    if task is TaskType.KEYPOINTS and not keypoints:
        return None
    return LabelSchema(
        task=task,
        classes=list(dict.fromkeys(classes)) or ["object"],
        keypoints=list(dict.fromkeys(keypoints)),
    )


def _fit_problem(item: _Item, schema: LabelSchema | None) -> str | None:
    """Why a well-formed line does not fit the project schema, or None."""
    if schema is None:
        return "no schema: pass the project schema to import points"
    if schema.task is TaskType.CLASSIFICATION:
        if item.kind != "answer":
            return f"{item.kind} annotation in a classification project"
        return class_problem(item.name, schema)
    if item.kind == "answer":
        return f"classification answer in a {schema.task} project"
    if item.kind == "point":
        if schema.task is not TaskType.KEYPOINTS:
            return f"points are only imported in keypoints projects, not {schema.task}"
        if item.name not in schema.keypoints:
            return f"unknown keypoint {item.name!r}; known keypoints: {', '.join(schema.keypoints)}"
        return None
    return class_problem(item.name, schema)


# -- saving -----------------------------------------------------------------------------------
def save(labels: LabelSet, out: Path, options: SaveOptions) -> list[Path]:
    """One line per object, shape or classification; uuids are uuid5 of image name and index,
    so exporting the same labels twice gives identical files."""
    schema = labels.schema
    assert schema is not None  # noqa: S101 - FormatSpec.save checked it
    if out.suffix in (".ndjson", ".jsonl", ".json"):
        target = out
    else:
        target = out / ("predictions.ndjson" if options.predictions else "labels.ndjson")
    lines: list[str] = []
    for image in sorted(labels.images, key=lambda i: i.name):
        records: list[dict[str, Any]] = []
        for annotation in labels_to_save(image, options.predictions):
            records.extend(_records(annotation, schema, options.predictions))
        for index, record in enumerate(records):
            seed = f"{'predictions' if options.predictions else 'labels'}:{image.name}:{index}"
            line = {"uuid": str(uuid.uuid5(_UUID_NAMESPACE, seed)), "dataRow": {"globalKey": image.name}}
            line.update(record)
            lines.append(json.dumps(line, ensure_ascii=False))
    atomic_write_local(str(target), ("\n".join(lines) + "\n" if lines else "").encode("utf-8"))
    return [target]


def _records(annotation: Annotation, schema: LabelSchema, predicted: bool) -> list[dict[str, Any]]:
    label = annotation.label
    fallback = annotation.provenance.score
    if isinstance(label, ClassLabel):
        answer: dict[str, Any] = {"name": label.class_name}
        score = label.score if label.score is not None else fallback
        if predicted:
            answer["confidence"] = 1.0 if score is None else score
        return [{"name": CLASS_QUESTION, "answer": answer}]
    out: list[dict[str, Any]] = []
    for i in range(len(label)):
        shapes = _shapes(label, i)
        if label.keypoints is not None:
            shapes.extend(_points(label.keypoints[i], schema))
        if predicted:
            score = float(label.scores[i]) if label.scores is not None else fallback
            confidence = 1.0 if score is None else score
            for shape in shapes:
                shape["confidence"] = confidence
        out.extend(shapes)
    return out


def _shapes(label: ObjectLabels, i: int) -> list[dict[str, Any]]:
    """The object's polygons (one line per ring), else its mask, else its box."""
    name = label.class_names[i]
    rings = label.polygons[i] if label.polygons is not None else ()
    if rings:
        return [
            {"name": name, "polygon": [{"x": float(x), "y": float(y)} for x, y in ring]} for ring in rings
        ]
    mask = label.masks[i] if label.masks is not None else None
    if mask is not None:
        return [{"name": name, "mask": {"png": _png_base64(rle_decode(mask))}}]
    x0, y0, x1, y1 = (float(v) for v in label.boxes[i])
    return [{"name": name, "bbox": {"top": y0, "left": x0, "height": y1 - y0, "width": x1 - x0}}]


def _points(keypoints: FloatArray, schema: LabelSchema) -> list[dict[str, Any]]:
    """Labeled keypoints as point lines named after the keypoint (hidden ones included)."""
    return [
        {"name": schema.keypoints[k], "point": {"x": float(x), "y": float(y)}}
        for k, (x, y, visibility) in enumerate(keypoints)
        if visibility > 0 and math.isfinite(x) and math.isfinite(y)
    ]


def _png_base64(mask: Any) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(mask, dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
