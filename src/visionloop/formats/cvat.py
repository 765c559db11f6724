"""CVAT for images 1.1 XML: tags, boxes, polygons, masks, points and skeletons, with attributes.

Conventions (CVAT side -> core):

* Coordinates are absolute pixels, as in the core. Boxes are ``xtl, ytl, xbr, ybr`` (already xyxy);
  polygons are ``points="x0,y0;x1,y1;..."`` and their box is their extent.
* A ``<mask>`` holds ``rle="n0, n1, ..."``: alternating background/foreground run lengths, row-major,
  starting with background, *inside the crop* ``left, top, width, height``. It becomes a COCO RLE of
  the whole image (column-major); its box is the extent of its foreground pixels. Saving writes the
  tightest crop.
* ``<skeleton>`` elements become one object each with keypoints in schema order: ``outside="1"`` ->
  visibility 0 (stored as 0, 0, 0), ``occluded="1"`` -> 1, else 2. CVAT skeletons have no box, so
  the box is the extent of the labeled keypoints: a skeleton's own box does not survive a round trip.
  A skeleton with no labeled point is rejected; saving writes such an object as a ``<box>``. A
  ``<points>`` shape is read as keypoints only in a keypoints project and only when it has one point
  per keypoint (all visible, or all hidden when ``occluded``).
* Lossy on purpose: a tag's attributes (a class label has none), several model annotations of one
  image (they load as one), model versions (model shapes load as ``cvat-auto``), non-scalar
  attribute values (written as text), ``<polyline>``/``<ellipse>``/``<cuboid>`` (rejected).
* Polygons and masks with the same non-zero ``group_id``, label and source are one object (several
  rings); saving writes multi-ring objects that way.
* ``source="auto"`` or ``"semi-auto"`` marks model output: per image those shapes form one model
  annotation, whose scores come from a numeric ``score`` attribute; other sources are human.
  Saving writes ground truth as ``manual`` (auto-accepted ground truth as ``semi-auto``, so it can
  never come back as a human label) and model annotations as ``auto`` with a ``score`` attribute.
* Per-object attributes: ``occluded`` (True when set), ``z_order`` (when non-zero) and every
  ``<attribute name="...">`` child, typed by the label's declaration in ``<meta>`` (checkbox -> bool,
  number -> int or float, other -> str). Coordinates are written as the shortest text that reads
  back as the same double (``repr``).

Records are the shape elements (and unknown elements inside images), plus one per ``<image>`` or
``<label>`` declaration that fails as a whole; locators are element paths such as
``annotations/image[3]/polygon[2]`` (1-based per tag, as in XPath).
"""

from __future__ import annotations

import html
import math
import re
import xml.etree.ElementTree as ET  # only used to *write* XML; reading goes through defusedxml
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import UnsafePathError, VisionloopError
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType, is_valid_name
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
from visionloop.formats.safeio import FormatFileError, parse_xml
from visionloop.formats.validate import (
    box_problem,
    class_problem,
    keypoints_problem,
    polygon_problem,
)
from visionloop.storage import atomic_write_local, safe_relative_path

#: Largest image (and mask crop) a mask may be decoded in, so a declared size cannot exhaust memory.
MAX_MASK_PIXELS = 100_000_000
#: Largest image side accepted; CVAT itself caps far lower.
MAX_IMAGE_SIDE = 2**31 - 1
MODEL_SOURCES = frozenset({"auto", "semi-auto"})
HUMAN_SOURCES = frozenset({"manual", "file", "consensus"})
SHAPES = frozenset({"tag", "box", "polygon", "mask", "points", "skeleton"})
_SVG_TAG = re.compile(r"<(line|circle)\b([^<>]*)>")
_SVG_ATTR = re.compile(r'([\w:-]+)="([^"]*)"')
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_INTEGER = re.compile(r"^[+-]?\d+$")


class _Reject(Exception):
    """Internal: a record is invalid for the reason given."""


# -- loading --------------------------------------------------------------------------------------
@dataclass
class _LabelSpec:
    """One ``<label>`` declaration from ``<meta>``."""

    name: str
    type: str = "any"
    parent: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)  # name -> input_type
    svg: str = ""


@dataclass
class _Pending:
    """An accepted object shape before grouping: its row, group key and whether a model made it."""

    row: ObjectRow
    model: bool
    group: tuple[str, str, bool] | None = None


def load(path: Path, options: LoadOptions) -> ImportResult:
    try:
        root = parse_xml(path)
    except FormatFileError as exc:
        return ImportResult(LabelSet(options.schema), 1, [Rejection(str(path), "/", str(exc))])
    if root.tag != "annotations":
        reason = f"expected an <annotations> root element (CVAT for images 1.1), got <{root.tag}>"
        return ImportResult(LabelSet(options.schema), 1, [Rejection(str(path), "/", reason)])
    return _Reader(path, options).run(root)


