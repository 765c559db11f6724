"""Pascal VOC XML (detection): one ``Annotations/<name stem>.xml`` per image.

VOC pixel coordinates are 1-based and inclusive: the top-left pixel is (1, 1), and a box
``xmin..xmax`` covers the pixels ``xmin`` to ``xmax``. The core's ``xyxy`` boxes are 0-based
continuous edges, so ``x0 = xmin - 1``, ``y0 = ymin - 1``, ``x1 = xmax``, ``y1 = ymax`` (and
back: ``xmin = x0 + 1``, ``xmax = x1``). Values are written with 17 significant digits (integers
without a decimal point), so a round trip is exact up to float rounding of the ``+ 1``.

``truncated``, ``difficult`` and ``occluded`` become object attributes (kept when 1, as
COCO's ``iscrowd``), ``pose`` when it is not ``Unspecified``; other attributes use the
``<attributes><attribute><name/><value/>`` extension CVAT writes. An object with a ``<score>``
is a model prediction. Annotation files mirror the image's subfolders and record its relative
path in ``<filename>`` and ``<path>``, so same basenames in different folders never collide.

Records: every ``<object>``, plus one per file refused as a whole (not parseable, unsafe XML,
no usable filename or size).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET  # only builds documents we write; parsing goes through defusedxml
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from visionloop.core.errors import ConfigError, UnsafePathError
from visionloop.core.labels import ObjectLabels
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.common import (
    ObjectRow,
    human_provenance,
    labels_to_save,
    model_provenance,
    objects_label,
)
from visionloop.formats.images import size_for_save, walk_files
from visionloop.formats.model import Annotation, ImportResult, LabeledImage, LabelSet, Rejection
from visionloop.formats.registry import LoadOptions, SaveOptions
from visionloop.formats.safeio import FormatFileError, parse_xml
from visionloop.formats.validate import box_problem, class_problem
from visionloop.storage import atomic_write_local, safe_relative_path

_FLAGS = ("truncated", "difficult", "occluded")
_UNSPECIFIED_POSE = "Unspecified"
_BOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")


class _Reject(Exception):
    """Internal: a record is invalid; ``locator`` names the element."""

    def __init__(self, locator: str, reason: str) -> None:
        super().__init__(reason)
        self.locator = locator


# -- loading --------------------------------------------------------------------------------
def load(path: Path, options: LoadOptions) -> ImportResult:
    """Load one ``.xml`` file, or every ``.xml`` under ``path/Annotations`` (else ``path``)."""
    if path.is_dir():
        base = path / "Annotations" if (path / "Annotations").is_dir() else path
        files = [file for file in walk_files(base) if file.suffix.lower() == ".xml"]
    elif path.is_file():
        base, files = path.parent, [path]
    else:
        return ImportResult(LabelSet(options.schema), 1, [Rejection(str(path), "/", f"{path}: not found")])
    loader = _Loader(options)
    for file in files:
        loader.read_file(base, file)
    return loader.result()


class _Loader:
    def __init__(self, options: LoadOptions) -> None:
        self.options = options
        self.records = 0
        self.rejections: list[Rejection] = []
        self.images: dict[str, LabeledImage] = {}
        self.classes: list[str] = []

    def reject(self, file: Path, locator: str, reason: str) -> None:
        self.rejections.append(Rejection(str(file), locator, reason))

    def result(self) -> ImportResult:
        schema = self.options.schema
        if schema is None and self.classes:
            schema = LabelSchema(task=TaskType.DETECTION, classes=self.classes)
        return ImportResult(LabelSet(schema, list(self.images.values())), self.records, self.rejections)

    def read_file(self, base: Path, file: Path) -> None:
        """One file: a whole-file problem is one rejected record, else one record per object."""
        try:
            if file.is_symlink():
                raise _Reject("/", "symbolic links are not followed")
            root = parse_xml(file)
            image = self._image(base, file, root)
        except FormatFileError as exc:
            self.records += 1
            self.reject(file, "/", str(exc))
            return
        except _Reject as exc:
            self.records += 1
            self.reject(file, exc.locator, str(exc))
            return
        rows: dict[bool, list[ObjectRow]] = defaultdict(list)
        for index, element in enumerate(root.findall("object"), start=1):
            self.records += 1
            try:
                row = self._object(element, f"annotation/object[{index}]", image)
            except _Reject as exc:
                self.reject(file, exc.locator, str(exc))
                continue
            rows[row.score is not None].append(row)
        if rows[False] or not root.findall("object"):
            provenance = human_provenance(file, self.options.provenance)
            image.annotations.append(Annotation(objects_label(rows[False]), provenance))
        if rows[True]:
            mean = float(np.mean([row.score or 0.0 for row in rows[True]]))
            provenance = model_provenance(None, mean, self.options.provenance)
            image.annotations.append(Annotation(objects_label(rows[True]), provenance))
        self.images[image.name] = image

    def _image(self, base: Path, file: Path, root: Any) -> LabeledImage:
        if root.tag != "annotation":
            raise _Reject(root.tag[:40], f"root element must be <annotation>, got <{root.tag[:40]}>")
        name = _image_name(base, file, root)
        if name in self.images:
            raise _Reject("annotation/filename", f"duplicate image {name!r} (also annotated in another file)")
        width, height = _size(root)
        return LabeledImage(name, width, height)

    def _object(self, element: Any, locator: str, image: LabeledImage) -> ObjectRow:
        class_name = _text(element, "name")
        if not class_name:
            raise _Reject(f"{locator}/name", "object needs a non-empty <name>")
        problem = class_problem(class_name, self.options.schema)
        if problem:
            raise _Reject(f"{locator}/name", problem)
        box = _box(element, f"{locator}/bndbox", image)
        row = ObjectRow(box=box, class_name=class_name, attributes=_attributes(element, locator))
        score = element.find("score")
        if score is not None:
            value = _float(score.text, f"{locator}/score")
            if not 0.0 <= value <= 1.0:
                raise _Reject(f"{locator}/score", f"score must be within [0, 1], got {value:g}")
            row.score = value
        if self.options.schema is None and class_name not in self.classes:
            self.classes.append(class_name)
        return row


def _text(element: Any, tag: str) -> str:
    found = element.find(tag)
    return (found.text or "").strip() if found is not None else ""


def _image_name(base: Path, file: Path, root: Any) -> str:
    """``<filename>`` (relative, may hold subfolders); a bare basename gets the annotation file's
    subfolder, so ``Annotations/a/x.xml`` and ``Annotations/b/x.xml`` stay apart. An absolute
    ``<path>`` (LabelImg writes one) is not trusted."""
    filename = _text(root, "filename") or _text(root, "path")
    if not filename:
        raise _Reject("annotation/filename", "annotation needs a <filename> naming its image")
    if "/" not in filename:
        folder = file.parent.relative_to(base).as_posix()
        filename = filename if folder in ("", ".") else f"{folder}/{filename}"
    try:
        return safe_relative_path(filename)
    except UnsafePathError as exc:
        raise _Reject("annotation/filename", str(exc)) from None


def _size(root: Any) -> tuple[int | None, int | None]:
    size = root.find("size")
    if size is None:
        return None, None
    out = []
    for tag in ("width", "height"):
        text = _text(size, tag)
        if not text.isdigit() or not 0 < int(text) <= 1_000_000:
            raise _Reject(
                f"annotation/size/{tag}", f"image {tag} must be a positive integer, got {text[:40]!r}"
            )
        out.append(int(text))
    return out[0], out[1]


def _float(text: str | None, locator: str) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise _Reject(locator, f"not a number: {(text or '')[:40]!r}") from None
    if not math.isfinite(value):
        raise _Reject(locator, f"not a finite number: {(text or '')[:40]!r}")
    return value


def _box(element: Any, locator: str, image: LabeledImage) -> list[float]:
    bndbox = element.find("bndbox")
    if bndbox is None:
        raise _Reject(locator, "object needs a <bndbox>")
    values = []
    for tag in _BOX_FIELDS:
        if bndbox.find(tag) is None:
            raise _Reject(f"{locator}/{tag}", f"bndbox needs <{tag}>")
        values.append(_float(bndbox.find(tag).text, f"{locator}/{tag}"))
    xmin, ymin, xmax, ymax = values
    box = [xmin - 1.0, ymin - 1.0, xmax, ymax]
    problem = box_problem(box, image.width, image.height)
    if problem:
        raise _Reject(locator, problem)
    return box


def _attributes(element: Any, locator: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for flag in _FLAGS:
        text = _text(element, flag)
        if text not in ("", "0", "1"):
            raise _Reject(f"{locator}/{flag}", f"{flag} must be 0 or 1, got {text[:40]!r}")
        if text == "1":
            attributes[flag] = 1
    pose = _text(element, "pose")
    if pose and pose != _UNSPECIFIED_POSE:
        attributes["pose"] = pose
    extra = element.find("attributes")
    for index, item in enumerate(extra.findall("attribute") if extra is not None else [], start=1):
        name = _text(item, "name")
        if not name:
            raise _Reject(f"{locator}/attributes/attribute[{index}]", "attribute needs a <name>")
        attributes[name] = _text(item, "value")
    return attributes


# -- saving ---------------------------------------------------------------------------------
def save(labels: LabelSet, out: Path, options: SaveOptions) -> list[Path]:
    """Write ``<out>/Annotations/<name stem>.xml`` per image (predictions: with ``<score>``)."""
    plan: dict[str, LabeledImage] = {}
    for image in sorted(labels.images, key=lambda item: item.name):
        name = safe_relative_path(image.name)
        target = "Annotations/" + PurePosixPath(name).with_suffix(".xml").as_posix()
        if target in plan:
            raise ConfigError(
                f"VOC cannot hold both {plan[target].name!r} and {name!r}: both need the file {target}"
            )
        plan[target] = image
    documents = {target: _document(image, options) for target, image in plan.items()}
    written = []
    for target, document in documents.items():
        atomic_write_local(str(out / target), document)
        written.append(out / target)
    return written


def _document(image: LabeledImage, options: SaveOptions) -> bytes:
    name = safe_relative_path(image.name)
    root = ET.Element("annotation")
    folder = PurePosixPath(name).parent.as_posix()
    _child(root, "folder", "" if folder == "." else folder)
    _child(root, "filename", name)
    _child(root, "path", name)
    source = ET.SubElement(root, "source")
    _child(source, "database", "visionloop")
    width, height = _save_size(image, name, options)
    if width is not None and height is not None:
        size = ET.SubElement(root, "size")
        _child(size, "width", str(width))
        _child(size, "height", str(height))
        _child(size, "depth", "3")
    _child(root, "segmented", "0")
    for annotation in labels_to_save(image, options.predictions):
        if isinstance(annotation.label, ObjectLabels):
            for i in range(len(annotation.label)):
                _object_element(root, annotation, i, options.predictions)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _save_size(image: LabeledImage, name: str, options: SaveOptions) -> tuple[int | None, int | None]:
    return size_for_save(image, name, options, "VOC") or (None, None)


def _object_element(root: ET.Element, annotation: Annotation, i: int, predictions: bool) -> None:
    label = annotation.label
    assert isinstance(label, ObjectLabels)  # noqa: S101 - the caller checked it
    attributes = dict(label.attributes[i]) if label.attributes is not None else {}
    element = ET.SubElement(root, "object")
    _child(element, "name", label.class_names[i])
    _child(element, "pose", str(attributes.pop("pose", _UNSPECIFIED_POSE)))
    for flag in _FLAGS:
        _child(element, flag, "1" if attributes.pop(flag, 0) else "0")
    x0, y0, x1, y1 = (float(v) for v in label.boxes[i])
    bndbox = ET.SubElement(element, "bndbox")
    for tag, value in zip(_BOX_FIELDS, (x0 + 1.0, y0 + 1.0, x1, y1), strict=True):
        _child(bndbox, tag, format(value, ".17g"))
    if predictions:
        score = float(label.scores[i]) if label.scores is not None else annotation.provenance.score
        _child(element, "score", format(score if score is not None else 1.0, ".17g"))
    if attributes:
        extra = ET.SubElement(element, "attributes")
        for key, value in attributes.items():
            item = ET.SubElement(extra, "attribute")
            _child(item, "name", str(key))
            _child(item, "value", str(value))


def _child(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element
