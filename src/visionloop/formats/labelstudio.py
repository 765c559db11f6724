"""Label Studio JSON: tasks with annotations and predictions, and the project's labeling config.

Conventions:

- A file is a list of tasks (a Label Studio export), a single task, or ``{"tasks": [...]}`` (the
  ML backend request shape). A task without ``data`` is its own data, as Label Studio reads it.
- The image name comes from ``data.image``: ``/data/local-files/?d=<path>`` -> ``<path>``,
  ``s3://bucket/key`` (also ``gs://``, ``azure-blob://``) -> ``key``, ``/data/upload/<n>/<file>``
  -> ``<file>``, other http(s) URLs -> the URL path; anything else is taken as a relative path.
  Unsafe names (absolute, ``..``) reject the task. Tasks naming the same image are merged.
- Region coordinates are percent (0-100) of ``original_width``/``original_height``, which every
  geometric region must carry; ``x_px = x% / 100 * original_width``. Rectangles are top-left
  ``x, y, width, height``; rotated ones are refused. Polygons keep their points and take their
  extent as the box; brush masks (``format: "rle"``, see :mod:`ls_brush`) take the mask extent.
  Keypoints hang off an object region through ``parentID`` and are visible (v=2): Label Studio
  cannot express "labeled but hidden" (v=1), so such points come back as v=2. Each region holds
  exactly one label.
- Annotations are human labels by ``completed_by`` (``labelstudio:<id or email>``); cancelled
  ones are skipped. Predictions are model labels with ``model_version`` and ``score``; region
  scores become per-object (or class) scores.
- Records are regions, plus one for each task, annotation or prediction refused as a whole;
  locators are JSON pointers (``/3/annotations/0/result/2``). Label Studio's quick export
  (``GET /api/projects/<id>/export``) lists predictions by id only; each such id is refused with
  a reason that names the snapshot export (``POST /api/projects/<id>/exports``), which includes them.

Saving writes ``tasks.json`` (or the given ``.json`` path) and ``labeling_config.xml`` next to
it. ``data.image`` is the plain image name: map it to your storage (local files, S3) when
importing. ``completed_by`` is not written (Label Studio only accepts ids or emails of its own
users), so re-imported annotations belong to the importing user. Skeletons have no place in
Label Studio; objects with several polygon rings become one polygon region per ring; objects
with polygons are written as polygons (a mask they also carry is dropped), with masks only as
brush regions, with neither as rectangles. ``SaveOptions.predictions`` writes predictions only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import quoteattr

import numpy as np

from visionloop.core.errors import UnsafePathError, ValidationError
from visionloop.core.labels import ClassLabel, Label, ObjectLabels
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema, TaskType, is_valid_name
from visionloop.formats import ls_brush
from visionloop.formats.common import (
    ObjectRow,
    human_provenance,
    labels_to_save,
    model_provenance,
    objects_label,
)
from visionloop.formats.ls_regions import (
    BRUSH,
    CHOICE,
    IMAGE,
    KEYPOINT,
    LABEL,
    POLYGON,
    RegionTargets,
    RegionWriter,
)
from visionloop.formats.masks import rle_encode
from visionloop.formats.model import Annotation, ImportResult, LabeledImage, LabelSet, Rejection
from visionloop.formats.registry import LoadOptions, SaveOptions
from visionloop.formats.safeio import FormatFileError, read_json
from visionloop.formats.validate import (
    box_problem,
    class_problem,
    finite_numbers,
    keypoints_problem,
    polygon_problem,
)
from visionloop.storage import atomic_write_local, safe_relative_path

#: Largest ``original_width``/``original_height`` accepted (guards absurd values).
MAX_SIDE = 1 << 20
_GEOMETRIC = ("rectanglelabels", "polygonlabels", "brushlabels", "keypointlabels")
_STORAGE_SCHEMES = ("s3", "gs", "azure-blob")
_ID_ONLY_PREDICTION = (
    "prediction {} is only an id: Label Studio's quick export (GET /api/projects/<id>/export) leaves "
    "prediction contents out; use a snapshot export (POST /api/projects/<id>/exports with "
    "serialization_options.predictions.only_id = false)"
)


class _Reject(Exception):
    """Internal: a record is invalid for the reason given."""


# -- loading ----------------------------------------------------------------------------------
def load(path: Path, options: LoadOptions) -> ImportResult:
    try:
        data = read_json(path)
    except FormatFileError as exc:
        return _whole_file(path, options, str(exc))
    if isinstance(data, list):
        tasks, prefix = data, ""
    elif isinstance(data, dict) and isinstance(data.get("tasks"), list):
        tasks, prefix = data["tasks"], "/tasks"
    elif isinstance(data, dict) and ("data" in data or "annotations" in data or "predictions" in data):
        tasks, prefix = [data], None
    else:
        return _whole_file(path, options, "expected a list of Label Studio tasks or a task object")
    return _Loader(path, options).run(tasks, prefix)


def annotation_label(annotation: dict[str, Any], schema: LabelSchema) -> tuple[Label | None, list[str]]:
    """The core label of one Label Studio annotation (an item of a task's ``annotations``) and the
    reasons any of its regions were refused; ``None`` when nothing usable is left (cancelled,
    every region refused, or an empty classification)."""
    loader = _Loader(Path("labelstudio"), LoadOptions(schema=schema))
    result = loader.run([{"data": {IMAGE: "task"}, "annotations": [annotation]}], None)
    problems = [rejection.reason for rejection in result.rejections]
    annotations = [a for image in result.labels.images for a in image.annotations]
    return (annotations[0].label if annotations else None), problems


def prediction_result(label: Label, schema: LabelSchema, width: int, height: int) -> list[dict[str, Any]]:
    """A core label as a Label Studio result list (region scores included) in the control names of
    :func:`labeling_config`, on an image of ``width`` x ``height`` pixels."""
    writer = RegionWriter(RegionTargets(keypoint_labels=tuple(schema.keypoints)))
    return writer.regions(label, width, height, True)


def _whole_file(path: Path, options: LoadOptions, reason: str) -> ImportResult:
    return ImportResult(LabelSet(options.schema), 1, [Rejection(str(path), "/", reason)])


@dataclass
class _Parsed:
    """One annotation or prediction while loading; labels are built once the schema is known."""

    image: LabeledImage
    provenance: Provenance
    empty: bool
    rows: list[ObjectRow] = field(default_factory=list)
    points: dict[int, dict[str, tuple[float, float]]] = field(default_factory=dict)
    classes: list[ClassLabel] = field(default_factory=list)


@dataclass
class _Region:
    """A parsed region: an object row, a class label, or a keypoint waiting for its parent."""

    row: ObjectRow | None = None
    class_label: ClassLabel | None = None
    keypoint: tuple[str, float, float, str] | None = None  # name, x px, y px, parent id


class _Loader:
    def __init__(self, path: Path, options: LoadOptions) -> None:
        self.path = path
        self.options = options
        self.schema = options.schema
        self.records = 0
        self.rejections: list[Rejection] = []
        self.images: dict[str, LabeledImage] = {}
        self.parsed: list[_Parsed] = []
        self.class_names: dict[str, None] = {}
        self.keypoint_names: dict[str, None] = {}
        self.kinds: set[str] = set()

    def reject(self, locator: str, reason: str) -> None:
        self.rejections.append(Rejection(str(self.path), locator or "/", reason))

    def run(self, tasks: list[Any], prefix: str | None) -> ImportResult:
        for index, task in enumerate(tasks):
            base = "" if prefix is None else f"{prefix}/{index}"
            try:
                self._task(task, base)
            except (_Reject, UnsafePathError) as exc:
                self.records += 1
                self.reject(base, str(exc))
        schema = self.schema or self._infer_schema()
        for parsed in self.parsed:
            self._finish(parsed, schema)
        return ImportResult(LabelSet(schema, list(self.images.values())), self.records, self.rejections)

    # -- tasks and annotations
    def _task(self, task: Any, base: str) -> None:
        if not isinstance(task, dict):
            raise _Reject("a task must be a JSON object")
        data = task.get("data", task)
        if not isinstance(data, dict):
            raise _Reject("task 'data' must be an object")
        name = image_name(data.get("image"))
        image = self.images.get(name) or LabeledImage(name)
        self.images.setdefault(name, image)
        key = "annotations" if "annotations" in task or "completions" not in task else "completions"
        for index, annotation in self._containers(task, key, base):
            self._guarded_container(annotation, f"{base}/{key}/{index}", image, prediction=False)
        for index, prediction in self._containers(task, "predictions", base):
            self._guarded_container(prediction, f"{base}/predictions/{index}", image, prediction=True)

    def _containers(self, task: dict[str, Any], key: str, base: str) -> Iterator[tuple[int, Any]]:
        value = task.get(key)
        if value is None:
            return
        if not isinstance(value, list):
            self.records += 1
            self.reject(f"{base}/{key}", f"'{key}' must be a list")
            return
        yield from enumerate(value)

    def _guarded_container(self, container: Any, locator: str, image: LabeledImage, prediction: bool) -> None:
        try:
            if prediction and isinstance(container, int) and not isinstance(container, bool):
                raise _Reject(_ID_ONLY_PREDICTION.format(container))
            if not isinstance(container, dict):
                raise _Reject("an annotation or prediction must be a JSON object")
            result = container.get("result", [])
            if not isinstance(result, list):
                raise _Reject("'result' must be a list of regions")
            if container.get("was_cancelled") is True:
                return
            provenance = self._provenance(container, prediction)
        except (_Reject, ValueError) as exc:
            self.records += 1
            self.reject(locator, str(exc))
            return
        parsed = _Parsed(image, provenance, empty=not result)
        self._regions(result, locator, parsed, prediction)
        self.parsed.append(parsed)

    def _provenance(self, container: dict[str, Any], prediction: bool) -> Provenance:
        if prediction:
            score = _optional_score(container.get("score"), "prediction score")
            version = container.get("model_version")
            if version is not None and (not isinstance(version, str | int) or isinstance(version, bool)):
                raise _Reject(f"model_version must be a string, got {version!r}")
            return model_provenance(
                str(version) if version not in (None, "") else None, score, self.options.provenance
            )
        annotator = _annotator(container.get("completed_by"))
        if annotator is None:
            return human_provenance(self.path, self.options.provenance)
        return Provenance.human(f"labelstudio:{annotator}")

    # -- regions
    def _regions(self, result: list[Any], locator: str, parsed: _Parsed, prediction: bool) -> None:
        """Object and class regions first, then keypoints, which need their parents."""
        by_id: dict[str, int] = {}
        pending: list[tuple[str, tuple[str, float, float, str]]] = []
        for index, raw in enumerate(result):
            where = f"{locator}/result/{index}"
            self.records += 1
            try:
                region = self._region(raw, parsed.image, prediction)
            except (_Reject, ValueError, TypeError) as exc:
                self.reject(where, str(exc))
                continue
            if region.keypoint is not None:
                pending.append((where, region.keypoint))
            elif region.class_label is not None:
                parsed.classes.append(region.class_label)
            elif region.row is not None:
                if isinstance(raw.get("id"), str | int) and not isinstance(raw.get("id"), bool):
                    by_id[str(raw["id"])] = len(parsed.rows)
                parsed.rows.append(region.row)
        for where, (name, x, y, parent) in pending:
            row_index = by_id.get(parent)
            points = parsed.points.setdefault(row_index, {}) if row_index is not None else None
            if points is None:
                self.reject(where, f"keypoint {name!r} refers to missing parent region {parent!r}")
            elif name in points:
                self.reject(where, f"keypoint {name!r} appears twice on parent region {parent!r}")
            else:
                points[name] = (x, y)
                self.keypoint_names.setdefault(name, None)
                self.kinds.add("keypointlabels")

    def _region(self, raw: Any, image: LabeledImage, prediction: bool) -> _Region:
        if not isinstance(raw, dict):
            raise _Reject("a region must be a JSON object")
        kind = raw.get("type")
        value = raw.get("value")
        if not isinstance(kind, str):
            raise _Reject(f"region type must be a string, got {kind!r}")
        kind = kind.lower()
        if kind not in (*_GEOMETRIC, "choices"):
            raise _Reject(f"unsupported region type {kind!r}")
        if not isinstance(value, dict):
            raise _Reject("region 'value' must be an object")
        score = _optional_score(raw.get("score"), "region score") if prediction else None
        if kind == "choices":
            return _Region(class_label=self._choice(raw, value, image, score))
        width, height = self._size(raw, image)
        if kind == "keypointlabels":
            return _Region(keypoint=self._keypoint(raw, value, width, height))
        name = self._label(value, kind)
        if kind == "rectanglelabels":
            row = _rectangle(value, width, height)
        elif kind == "polygonlabels":
            row = _polygon(value, width, height)
        else:
            row = _brush(value, width, height)
        row.class_name, row.score = name, score
        self.kinds.add(kind)
        self.class_names.setdefault(name, None)
        return _Region(row=row)

    def _choice(
        self, raw: dict[str, Any], value: dict[str, Any], image: LabeledImage, score: float | None
    ) -> ClassLabel:
        name = _single_label(value, "choices")
        problem = class_problem(name, self.schema)
        if problem:
            raise _Reject(problem)
        if "original_width" in raw or "original_height" in raw:
            self._size(raw, image)
        self.kinds.add("choices")
        self.class_names.setdefault(name, None)
        return ClassLabel(name, score)

    def _label(self, value: dict[str, Any], kind: str) -> str:
        name = _single_label(value, kind)
        problem = class_problem(name, self.schema)
        if problem:
            raise _Reject(problem)
        return name

    def _keypoint(
        self, raw: dict[str, Any], value: dict[str, Any], width: int, height: int
    ) -> tuple[str, float, float, str]:
        name = _single_label(value, "keypointlabels")
        if self.schema is not None:
            if self.schema.task is not TaskType.KEYPOINTS:
                raise _Reject(f"keypoints do not apply to a {self.schema.task} project")
            if name not in self.schema.keypoints:
                raise _Reject(
                    f"unknown keypoint {name!r}; known keypoints: {', '.join(self.schema.keypoints)}"
                )
        xy = finite_numbers([value.get("x"), value.get("y")])
        if xy is None:
            raise _Reject("keypoint x and y must be finite numbers (percent)")
        point = np.array([[xy[0] / 100 * width, xy[1] / 100 * height, 2.0]])
        problem = keypoints_problem(point, width, height)
        if problem:
            raise _Reject(problem)
        parent = raw.get("parentID")
        if not isinstance(parent, str | int) or isinstance(parent, bool) or parent == "":
            raise _Reject("keypoint has no parentID; only keypoints tied to a rectangle are supported")
        return name, float(point[0, 0]), float(point[0, 1]), str(parent)

    def _size(self, raw: dict[str, Any], image: LabeledImage) -> tuple[int, int]:
        """The region's original size, which must agree with the image's (set by the first)."""
        width, height = raw.get("original_width"), raw.get("original_height")
        if width is None or height is None:
            raise _Reject("region needs original_width and original_height (pixels)")
        for number, label in ((width, "original_width"), (height, "original_height")):
            if isinstance(number, bool) or not isinstance(number, int) or not 0 < number <= MAX_SIDE:
                raise _Reject(f"{label} must be an integer within 1..{MAX_SIDE}, got {number!r}")
        if image.width is None or image.height is None:
            image.width, image.height = width, height
        elif (image.width, image.height) != (width, height):
            raise _Reject(
                f"original size {width}x{height} differs from {image.width}x{image.height} "
                "given by earlier regions of this image"
            )
        return width, height

    # -- schema and labels
    def _infer_schema(self) -> LabelSchema | None:
        """Task from the region types present; names in order of first appearance."""
        if not self.class_names:
            return None
        classes = list(self.class_names)
        if self.keypoint_names:
            return LabelSchema(task=TaskType.KEYPOINTS, classes=classes, keypoints=list(self.keypoint_names))
        if self.kinds & {"polygonlabels", "brushlabels"}:
            task = TaskType.SEGMENTATION
        elif "rectanglelabels" in self.kinds:
            task = TaskType.DETECTION
        else:
            task = TaskType.CLASSIFICATION
        if self.options.task is not None and self.options.task is not TaskType.KEYPOINTS:
            task = self.options.task
        return LabelSchema(task=task, classes=classes)

    def _finish(self, parsed: _Parsed, schema: LabelSchema | None) -> None:
        names = schema.keypoints if schema is not None and schema.task is TaskType.KEYPOINTS else []
        for row_index, row in enumerate(parsed.rows):
            if names:
                points = np.zeros((len(names), 3))
                for name, (x, y) in parsed.points.get(row_index, {}).items():
                    points[names.index(name)] = (x, y, 2.0)
                row.keypoints = points
        for class_label in parsed.classes:
            parsed.image.annotations.append(Annotation(class_label, parsed.provenance))
        objects_expected = schema is None or schema.task is not TaskType.CLASSIFICATION
        if parsed.rows or (parsed.empty and objects_expected):
            label = objects_label(parsed.rows, len(names))
            parsed.image.annotations.append(Annotation(label, parsed.provenance))


def image_name(source: Any) -> str:
    """The dataset-relative image name for a task's ``data.image`` (see the module docstring)."""
    if not isinstance(source, str) or not source:
        raise _Reject("task has no data.image string")
    try:
        parts = urlsplit(source)
    except ValueError as exc:  # e.g. an unclosed '[' in the host
        raise _Reject(f"task image URL {source!r} is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme in _STORAGE_SCHEMES:
        return safe_relative_path(unquote(parts.path.lstrip("/")))
    if scheme in ("http", "https") or (not scheme and source.startswith("/data/")):
        path = unquote(parts.path)
        if path.rstrip("/").endswith("/data/local-files"):
            return safe_relative_path(_query_value(parts.query, "d"))
        segments = path.split("/")
        if path.startswith("/data/upload/") and len(segments) >= 5:
            return safe_relative_path("/".join(segments[4:]))
        if scheme:
            return safe_relative_path(path.lstrip("/"))
    if scheme and len(scheme) > 1:
        raise _Reject(f"unsupported image URL scheme {scheme!r}")
    return safe_relative_path(source)


def _query_value(query: str, key: str) -> str:
    """``key``'s value, percent-decoded but with ``+`` kept (file names may contain it)."""
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == key:
            return unquote(value)
    raise _Reject(f"local-files URL has no '{key}' parameter")


def _annotator(completed_by: Any) -> str | None:
    if isinstance(completed_by, bool):
        return None
    if isinstance(completed_by, int | str) and str(completed_by):
        return str(completed_by)
    if isinstance(completed_by, dict):
        for key in ("email", "id", "username"):
            value = completed_by.get(key)
            if isinstance(value, int | str) and not isinstance(value, bool) and str(value):
                return str(value)
    return None


def _optional_score(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if finite_numbers([value]) is None or not 0.0 <= float(value) <= 1.0:
        raise _Reject(f"{what} must be a number within [0, 1], got {value!r}")
    return float(value)


def _single_label(value: dict[str, Any], key: str) -> str:
    labels = value.get(key)
    if not isinstance(labels, list) or not labels:
        raise _Reject(f"region value needs a non-empty '{key}' list")
    if len(labels) != 1:
        raise _Reject(f"region has {len(labels)} labels in '{key}'; exactly one is supported")
    if not isinstance(labels[0], str) or not labels[0].strip():
        raise _Reject(f"'{key}' must hold a non-empty string, got {labels[0]!r}")
    name = labels[0].strip()
    if not is_valid_name(name):  # it may become a class or keypoint name of the inferred schema
        raise _Reject(
            f"'{key}' label {name!r} is not a valid name: use 1 to 128 printable characters, no commas"
        )
    return name


def _rectangle(value: dict[str, Any], width: int, height: int) -> ObjectRow:
    numbers = finite_numbers([value.get(k) for k in ("x", "y", "width", "height")])
    if numbers is None:
        raise _Reject("rectangle x, y, width and height must be finite numbers (percent)")
    rotation = value.get("rotation", 0)
    if finite_numbers([rotation]) is None:
        raise _Reject(f"rectangle rotation must be a number, got {rotation!r}")
    if float(rotation) % 360 != 0:
        raise _Reject(f"rotated boxes are not supported (rotation {rotation})")
    x, y, w, h = numbers
    box = [x / 100 * width, y / 100 * height, (x + w) / 100 * width, (y + h) / 100 * height]
    problem = box_problem(box, width, height)
    if problem:
        raise _Reject(problem)
    return ObjectRow(box=box, class_name="")


def _polygon(value: dict[str, Any], width: int, height: int) -> ObjectRow:
    points = value.get("points")
    if not isinstance(points, list):
        raise _Reject("polygon 'points' must be a list of [x, y] percent pairs")
    pairs = [finite_numbers(p, 2) for p in points]
    if any(p is None for p in pairs):
        raise _Reject("polygon points must be [x, y] pairs of finite numbers")
    ring = np.array(pairs, dtype=np.float64).reshape(-1, 2) / 100 * np.array([width, height])
    problem = polygon_problem(ring, width, height)
    if problem:
        raise _Reject(problem)
    box = [*ring.min(axis=0).tolist(), *ring.max(axis=0).tolist()]
    problem = box_problem(box, width, height)
    if problem:
        raise _Reject(f"polygon is degenerate: {problem}")
    return ObjectRow(box=box, class_name="", polygons=[ring])


def _brush(value: dict[str, Any], width: int, height: int) -> ObjectRow:
    if value.get("format", "rle") != "rle":
        raise _Reject(f"unsupported brush format {value.get('format')!r}; expected 'rle'")
    try:
        mask = ls_brush.decode(value.get("rle"), height, width)
    except ValueError as exc:
        raise _Reject(f"invalid brush RLE: {exc}") from exc
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if not len(xs):
        raise _Reject("brush mask is empty")
    box = [float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)]
    return ObjectRow(box=box, class_name="", mask=rle_encode(mask))


# -- saving -----------------------------------------------------------------------------------
def save(labels: LabelSet, out: Path, options: SaveOptions) -> list[Path]:
    schema = labels.schema
    assert schema is not None  # noqa: S101 - FormatSpec.save checked it
    target = out if out.suffix.lower() == ".json" else out / "tasks.json"
    writer = RegionWriter(RegionTargets(keypoint_labels=tuple(schema.keypoints)))
    tasks = []
    for task_id, image in enumerate(sorted(labels.images, key=lambda i: i.name), start=1):
        task: dict[str, Any] = {"id": task_id, "data": {IMAGE: image.name}}
        if not options.predictions:
            task["annotations"] = [
                {"result": _result(writer, a.label, image, False), "was_cancelled": False}
                for a in labels_to_save(image, False)
            ]
        task["predictions"] = [_prediction(writer, a, image) for a in labels_to_save(image, True)]
        tasks.append(task)
    config = target.parent / "labeling_config.xml"
    atomic_write_local(str(target), json.dumps(tasks, ensure_ascii=False).encode("utf-8"))
    atomic_write_local(str(config), labeling_config(schema).encode("utf-8"))
    return [target, config]


def _prediction(writer: RegionWriter, annotation: Annotation, image: LabeledImage) -> dict[str, Any]:
    provenance = annotation.provenance
    prediction: dict[str, Any] = {
        "model_version": provenance.model_version,
        "result": _result(writer, annotation.label, image, True),
    }
    if provenance.score is not None:
        prediction["score"] = provenance.score
    return prediction


def _result(
    writer: RegionWriter, label: ClassLabel | ObjectLabels, image: LabeledImage, scores: bool
) -> list[dict[str, Any]]:
    try:
        return writer.regions(label, image.width, image.height, scores)
    except ValidationError as exc:
        raise FormatFileError(f"image {image.name!r}: {exc}") from exc


def labeling_config(schema: LabelSchema) -> str:
    """The Label Studio project config whose tag names match the regions :func:`save` writes."""
    classes = schema.classes
    lines = ["<View>", f'  <Image name="{IMAGE}" value="${IMAGE}"/>']
    if schema.task is TaskType.CLASSIFICATION:
        lines += _control("Choices", CHOICE, classes, child="Choice", extra=' choice="single"')
    else:
        lines += _control("RectangleLabels", LABEL, classes)
    if schema.task is TaskType.SEGMENTATION:
        lines += _control("PolygonLabels", POLYGON, classes)
        lines += _control("BrushLabels", BRUSH, classes)
    if schema.task is TaskType.KEYPOINTS:
        lines += _control("KeyPointLabels", KEYPOINT, schema.keypoints)
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _control(tag: str, name: str, values: list[str], child: str = "Label", extra: str = "") -> list[str]:
    children = [f"    <{child} value={quoteattr(value)}/>" for value in values]
    return [f'  <{tag} name="{name}" toName="{IMAGE}"{extra}>', *children, f"  </{tag}>"]