class _Reader:
    def __init__(self, path: Path, options: LoadOptions) -> None:
        self.path = path
        self.options = options
        self.records = 0
        self.rejections: list[Rejection] = []
        self.labels: dict[str, _LabelSpec] = {}

    def reject(self, locator: str, reason: str) -> None:
        self.rejections.append(Rejection(str(self.path), locator, reason))

    def run(self, root: ET.Element) -> ImportResult:
        meta = root.find("meta")
        if meta is not None:
            self._read_labels(meta)
        images: list[tuple[str, ET.Element]] = []
        for locator, element in _children(root, "annotations"):
            if element.tag == "image":
                images.append((locator, element))
            elif element.tag not in ("version", "meta"):
                self.records += 1
                reason = f"unsupported element <{element.tag}>"
                if element.tag == "track":
                    reason += " (tracks are CVAT for video; export the task as CVAT for images)"
                self.reject(locator, reason)
        schema = self.options.schema
        if schema is None:
            try:
                schema = self._infer_schema([element for _, element in images])
            except ValueError as exc:
                self.records += 1
                self.reject("annotations/meta", f"cannot build a label schema: {exc}")
        out = LabelSet(schema)
        names: set[str] = set()
        for locator, element in images:
            image = self._image(locator, element, names)
            if image is not None:
                out.images.append(image)
                self._shapes(locator, element, image, schema)
        return ImportResult(out, self.records, self.rejections)

    # -- meta ---------------------------------------------------------------------------------
    def _read_labels(self, meta: ET.Element) -> None:
        """Labels live in ``meta/task``, ``meta/project`` or ``meta/job``; the first one found wins."""
        for owner in ("task", "project", "job"):
            labels = meta.find(f"{owner}/labels")
            if labels is None:
                continue
            for locator, element in _children(labels, f"annotations/meta/{owner}/labels"):
                if element.tag != "label":
                    continue
                try:
                    spec = _label_spec(element)
                except _Reject as exc:
                    self.records += 1
                    self.reject(locator, str(exc))
                    continue
                key = spec.name if spec.parent is None else f"{spec.parent}\x00{spec.name}"
                self.labels.setdefault(key, spec)
            return

    def _classes(self) -> list[_LabelSpec]:
        return [spec for spec in self.labels.values() if spec.parent is None]

    def _sublabels(self, parent: str) -> list[str]:
        return [spec.name for spec in self.labels.values() if spec.parent == parent]

    def _infer_schema(self, images: list[ET.Element]) -> LabelSchema | None:
        """Classes from ``<meta>`` (plus undeclared labels in use); the task from the shapes used,
        or from the declared label types when no image has a shape."""
        classes = [spec.name for spec in self._classes()]
        kinds: set[str] = set()
        for image in images:
            for shape in image:
                kinds.add(shape.tag)
                label = shape.get("label")
                if shape.tag in SHAPES and label and label not in classes and is_valid_name(label):
                    classes.append(label)
        if not kinds & SHAPES:
            kinds = {_TYPE_TO_SHAPE.get(spec.type, "") for spec in self._classes()}
        classes = [name for name in dict.fromkeys(classes) if is_valid_name(name)]
        if not classes:
            return None
        skeleton_label = next((s for s in self._classes() if s.type == "skeleton"), None)
        keypoints = self._sublabels(skeleton_label.name) if skeleton_label else []
        keypoints = [k for k in dict.fromkeys(keypoints) if is_valid_name(k)]
        if keypoints and ("skeleton" in kinds or skeleton_label is not None):
            task = TaskType.KEYPOINTS
        elif kinds & {"polygon", "mask"}:
            task = TaskType.SEGMENTATION
        elif kinds & {"box", "points", "skeleton"}:
            task = TaskType.DETECTION
        elif "tag" in kinds:
            task = TaskType.CLASSIFICATION
        else:
            task = TaskType.DETECTION
        if self.options.task is not None and (self.options.task is not TaskType.KEYPOINTS or keypoints):
            task = self.options.task
        if task is not TaskType.KEYPOINTS:
            return LabelSchema(task=task, classes=classes)
        assert skeleton_label is not None  # noqa: S101 - keypoints imply a skeleton label
        edges = _svg_edges(skeleton_label.svg, self._sublabels(skeleton_label.name), keypoints)
        return LabelSchema(task=task, classes=classes, keypoints=keypoints, skeleton=edges)

    # -- images -------------------------------------------------------------------------------
    def _image(self, locator: str, element: ET.Element, names: set[str]) -> LabeledImage | None:
        """The image, or None after one rejection for the whole element (its shapes uncounted)."""
        try:
            raw = element.get("name")
            if not raw:
                raise _Reject("image needs a name")
            name = safe_relative_path(raw)
            if name in names:
                raise _Reject(f"duplicate image name {name!r}")
            width = _positive_int(element, "width")
            height = _positive_int(element, "height")
        except _Reject as exc:
            self.records += 1
            self.reject(locator, str(exc))
            return None
        except UnsafePathError as exc:
            self.records += 1
            self.reject(locator, f"unsafe image name: {exc}")
            return None
        names.add(name)
        return LabeledImage(name, width, height)

    def _shapes(
        self, image_locator: str, element: ET.Element, image: LabeledImage, schema: LabelSchema | None
    ) -> None:
        pending: list[_Pending] = []
        tags: list[tuple[ClassLabel, bool]] = []
        for locator, shape in _children(element, image_locator):
            self.records += 1
            try:
                if shape.tag == "tag":
                    tags.append(self._tag(shape, schema))
                elif shape.tag in SHAPES:
                    pending.append(self._object(shape, image, schema))
                else:
                    raise _Reject(f"unsupported shape <{shape.tag}>")
            except _Reject as exc:
                self.reject(locator, str(exc))
            except (ValueError, VisionloopError) as exc:
                self.reject(locator, f"invalid shape: {exc}")
        for label, is_model in tags:
            image.annotations.append(Annotation(label, self._provenance(is_model)))
        keypoint_count = len(schema.keypoints) if schema else 0
        for is_model in (False, True):
            rows = _merge_groups([p for p in pending if p.model is is_model])
            for row in rows:
                if keypoint_count and row.keypoints is None:  # a keypoints project: all unlabeled
                    row.keypoints = np.zeros((keypoint_count, 3))
            if rows:
                image.annotations.append(
                    Annotation(objects_label(rows, keypoint_count), self._provenance(is_model))
                )

    def _provenance(self, is_model: bool) -> Provenance:
        if is_model:
            return model_provenance("cvat-auto", None, self.options.provenance)
        return human_provenance(self.path, self.options.provenance)

    def _common(self, shape: ET.Element, schema: LabelSchema | None) -> tuple[str, bool, dict[str, Any]]:
        """Label, whether a model made it, and attributes: the parts every shape shares."""
        label = shape.get("label")
        if not label:
            raise _Reject(f"<{shape.tag}> needs a label")
        problem = class_problem(label, schema)
        if problem:
            raise _Reject(problem)
        source = shape.get("source", "manual")
        if source not in MODEL_SOURCES | HUMAN_SOURCES:
            raise _Reject(f"unknown source {source!r}; expected manual, auto or semi-auto")
        spec = self.labels.get(label)
        attributes = _attributes(shape, spec.attributes if spec else {})
        occluded = _flag(shape, "occluded")
        if occluded:
            attributes["occluded"] = True
        z_order = shape.get("z_order")
        if z_order not in (None, "0"):
            if not _INTEGER.match(z_order or ""):
                raise _Reject(f"z_order must be an integer, got {z_order!r}")
            attributes["z_order"] = int(z_order or 0)
        return label, source in MODEL_SOURCES, attributes

    def _tag(self, shape: ET.Element, schema: LabelSchema | None) -> tuple[ClassLabel, bool]:
        if schema is not None and schema.task is not TaskType.CLASSIFICATION:
            raise _Reject(f"a tag (image-level label) needs a classification project, not {schema.task}")
        label, is_model, attributes = self._common(shape, schema)
        score = _score(attributes) if is_model else None
        return ClassLabel(label, score), is_model

    def _object(self, shape: ET.Element, image: LabeledImage, schema: LabelSchema | None) -> _Pending:
        if schema is not None and schema.task is TaskType.CLASSIFICATION:
            raise _Reject(f"a <{shape.tag}> needs an object project (detection, segmentation, keypoints)")
        label, is_model, attributes = self._common(shape, schema)
        width, height = image.width, image.height
        assert width is not None and height is not None  # noqa: S101 - _image checked them
        row = ObjectRow(box=[0.0, 0.0, 0.0, 0.0], class_name=label, attributes=attributes)
        if is_model:
            row.score = _score(attributes)
        group = None
        if shape.tag == "box":
            row.box = [_number(shape, key) for key in ("xtl", "ytl", "xbr", "ybr")]
            _check(box_problem(row.box, width, height))
        elif shape.tag == "polygon":
            ring = _points(shape.get("points"))
            _check(polygon_problem(ring, width, height))
            row.polygons.append(ring)
            row.box = _extent(ring)
            group = _group(shape, label, is_model)
        elif shape.tag == "mask":
            row.mask, row.box = _mask(shape, width, height)
            group = _group(shape, label, is_model)
        else:
            keypoints = self._keypoints(shape, schema)
            _check(keypoints_problem(keypoints, width, height))
            labeled = keypoints[keypoints[:, 2] > 0, :2]
            if not len(labeled):
                raise _Reject(f"<{shape.tag}> has no labeled (non-outside) point")
            row.keypoints = keypoints
            row.box = _extent(labeled)
        return _Pending(row, is_model, group)

    def _keypoints(self, shape: ET.Element, schema: LabelSchema | None) -> npt.NDArray[np.float64]:
        """``(K, 3)`` keypoints in schema order from a ``<skeleton>`` or a ``<points>`` shape."""
        if schema is None or schema.task is not TaskType.KEYPOINTS:
            raise _Reject(f"<{shape.tag}> is only read as keypoints, in a keypoints project")
        names = schema.keypoints
        out = np.zeros((len(names), 3))
        if shape.tag == "points":
            points = _points(shape.get("points"), minimum=1)
            if len(points) != len(names):
                raise _Reject(f"points has {len(points)} points; this project has {len(names)} keypoints")
            out[:, :2] = points
            out[:, 2] = 1.0 if _flag(shape, "occluded") else 2.0
            return out
        seen: set[str] = set()
        for child in shape:
            if child.tag == "attribute":
                continue
            name = child.get("label", "")
            if child.tag != "points" or name not in names:
                raise _Reject(f"skeleton element <{child.tag} label={name!r}> is not a known keypoint")
            if name in seen:
                raise _Reject(f"skeleton has keypoint {name!r} twice")
            seen.add(name)
            if _flag(child, "outside"):
                continue
            point = _points(child.get("points"), minimum=1)
            if len(point) != 1:
                raise _Reject(f"keypoint {name!r} must be one x,y point, got {len(point)}")
            index = names.index(name)
            out[index, :2] = point[0]
            out[index, 2] = 1.0 if _flag(child, "occluded") else 2.0
        return out


_TYPE_TO_SHAPE = {
    "rectangle": "box",
    "bbox": "box",
    "polygon": "polygon",
    "mask": "mask",
    "skeleton": "skeleton",
    "tag": "tag",
    "points": "points",
}


def _children(parent: ET.Element, prefix: str) -> Iterator[tuple[str, ET.Element]]:
    """Child elements with their XPath-style locator (1-based index per tag)."""
    counts: dict[str, int] = {}
    for child in parent:
        if not isinstance(child.tag, str):  # comments and processing instructions
            continue
        counts[child.tag] = counts.get(child.tag, 0) + 1
        yield f"{prefix}/{child.tag}[{counts[child.tag]}]", child


def _label_spec(element: ET.Element) -> _LabelSpec:
    name = (element.findtext("name") or "").strip()
    if not is_valid_name(name):
        raise _Reject(f"label name {name!r} is empty, too long or has commas or control characters")
    spec = _LabelSpec(name, (element.findtext("type") or "any").strip())
    parent = (element.findtext("parent") or "").strip()
    spec.parent = parent or None
    spec.svg = element.findtext("svg") or ""
    for attribute in element.iterfind("attributes/attribute"):
        attr_name = (attribute.findtext("name") or "").strip()
        if attr_name:
            spec.attributes[attr_name] = (attribute.findtext("input_type") or "text").strip()
    return spec


def _svg_edges(svg: str, sublabels: list[str], keypoints: list[str]) -> list[tuple[str, str]]:
    """Skeleton edges from the label's ``<svg>``: ``<line data-node-from=.. data-node-to=..>``
    between ``<circle data-node-id=.. data-label-name=..>`` nodes (node n is the n-th sub-label
    when circles do not name it). Edges that name unknown nodes are dropped."""
    nodes = {str(i + 1): name for i, name in enumerate(sublabels)}
    lines: list[tuple[str, str]] = []
    for tag, body in _SVG_TAG.findall(svg):
        attrs = dict(_SVG_ATTR.findall(body))
        if tag == "circle" and "data-node-id" in attrs and "data-label-name" in attrs:
            nodes[attrs["data-node-id"]] = html.unescape(attrs["data-label-name"])
        elif tag == "line":
            lines.append((attrs.get("data-node-from", ""), attrs.get("data-node-to", "")))
    edges: list[tuple[str, str]] = []
    for a, b in lines:
        pair = (nodes.get(a, ""), nodes.get(b, ""))
        if pair[0] in keypoints and pair[1] in keypoints and pair[0] != pair[1] and pair not in edges:
            edges.append(pair)
    return edges


def _check(problem: str | None) -> None:
    if problem:
        raise _Reject(problem)


def _number(element: ET.Element, key: str) -> float:
    return _parse_float(element.get(key), key)


def _parse_float(text: str | None, what: str) -> float:
    if text is None:
        raise _Reject(f"missing {what}")
    try:
        value = float(text)
    except ValueError:
        raise _Reject(f"{what} must be a number, got {text[:40]!r}") from None
    if not math.isfinite(value):
        raise _Reject(f"{what} must be a finite number, got {text[:40]!r}")
    return value


def _int_attribute(element: ET.Element, key: str, minimum: int) -> int:
    text = element.get(key)
    if text is None or not _INTEGER.match(text.strip()) or len(text) > 12:
        raise _Reject(f"{key} must be an integer, got {text!r}")
    value = int(text)
    if not minimum <= value <= MAX_IMAGE_SIDE:
        raise _Reject(f"{key} must be an integer within [{minimum}, {MAX_IMAGE_SIDE}], got {value}")
    return value


def _positive_int(element: ET.Element, key: str) -> int:
    return _int_attribute(element, key, 1)


def _flag(element: ET.Element, key: str) -> bool:
    value = element.get(key, "0")
    if value not in ("0", "1", "true", "false", "True", "False"):
        raise _Reject(f"{key} must be 0 or 1, got {value[:40]!r}")
    return value in ("1", "true", "True")


def _points(text: str | None, minimum: int = 3) -> npt.NDArray[np.float64]:
    """``"x0,y0;x1,y1;..."`` -> ``(N, 2)``; refuses odd counts and non-finite numbers."""
    if not text:
        raise _Reject("missing points")
    pairs = [pair for pair in text.strip().split(";") if pair.strip()]
    values: list[list[float]] = []
    for pair in pairs:
        parts = pair.split(",")
        if len(parts) != 2:
            raise _Reject(f"points must be x,y pairs separated by ';', got {pair[:40]!r}")
        values.append([_parse_float(parts[0], "point x"), _parse_float(parts[1], "point y")])
    if len(values) < minimum:
        raise _Reject(f"polygon has {len(values)} points; at least {minimum} are needed")
    return np.array(values, dtype=np.float64).reshape(-1, 2)


def _extent(points: npt.NDArray[np.float64]) -> list[float]:
    return [
        float(points[:, 0].min()),
        float(points[:, 1].min()),
        float(points[:, 0].max()),
        float(points[:, 1].max()),
    ]


def _group(shape: ET.Element, label: str, is_model: bool) -> tuple[str, str, bool] | None:
    group = shape.get("group_id", "0").strip()
    return None if group in ("", "0") else (group, label, is_model)


def _attributes(shape: ET.Element, types: dict[str, str]) -> dict[str, Any]:
    """``<attribute name=..>value</attribute>`` children, typed by the label declaration."""
    out: dict[str, Any] = {}
    for child in shape.iterfind("attribute"):
        name = child.get("name")
        if not name:
            raise _Reject("an <attribute> needs a name")
        if name in out:
            raise _Reject(f"attribute {name!r} appears twice")
        out[name] = _typed(child.text or "", types.get(name, "text"))
    return out


def _typed(text: str, input_type: str) -> Any:
    """A CVAT attribute value as Python: checkbox -> bool, number -> int/float, else the text."""
    if input_type == "checkbox" and text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    if input_type == "number":
        stripped = text.strip()
        if _INTEGER.match(stripped) and len(stripped) < 19:
            return int(stripped)
        try:
            value = float(stripped)
        except ValueError:
            return text
        return value if math.isfinite(value) else text
    return text


def _score(attributes: dict[str, Any]) -> float | None:
    """A model shape's confidence: its ``score`` attribute, moved out of the attributes."""
    if "score" not in attributes:
        return None
    raw = attributes.pop("score")
    try:
        score = float(raw)
    except (TypeError, ValueError):
        raise _Reject(f"score must be a number within [0, 1], got {raw!r}") from None
    if not 0.0 <= score <= 1.0:
        raise _Reject(f"score must be a number within [0, 1], got {raw!r}")
    return score


def _mask(shape: ET.Element, width: int, height: int) -> tuple[dict[str, Any], list[float]]:
    """A CVAT crop RLE -> core RLE of the whole image and the foreground's box.

    Sizes and the run sum are checked before anything is allocated, so a hostile run count
    (``10**12``) or crop costs nothing.
    """
    left = _int_attribute(shape, "left", 0)
    top = _int_attribute(shape, "top", 0)
    crop_w = _int_attribute(shape, "width", 1)
    crop_h = _int_attribute(shape, "height", 1)
    if left + crop_w > width or top + crop_h > height:
        raise _Reject(
            f"mask crop {crop_w}x{crop_h} at ({left}, {top}) lies outside the {width}x{height} image"
        )
    if width * height > MAX_MASK_PIXELS:
        raise _Reject(f"image of {width}x{height} exceeds the mask limit of {MAX_MASK_PIXELS} pixels")
    text = shape.get("rle", "")
    tokens = [token.strip() for token in text.split(",")] if text.strip() else []
    if not tokens or any(not (token.isascii() and token.isdigit()) or len(token) > 15 for token in tokens):
        raise _Reject("mask rle must be comma-separated non-negative integers")
    runs = [int(token) for token in tokens]
    if sum(runs) != crop_w * crop_h:
        raise _Reject(f"mask rle runs sum to {sum(runs)}, expected {crop_w}x{crop_h} = {crop_w * crop_h}")
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True
    crop = np.repeat(values, runs).reshape(crop_h, crop_w)
    if not crop.any():
        raise _Reject("mask has no foreground pixels")
    strip = np.zeros((height, crop_w), dtype=bool)
    strip[top : top + crop_h] = crop
    rle = _strip_rle(strip, left, width)
    ys, xs = np.nonzero(crop)
    box = [
        float(left + xs.min()),
        float(top + ys.min()),
        float(left + xs.max() + 1),
        float(top + ys.max() + 1),
    ]
    return rle, box


def _strip_rle(strip: npt.NDArray[np.bool_], left: int, width: int) -> dict[str, Any]:
    """COCO RLE of a full-height column strip placed at ``left`` in an image ``width`` wide.

    Columns outside the strip are background, so only the strip is ever allocated.
    """
    height, strip_w = strip.shape
    counts = list(rle_encode(strip)["counts"])
    counts[0] += left * height
    after = (width - left - strip_w) * height
    if after:
        if len(counts) % 2:  # ends with a background run
            counts[-1] += after
        else:
            counts.append(after)
    return {"size": [height, width], "counts": counts}


def _merge_groups(pending: list[_Pending]) -> list[ObjectRow]:
    """Rows in file order; polygons and masks sharing a group become one object with every ring."""
    rows: list[ObjectRow] = []
    groups: dict[tuple[str, str, bool], ObjectRow] = {}
    for item in pending:
        if item.group is None or item.group not in groups:
            rows.append(item.row)
            if item.group is not None:
                groups[item.group] = item.row
            continue
        row = groups[item.group]
        row.polygons.extend(item.row.polygons)
        if item.row.mask is not None:
            row.mask = item.row.mask if row.mask is None else _union(row.mask, item.row.mask)
        row.box = [
            min(row.box[0], item.row.box[0]),
            min(row.box[1], item.row.box[1]),
            max(row.box[2], item.row.box[2]),
            max(row.box[3], item.row.box[3]),
        ]
        for key, value in item.row.attributes.items():
            row.attributes.setdefault(key, value)
        if row.score is None:
            row.score = item.row.score
    return rows


def _union(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return rle_encode(rle_decode(a) | rle_decode(b))


# -- saving ---------------------------------------------------------------------------------------
def save(labels: LabelSet, out: Path, options: SaveOptions) -> list[Path]:
    """Write ``out`` (an ``.xml`` path) or ``out/annotations.xml``.

    Ground truth and model annotations go in the same file (``manual`` / ``auto`` sources);
    ``options.predictions`` writes the model annotations only.
    """
    schema = labels.schema
    assert schema is not None  # noqa: S101 - FormatSpec.save checked it
    target = out if out.suffix.lower() == ".xml" else out / "annotations.xml"
    images = sorted(labels.images, key=lambda image: image.name)
    chosen = [(image, list(_annotations_to_save(image, options.predictions))) for image in images]
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(root, "meta")
    task = ET.SubElement(meta, "task")
    ET.SubElement(task, "name").text = "visionloop export"
    ET.SubElement(task, "size").text = str(len(images))
    ET.SubElement(task, "mode").text = "annotation"
    task.append(_labels_element(schema, [a for _, written in chosen for a in written]))
    for index, (image, written) in enumerate(chosen):
        if image.width is None or image.height is None:
            raise FormatFileError(f"cannot write CVAT: image {image.name!r} has no width/height")
        element = ET.SubElement(
            root,
            "image",
            {
                "id": str(index),
                "name": _xml_text(image.name),
                "width": str(image.width),
                "height": str(image.height),
            },
        )
        groups = _GroupIds()
        for annotation in written:
            source = _source(annotation.provenance)
            for shape in _shapes(annotation.label, source, schema, groups):
                element.append(shape)
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    atomic_write_local(str(target), data)
    return [target]


def _annotations_to_save(image: LabeledImage, predictions: bool) -> Iterable[Annotation]:
    model = list(labels_to_save(image, True))
    return model if predictions else [*labels_to_save(image, False), *model]


def _source(provenance: Provenance) -> str:
    """Model output is ``auto``; auto-accepted labels ``semi-auto`` so they never read back as human."""
    return {ProvenanceKind.HUMAN: "manual", ProvenanceKind.AUTO: "semi-auto"}.get(provenance.kind, "auto")


class _GroupIds:
    """Per-image ``group_id`` counter for objects written as several elements."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> str:
        self.last += 1
        return str(self.last)


def _fmt(value: float) -> str:
    """Shortest text that reads back as exactly the same double."""
    number = float(value)
    if not math.isfinite(number):
        raise FormatFileError(f"cannot write CVAT: coordinate {number} is not finite")
    return repr(number)


def _xml_text(value: str) -> str:
    """XML 1.0 cannot hold most control characters; refuse rather than write an unreadable file."""
    if _XML_UNSAFE.search(value):
        raise FormatFileError(f"cannot write CVAT: {value[:40]!r} has characters XML cannot hold")
    return value


def _attribute_type(values: list[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "checkbox"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "number"
    return "text"


def _collect_attributes(annotations: list[Annotation]) -> dict[str, dict[str, list[Any]]]:
    """Per class, each ``<attribute>`` name with all values written, to declare its type."""
    out: dict[str, dict[str, list[Any]]] = {}
    for annotation in annotations:
        label = annotation.label
        is_model = annotation.provenance.kind is ProvenanceKind.MODEL
        if isinstance(label, ClassLabel):
            if is_model and label.score is not None:
                out.setdefault(label.class_name, {}).setdefault("score", []).append(label.score)
            continue
        for i, name in enumerate(label.class_names):
            attributes = _free_attributes(label, i)
            if is_model and label.scores is not None:
                attributes["score"] = float(label.scores[i])
            for key, value in attributes.items():
                out.setdefault(name, {}).setdefault(key, []).append(value)
    return out


def _free_attributes(label: ObjectLabels, index: int) -> dict[str, Any]:
    """An object's attributes except those CVAT stores as XML attributes."""
    if label.attributes is None:
        return {}
    return {k: v for k, v in label.attributes[index].items() if k not in ("occluded", "z_order")}


def _labels_element(schema: LabelSchema, annotations: list[Annotation]) -> ET.Element:
    labels = ET.Element("labels")
    attributes = _collect_attributes(annotations)
    objects = [a.label for a in annotations if isinstance(a.label, ObjectLabels)]
    has_masks = any(label.masks is not None and any(m is not None for m in label.masks) for label in objects)
    has_polygons = any(label.polygons is not None and any(label.polygons) for label in objects)
    segmentation = {(True, True): "any", (True, False): "mask"}.get((has_masks, has_polygons), "polygon")
    shape_type = {
        TaskType.CLASSIFICATION: "tag",
        TaskType.DETECTION: "rectangle",
        TaskType.SEGMENTATION: segmentation,
        TaskType.KEYPOINTS: "skeleton",
    }[schema.task]
    for name in schema.classes:
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = shape_type
        declared = ET.SubElement(label, "attributes")
        for attr_name, values in attributes.get(name, {}).items():
            _declare_attribute(declared, attr_name, values)
        if schema.task is TaskType.KEYPOINTS:
            ET.SubElement(label, "svg").text = _svg(schema)
    if schema.task is TaskType.KEYPOINTS:
        for parent in schema.classes:
            for keypoint in schema.keypoints:
                sub = ET.SubElement(labels, "label")
                ET.SubElement(sub, "name").text = keypoint
                ET.SubElement(sub, "type").text = "points"
                ET.SubElement(sub, "attributes")
                ET.SubElement(sub, "parent").text = parent
    return labels


def _declare_attribute(parent: ET.Element, name: str, values: list[Any]) -> None:
    input_type = _attribute_type(values)
    attribute = ET.SubElement(parent, "attribute")
    ET.SubElement(attribute, "name").text = _xml_text(name)
    ET.SubElement(attribute, "mutable").text = "False"
    ET.SubElement(attribute, "input_type").text = input_type
    if input_type == "checkbox":
        ET.SubElement(attribute, "default_value").text = "false"
        ET.SubElement(attribute, "values").text = "false"
    elif input_type == "number":
        low, high = min(values), max(values)
        step = "1" if all(isinstance(v, int) for v in values) else "0.001"
        ET.SubElement(attribute, "default_value").text = _attribute_text(low)
        ET.SubElement(attribute, "values").text = f"{_attribute_text(low)};{_attribute_text(high)};{step}"
    else:
        ET.SubElement(attribute, "default_value").text = ""
        ET.SubElement(attribute, "values").text = ""


def _svg(schema: LabelSchema) -> str:
    """The skeleton drawing CVAT keeps in a label: nodes on a circle, edges as lines."""
    parts: list[str] = []
    count = len(schema.keypoints)
    xy = [
        (50 + 40 * math.cos(2 * math.pi * i / count), 50 + 40 * math.sin(2 * math.pi * i / count))
        for i in range(count)
    ]
    for a, b in schema.skeleton_indices:
        parts.append(
            f'<line x1="{xy[a][0]:.2f}" y1="{xy[a][1]:.2f}" x2="{xy[b][0]:.2f}" y2="{xy[b][1]:.2f}" '
            f'data-type="edge" data-node-from="{a + 1}" data-node-to="{b + 1}" stroke="black"></line>'
        )
    for i, name in enumerate(schema.keypoints):
        parts.append(
            f'<circle r="1.5" cx="{xy[i][0]:.2f}" cy="{xy[i][1]:.2f}" data-type="element node" '
            f'data-element-id="{i + 1}" data-node-id="{i + 1}" '
            f'data-label-name="{html.escape(name)}"></circle>'
        )
    return "".join(parts)


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _fmt(value)
    return _xml_text(str(value))


def _shapes(label: Any, source: str, schema: LabelSchema, groups: _GroupIds) -> list[ET.Element]:
    if isinstance(label, ClassLabel):
        tag = ET.Element("tag", {"label": label.class_name, "source": source})
        if source == "auto" and label.score is not None:
            _attribute(tag, "score", label.score)
        return [tag]
    assert isinstance(label, ObjectLabels)  # noqa: S101 - Label is ClassLabel | ObjectLabels
    out: list[ET.Element] = []
    for i in range(len(label)):
        out.extend(_object_elements(label, i, source, schema, groups))
    return out


def _object_elements(
    label: ObjectLabels, i: int, source: str, schema: LabelSchema, groups: _GroupIds
) -> list[ET.Element]:
    """One object as CVAT elements: a skeleton, polygons (and/or a mask), or a box.

    An object of a keypoints project with no labeled keypoint is written as its box: an empty
    skeleton would carry nothing.
    """
    base = {"label": label.class_names[i], "source": source}
    attributes = dict(label.attributes[i]) if label.attributes is not None else {}
    if attributes.pop("occluded", False):
        base["occluded"] = "1"
    else:
        base["occluded"] = "0"
    base["z_order"] = str(int(attributes.pop("z_order", 0)))
    if source == "auto" and label.scores is not None:
        attributes["score"] = float(label.scores[i])
    rings = label.polygons[i] if label.polygons is not None else ()
    mask = label.masks[i] if label.masks is not None else None
    elements: list[ET.Element] = []
    if (
        label.keypoints is not None
        and schema.task is TaskType.KEYPOINTS
        and np.any(label.keypoints[i, :, 2] > 0)
    ):
        elements.append(_skeleton(base, label.keypoints[i], schema))
    elif rings or mask is not None:
        for ring in rings:
            points = ";".join(f"{_fmt(x)},{_fmt(y)}" for x, y in ring)
            elements.append(ET.Element("polygon", {**base, "points": points}))
        if mask is not None and (crop := _mask_attributes(mask)) is not None:
            elements.append(ET.Element("mask", {**base, **crop}))
        if len(elements) > 1:
            group = groups.next()
            for element in elements:
                element.set("group_id", group)
    if not elements:
        x0, y0, x1, y1 = (_fmt(v) for v in label.boxes[i])
        elements.append(ET.Element("box", {**base, "xtl": x0, "ytl": y0, "xbr": x1, "ybr": y1}))
    for element in elements:
        for key, value in attributes.items():
            _attribute(element, key, value)
    return elements


def _attribute(element: ET.Element, name: str, value: Any) -> None:
    ET.SubElement(element, "attribute", {"name": _xml_text(name)}).text = _attribute_text(value)


def _skeleton(base: dict[str, str], keypoints: npt.NDArray[np.float64], schema: LabelSchema) -> ET.Element:
    skeleton = ET.Element("skeleton", {k: v for k, v in base.items() if k != "occluded"})
    for name, (x, y, visibility) in zip(schema.keypoints, keypoints, strict=True):
        ET.SubElement(
            skeleton,
            "points",
            {
                "label": name,
                "source": base["source"],
                "outside": "1" if visibility == 0 else "0",
                "occluded": "1" if visibility == 1 else "0",
                "points": f"{_fmt(x)},{_fmt(y)}",
            },
        )
    return skeleton


def _mask_attributes(mask: dict[str, Any]) -> dict[str, str] | None:
    """The tight crop of a core RLE as CVAT ``rle``/``left``/``top``/``width``/``height``; None if empty."""
    full = rle_decode(mask)
    ys, xs = np.nonzero(full)
    if not len(xs):
        return None
    left, top, right, bottom = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    flat = full[top:bottom, left:right].reshape(-1).astype(np.int8)
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    return {
        "rle": ", ".join(str(int(r)) for r in runs),
        "left": str(left),
        "top": str(top),
        "width": str(right - left),
        "height": str(bottom - top),
    }
