"""Ultralytics YOLO datasets: ``data.yaml``, ``images/...`` and mirrored ``labels/....txt``.

Coordinates in label files are *normalized* to 0..1 by the image's width and height (after
EXIF transpose, which is why image sizes are read from the image headers; orientations 5-8
swap them); the core uses absolute pixels, ``xyxy``. Lines, one object each:

- detect: ``cls cx cy w h`` (box centre and size);
- segment: ``cls x1 y1 x2 y2 ...`` (one polygon; the object's box is its extent);
- pose: ``cls cx cy w h px1 py1 [v1] ...`` with ``kpt_shape: [K, 2|3]`` values per keypoint
  (with 2 values a point at 0,0 is unlabeled, every other point visible);
- a trailing confidence (Ultralytics ``save_conf``) makes the object a model prediction.

Classification datasets are ``<split>/<class>/<image>`` folders without txt files; their
image names are relative to the dataset root (``train/cat/1.jpg``).

A label file for ``<root>/.../images/<rel>.<ext>`` is ``<root>/.../labels/<rel>.txt`` (the last
``images`` path segment replaced, as Ultralytics does); image names in the label set are
relative to ``<root>/images`` (or to the root for images outside it), so subfolders keep
same-named files apart. Records: every non-blank label line, plus one per label file or split
entry refused as a whole (unreadable, or its image missing or unreadable), plus one per image
of a classification dataset.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import ValidationError as PydanticValidationError

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
from visionloop.formats.imagefolder import ClassScan, class_folder_plan, class_target, scan_class_folders
from visionloop.formats.images import copy_file, is_image_name, size_for_save, source_image, walk_files
from visionloop.formats.masks import polygon_area
from visionloop.formats.model import Annotation, ImportResult, LabeledImage, LabelSet, Rejection
from visionloop.formats.registry import LoadOptions, SaveOptions
from visionloop.formats.safeio import FormatFileError, read_text, read_yaml
from visionloop.formats.validate import box_problem, class_problem, keypoints_problem, polygon_problem
from visionloop.imaging import ImageRejected, read_image_size
from visionloop.storage import atomic_write_local, safe_relative_path

DATA_YAML = "data.yaml"
_SPLITS = ("train", "val", "test")
_DETECT_VALUES = 5


class _Reject(Exception):
    """Internal: a record is invalid for the reason given."""


@dataclass
class _Layout:
    """What data.yaml says: where the dataset lives, its classes and keypoint shape."""

    yaml_path: Path
    root: Path
    names: list[str] | None
    kpt_shape: tuple[int, int] | None
    splits: dict[str, list[str]]


@dataclass
class _ImageEntry:
    path: Path
    name: str
    label: Path | None  # its label file, when one exists


@dataclass
class _Result:
    records: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, file: Path, locator: str, reason: str) -> None:
        self.rejections.append(Rejection(str(file), locator, reason))


# -- loading --------------------------------------------------------------------------------
def load(path: Path, options: LoadOptions) -> ImportResult:
    """Load a dataset from its ``data.yaml`` or the folder holding it (a folder of
    ``train/<class>/`` folders without data.yaml is read as a classification dataset)."""
    yaml_path = path / DATA_YAML if path.is_dir() else path
    if path.is_dir() and not yaml_path.is_file():
        if (path / "train").is_dir():
            layout = _Layout(yaml_path, path, None, None, {"train": ["train"]})
            for split in ("val", "test"):
                if (path / split).is_dir():
                    layout.splits[split] = [split]
            return _load_classification(layout, options, _Result())
        return _whole_file(path, options, f"{path}: no {DATA_YAML} in this folder")
    try:
        layout = _layout(yaml_path)
    except (FormatFileError, _Reject) as exc:
        return _whole_file(yaml_path, options, str(exc))
    task = _task_option(options)
    if task is TaskType.CLASSIFICATION or (task is None and _looks_like_classification(layout)):
        return _load_classification(layout, options, _Result())
    return _load_objects(layout, options, task)


def _whole_file(path: Path, options: LoadOptions, reason: str) -> ImportResult:
    return ImportResult(LabelSet(options.schema), 1, [Rejection(str(path), "file", reason)])


def _task_option(options: LoadOptions) -> TaskType | None:
    if options.task is not None:
        return options.task
    return options.schema.task if options.schema is not None else None


def _layout(yaml_path: Path) -> _Layout:
    data = read_yaml(yaml_path)
    if not isinstance(data, dict):
        raise _Reject(f"{yaml_path}: expected a YAML mapping with names and splits")
    root = _root(yaml_path, data.get("path"))
    splits: dict[str, list[str]] = {}
    for split in _SPLITS:
        value = data.get(split)
        entries = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        if value is not None and not all(isinstance(entry, str) for entry in entries):
            raise _Reject(f"{yaml_path}: '{split}' must be a path or a list of paths")
        if entries:
            splits[split] = [entry for entry in entries if entry]
    if not splits:  # no split keys: the conventional folders, when present
        splits = {split: [split] for split in _SPLITS if (root / split).is_dir()}
        if not splits and (root / "images").is_dir():
            splits = {"train": ["images"]}
    return _Layout(yaml_path, root, _names(yaml_path, data), _kpt_shape(yaml_path, data), splits)


def _root(yaml_path: Path, value: Any) -> Path:
    """The dataset root: data.yaml's folder, or a safe relative ``path`` under it. An absolute
    ``path`` (Ultralytics writes one) is ignored: a file must not point the loader elsewhere."""
    if isinstance(value, str) and value:
        try:
            candidate = yaml_path.parent / safe_relative_path(value)
        except UnsafePathError:
            return yaml_path.parent
        if candidate.is_dir():
            return candidate
    return yaml_path.parent


def _names(yaml_path: Path, data: dict[str, Any]) -> list[str] | None:
    names = data.get("names")
    if names is None:
        count = data.get("nc")
        if isinstance(count, int) and not isinstance(count, bool) and 0 < count <= 100_000:
            return [f"class_{i}" for i in range(count)]
        return None
    if isinstance(names, dict):
        try:
            indexed = {int(key): value for key, value in names.items() if not isinstance(key, bool)}
        except (TypeError, ValueError):
            raise _Reject(f"{yaml_path}: names keys must be class indices 0, 1, ...") from None
        if sorted(indexed) != list(range(len(names))):
            raise _Reject(f"{yaml_path}: names must be numbered 0..{len(names) - 1} without gaps")
        names = [indexed[i] for i in range(len(indexed))]
    if not isinstance(names, list) or not names or not all(isinstance(n, str | int) for n in names):
        raise _Reject(f"{yaml_path}: names must be a list or a {{index: name}} mapping of class names")
    cleaned = [str(name) for name in names]
    try:
        LabelSchema(task=TaskType.DETECTION, classes=cleaned)
    except PydanticValidationError as exc:
        raise _Reject(f"{yaml_path}: invalid names: {exc.errors()[0]['msg']}") from None
    return cleaned


def _kpt_shape(yaml_path: Path, data: dict[str, Any]) -> tuple[int, int] | None:
    shape = data.get("kpt_shape")
    if shape is None:
        return None
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
        or not 1 <= shape[0] <= 1000
        or shape[1] not in (2, 3)
    ):
        raise _Reject(f"{yaml_path}: kpt_shape must be [K, 2] or [K, 3] with 1 <= K <= 1000, got {shape!r}")
    return shape[0], shape[1]


def _looks_like_classification(layout: _Layout) -> bool:
    """Split folders of class folders, no keypoints and no labels folder: a classify dataset."""
    if layout.kpt_shape is not None or (layout.root / "labels").exists():
        return False
    folders = [_safe_join(layout.root, entry) for entries in layout.splits.values() for entry in entries]
    return any(
        folder is not None
        and folder.is_dir()
        and "images" not in folder.relative_to(layout.root).parts
        and any(child.is_dir() for child in folder.iterdir())
        for folder in folders
    )


def _safe_join(root: Path, entry: str) -> Path | None:
    try:
        return root / safe_relative_path(entry.removeprefix("./"))
    except UnsafePathError:
        return None


def _load_classification(layout: _Layout, options: LoadOptions, result: _Result) -> ImportResult:
    allowed = list(options.schema.classes) if options.schema is not None else layout.names
    provenance = human_provenance(layout.yaml_path, options.provenance)
    scan = ClassScan()
    for split, entries in layout.splits.items():
        for entry in entries:
            folder = _split_path(layout, split, entry, result)
            if folder is not None and not folder.is_dir():
                result.records += 1
                result.reject(layout.yaml_path, split, f"split folder {entry!r} does not exist")
            elif folder is not None:
                scan_class_folders(layout.root, folder, allowed, provenance, scan)
    schema = options.schema
    if schema is None:
        classes = layout.names or sorted(scan.classes)
        schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=classes) if classes else None
    records = result.records + scan.records
    return ImportResult(LabelSet(schema, _unique(scan.images)), records, result.rejections + scan.rejections)


def _unique(images: list[LabeledImage]) -> list[LabeledImage]:
    """One entry per name (a split listed twice in data.yaml must not double an image)."""
    return list({image.name: image for image in images}.values())


def _split_path(layout: _Layout, split: str, entry: str, result: _Result) -> Path | None:
    """The split's folder or list under the root. Roboflow writes ``../train/images`` for a
    ``train/images`` beside data.yaml: leading ``../`` is dropped when that names a folder
    inside the root; any other escape is refused."""
    stripped = entry.removeprefix("./")
    while stripped.startswith("../") and _safe_join(layout.root, stripped[3:]) is not None:
        stripped = stripped[3:]
    if stripped != entry.removeprefix("./") and not (layout.root / stripped).exists():
        stripped = entry
    try:
        return layout.root / safe_relative_path(stripped.removeprefix("./"))
    except UnsafePathError as exc:
        result.records += 1
        result.reject(layout.yaml_path, split, str(exc))
        return None


def _load_objects(layout: _Layout, options: LoadOptions, task: TaskType | None) -> ImportResult:
    result = _Result()
    entries = _image_entries(layout, result)
    texts: dict[Path, list[str]] = {}
    for entry in entries:
        if entry.label is not None:
            try:
                texts[entry.path] = read_text(entry.label).splitlines()
            except FormatFileError as exc:
                result.records += 1
                result.reject(entry.label, "file", str(exc))
    task = task or _task_from_lines(layout, texts)
    try:
        schema = _object_schema(layout, options, task)
    except _Reject as exc:
        result.records += 1
        result.reject(layout.yaml_path, "names", str(exc))
        return ImportResult(LabelSet(options.schema), result.records, result.rejections)
    images = [_read_image(entry, texts, layout, schema, options, result) for entry in entries]
    return ImportResult(LabelSet(schema, images), result.records, result.rejections)


def _task_from_lines(layout: _Layout, texts: dict[Path, list[str]]) -> TaskType:
    if layout.kpt_shape is not None:
        return TaskType.KEYPOINTS
    longest = max((len(line.split()) for lines in texts.values() for line in lines), default=0)
    return TaskType.SEGMENTATION if longest > _DETECT_VALUES + 1 else TaskType.DETECTION


def _object_schema(layout: _Layout, options: LoadOptions, task: TaskType) -> LabelSchema:
    keypoint_count = layout.kpt_shape[0] if layout.kpt_shape else 0
    if task is TaskType.KEYPOINTS and layout.kpt_shape is None:
        raise _Reject(f"{layout.yaml_path}: a pose dataset needs kpt_shape: [K, 2|3]")
    if options.schema is not None:
        if task is TaskType.KEYPOINTS and len(options.schema.keypoints) != keypoint_count:
            raise _Reject(
                f"kpt_shape has {keypoint_count} keypoints but the project schema has "
                f"{len(options.schema.keypoints)}"
            )
        return options.schema
    if layout.names is None:
        raise _Reject(f"{layout.yaml_path}: data.yaml needs names (or nc)")
    if task is TaskType.KEYPOINTS:
        keypoints = [f"kp{i}" for i in range(keypoint_count)]
        return LabelSchema(task=task, classes=layout.names, keypoints=keypoints)
    return LabelSchema(task=task, classes=layout.names)


def _image_entries(layout: _Layout, result: _Result) -> list[_ImageEntry]:
    """Every image the splits name (folders walked, .txt lists read), each once, and a
    rejection for every label file in the label folders that no image claims."""
    found: dict[Path, _ImageEntry] = {}
    label_folders: set[Path] = set()
    for split, entries in layout.splits.items():
        for entry in entries:
            source = _split_path(layout, split, entry, result)
            if source is None:
                continue
            if source.is_dir():
                label_folders.add(_label_path(layout.root, source, folder=True))
                images = [p for p in walk_files(source) if is_image_name(p)]
            elif source.suffix == ".txt" and source.is_file():
                images = _listed_images(layout, source, result)
            else:
                result.records += 1
                result.reject(layout.yaml_path, split, f"split {entry!r} does not exist")
                continue
            for image in images:
                if image not in found:
                    found[image] = _entry(layout.root, image)
    found = _unique_names(found, result)
    claimed = {entry.label for entry in found.values()}
    for folder in sorted(label_folders):
        if not folder.is_dir():
            continue
        for label in walk_files(folder):
            if label.suffix == ".txt" and label not in claimed:
                result.records += 1
                reason = (
                    "symbolic links to label files are not followed"
                    if label.is_symlink()
                    else "references missing image (no image file for this label)"
                )
                result.reject(label, "file", reason)
    return list(found.values())


def _unique_names(found: dict[Path, _ImageEntry], result: _Result) -> dict[Path, _ImageEntry]:
    """Two files with one name (``images/x.jpg`` and ``x.jpg``): the second is refused."""
    names: set[str] = set()
    kept = {}
    for path, entry in found.items():
        if entry.name in names:
            result.records += 1
            result.reject(path, "file", f"duplicate image name {entry.name!r}")
            continue
        names.add(entry.name)
        kept[path] = entry
    return kept


def _listed_images(layout: _Layout, listing: Path, result: _Result) -> list[Path]:
    """Images listed one per line; ``./x`` is relative to the list's folder, others to the root."""
    try:
        lines = read_text(listing).splitlines()
    except FormatFileError as exc:
        result.records += 1
        result.reject(listing, "file", str(exc))
        return []
    images = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        base = listing.parent if text.startswith("./") else layout.root
        try:
            image = base / safe_relative_path(text.removeprefix("./"))
        except UnsafePathError as exc:
            result.records += 1
            result.reject(listing, f"line {number}", str(exc))
            continue
        if not image.is_file():
            result.records += 1
            result.reject(listing, f"line {number}", f"references missing image {text!r}")
            continue
        images.append(image)
    return images


def _label_path(root: Path, image: Path, folder: bool = False) -> Path:
    """Ultralytics' rule: the last ``images`` segment becomes ``labels``, the suffix ``.txt``."""
    parts = list(image.relative_to(root).parts)
    last = len(parts) if folder else len(parts) - 1
    for index in range(last - 1, -1, -1):
        if parts[index] == "images":
            parts[index] = "labels"
            break
    path = root.joinpath(*parts)
    return path if folder else path.with_suffix(".txt")


def _entry(root: Path, image: Path) -> _ImageEntry:
    relative = image.relative_to(root).as_posix()
    name = relative.removeprefix("images/") if relative.startswith("images/") else relative
    label = _label_path(root, image)
    return _ImageEntry(image, name, label if label.is_file() and not label.is_symlink() else None)


def _read_image(
    entry: _ImageEntry,
    texts: dict[Path, list[str]],
    layout: _Layout,
    schema: LabelSchema,
    options: LoadOptions,
    result: _Result,
) -> LabeledImage:
    try:
        width, height = read_image_size(entry.path)
        name = safe_relative_path(entry.name)
    except (ImageRejected, UnsafePathError) as exc:
        if entry.path in texts:
            result.records += 1
            result.reject(entry.label or entry.path, "file", f"image {entry.path.name}: {exc}")
        return LabeledImage(entry.name)
    image = LabeledImage(name, width, height)
    lines = texts.get(entry.path)
    if lines is None or entry.label is None:
        return image
    rows: dict[bool, list[ObjectRow]] = defaultdict(list)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        result.records += 1
        try:
            row = _parse_line(line.split(), layout, schema, width, height)
        except _Reject as exc:
            result.reject(entry.label, f"line {number}", str(exc))
            continue
        rows[row.score is not None].append(row)
    keypoints = len(schema.keypoints)
    if rows[False] or not any(line.strip() for line in lines):  # an empty file: no objects
        provenance = human_provenance(layout.yaml_path, options.provenance)
        image.annotations.append(Annotation(objects_label(rows[False], keypoints), provenance))
    if rows[True]:
        mean = float(np.mean([row.score or 0.0 for row in rows[True]]))
        provenance = model_provenance(None, mean, options.provenance)
        image.annotations.append(Annotation(objects_label(rows[True], keypoints), provenance))
    return image


def _numbers(tokens: list[str]) -> list[float]:
    values = []
    for token in tokens:
        try:
            value = float(token)
        except ValueError:
            raise _Reject(f"non-numeric value {token[:40]!r}") from None
        if not math.isfinite(value):
            raise _Reject(f"non-finite value {token[:40]!r}")
        values.append(value)
    return values


def _class_name(value: float, names: list[str] | None, schema: LabelSchema) -> str:
    classes = names if names is not None else schema.classes
    if value != int(value):
        raise _Reject(f"class index must be an integer, got {value:g}")
    if not 0 <= value < len(classes):
        raise _Reject(f"class index {int(value)} out of range 0..{len(classes) - 1}")
    name = classes[int(value)]
    problem = class_problem(name, schema)
    if problem:
        raise _Reject(problem)
    return name


def _parse_line(
    tokens: list[str], layout: _Layout, schema: LabelSchema, width: int, height: int
) -> ObjectRow:
    values = _numbers(tokens)
    if schema.task is TaskType.SEGMENTATION:
        row = _polygon_row(values, width, height)
    elif schema.task is TaskType.KEYPOINTS and layout.kpt_shape is not None:
        row = _pose_row(values, layout.kpt_shape, width, height)
    else:
        if len(values) not in (_DETECT_VALUES, _DETECT_VALUES + 1):
            raise _Reject(
                f"wrong number of values: expected 5 (class cx cy w h) or 6 (with confidence), "
                f"got {len(values)}"
            )
        row = ObjectRow(box=_box(values[1:5], width, height), class_name="")
        row.score = _score(values[5]) if len(values) == _DETECT_VALUES + 1 else None
    row.class_name = _class_name(values[0], layout.names, schema)
    return row


def _score(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise _Reject(f"confidence must be within [0, 1], got {value:g}")
    return value


def _box(values: list[float], width: int, height: int) -> list[float]:
    cx, cy, w, h = values
    box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
    problem = box_problem(box, width, height)
    if problem:
        raise _Reject(problem)
    return box


def _polygon_row(values: list[float], width: int, height: int) -> ObjectRow:
    if len(values) < 3:
        raise _Reject(f"wrong number of values: expected class and x y pairs, got {len(values)}")
    coordinates, score = values[1:], None
    if len(coordinates) % 2:  # an odd count ends with the confidence
        coordinates, score = coordinates[:-1], _score(coordinates[-1])
    ring = np.array(coordinates, dtype=np.float64).reshape(-1, 2) * [width, height]
    problem = polygon_problem(ring, width, height)
    if problem:
        raise _Reject(problem)
    box = [float(ring[:, 0].min()), float(ring[:, 1].min()), float(ring[:, 0].max()), float(ring[:, 1].max())]
    problem = box_problem(box, width, height)
    if problem:
        raise _Reject(f"polygon has no area: {problem}")
    return ObjectRow(box=box, class_name="", score=score, polygons=[ring])


def _pose_row(values: list[float], kpt_shape: tuple[int, int], width: int, height: int) -> ObjectRow:
    count, dims = kpt_shape
    expected = _DETECT_VALUES + count * dims
    if len(values) not in (expected, expected + 1):
        raise _Reject(
            f"wrong number of values: expected {expected} (class cx cy w h and {count} keypoints of "
            f"{dims} values) or {expected + 1} (with confidence), got {len(values)}"
        )
    row = ObjectRow(box=_box(values[1:5], width, height), class_name="")
    row.score = _score(values[expected]) if len(values) == expected + 1 else None
    raw = np.array(values[_DETECT_VALUES:expected], dtype=np.float64).reshape(count, dims)
    points = np.zeros((count, 3))
    points[:, :2] = raw[:, :2] * [width, height]
    if dims == 3:
        points[:, 2] = raw[:, 2]
    else:
        points[:, 2] = np.where((raw[:, 0] == 0) & (raw[:, 1] == 0), 0.0, 2.0)
    problem = keypoints_problem(points, width, height)
    if problem:
        raise _Reject(problem)
    points[points[:, 2] == 0, :2] = 0.0
    row.keypoints = points
    return row


# -- saving ---------------------------------------------------------------------------------
def save(labels: LabelSet, out: Path, options: SaveOptions) -> list[Path]:
    """Write ``data.yaml`` and ``labels/<name>.txt`` for every image (and copy the images into
    ``images/`` from ``options.image_source``); classification writes ``train/<class>/`` folders."""
    schema = labels.schema
    assert schema is not None  # noqa: S101 - FormatSpec.save checked it
    if schema.task is TaskType.CLASSIFICATION:
        return _save_classification(labels, schema, out, options)
    plan: dict[str, tuple[LabeledImage, str]] = {}
    for image in sorted(labels.images, key=lambda item: item.name):
        name = safe_relative_path(image.name)
        label = "labels/" + PurePosixPath(name).with_suffix(".txt").as_posix()
        if label in plan:
            raise ConfigError(
                f"YOLO cannot hold both {plan[label][1]!r} and {name!r}: both need the label file {label}"
            )
        plan[label] = (image, name)
    sources = {}
    if options.image_source is not None:
        sources = {name: source_image(options.image_source, name) for _image, name in plan.values()}
    texts = {label: _label_text(image, name, schema, options) for label, (image, name) in plan.items()}
    written = [_write_data_yaml(out, schema, {"train": "images", "val": "images"})]
    for label, text in texts.items():
        atomic_write_local(str(out / label), text.encode("utf-8"))
        written.append(out / label)
    for name, source in sources.items():
        copy_file(source, out / "images" / name)
        written.append(out / "images" / name)
    return written


def _write_data_yaml(out: Path, schema: LabelSchema, splits: dict[str, str]) -> Path:
    data: dict[str, Any] = {"path": str(out.resolve()), **splits}
    data["names"] = dict(enumerate(schema.classes))
    if schema.task is TaskType.KEYPOINTS:
        data["kpt_shape"] = [len(schema.keypoints), 3]
        data["flip_idx"] = flip_indices(schema.keypoints)
    path = out / DATA_YAML
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    atomic_write_local(str(path), text.encode("utf-8"))
    return path


def flip_indices(keypoints: list[str]) -> list[int]:
    """Ultralytics' ``flip_idx``: each keypoint's mirror partner (``left_x`` <-> ``right_x``)
    for horizontal-flip augmentation; a point without a partner maps to itself."""
    index = {name: i for i, name in enumerate(keypoints)}
    out = []
    for i, name in enumerate(keypoints):
        partner = None
        if name.startswith("left_"):
            partner = "right_" + name.removeprefix("left_")
        elif name.startswith("right_"):
            partner = "left_" + name.removeprefix("right_")
        out.append(index.get(partner, i) if partner else i)
    return out


def _image_size(image: LabeledImage, name: str, options: SaveOptions) -> tuple[int, int]:
    size = size_for_save(image, name, options, "YOLO")
    if size is None:
        raise FormatFileError(
            f"cannot write YOLO: image {name!r} has no width/height (pass image_source to read them)"
        )
    return size


def _label_text(image: LabeledImage, name: str, schema: LabelSchema, options: SaveOptions) -> str:
    chosen = [a for a in labels_to_save(image, options.predictions) if isinstance(a.label, ObjectLabels)]
    if not chosen:
        return ""
    width, height = _image_size(image, name, options)
    lines = []
    for annotation in chosen:
        label = annotation.label
        assert isinstance(label, ObjectLabels)  # noqa: S101 - filtered above
        for i in range(len(label)):
            values = [
                float(schema.class_index(label.class_names[i])),
                *_geometry(label, i, schema, width, height),
            ]
            if options.predictions:
                values.append(_object_score(annotation, i))
            lines.append(" ".join(_number(v) for v in values))
    return "".join(line + "\n" for line in lines)


def _object_score(annotation: Annotation, i: int) -> float:
    label = annotation.label
    if isinstance(label, ObjectLabels) and label.scores is not None:
        return float(label.scores[i])
    return annotation.provenance.score if annotation.provenance.score is not None else 1.0


def _number(value: float) -> str:
    """Full precision (17 significant digits) so normalizing and back is exact to ~1e-15;
    integral values (class indices, visibilities) come out without a decimal point."""
    return format(value, ".17g")


def _geometry(label: ObjectLabels, i: int, schema: LabelSchema, width: int, height: int) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in label.boxes[i])
    box = [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height]
    if schema.task is TaskType.SEGMENTATION:
        return _polygon_values(label, i, width, height)
    if schema.task is not TaskType.KEYPOINTS:
        return box
    count = len(schema.keypoints)
    points = label.keypoints[i] if label.keypoints is not None else np.zeros((count, 3))
    values = list(box)
    for x, y, visibility in points:
        values += [x / width, y / height, float(visibility)] if visibility > 0 else [0.0, 0.0, 0.0]
    return values


def _polygon_values(label: ObjectLabels, i: int, width: int, height: int) -> list[float]:
    """The object's polygon (the largest ring: a YOLO line holds one); objects without a polygon
    (boxes, raster masks) are written as their box's rectangle."""
    rings = label.polygons[i] if label.polygons is not None else ()
    ring: npt.NDArray[np.float64]
    if rings:
        ring = max(rings, key=polygon_area)
    else:
        x0, y0, x1, y1 = (float(v) for v in label.boxes[i])
        ring = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    return [float(v) for v in (ring / [width, height]).reshape(-1)]


def _save_classification(
    labels: LabelSet, schema: LabelSchema, out: Path, options: SaveOptions
) -> list[Path]:
    """``train/<class>/<name>`` (a name already under ``<split>/<class>/`` keeps its split)."""
    if options.image_source is None:
        raise ConfigError(
            "YOLO classification export needs the images: pass the folder holding them as image_source"
        )
    plan = class_folder_plan(labels, options.image_source, options.predictions, _split_target)
    used = sorted({target.split("/", 1)[0] for target in plan} | {"train"})
    for split in used:
        for class_name in schema.classes:
            (out / split / class_name).mkdir(parents=True, exist_ok=True)
    splits = {split: split for split in _SPLITS if split in used}
    splits.setdefault("val", "val" if "val" in used else "train")
    written = [_write_data_yaml(out, schema, splits)]
    for target, source in plan.items():
        copy_file(source, out / target)
        written.append(out / target)
    return written


def _split_target(name: str, class_name: str) -> str:
    split, _, rest = name.partition("/")
    if split in _SPLITS and rest:
        return f"{split}/{class_target(rest, class_name)}"
    return f"train/{class_target(name, class_name)}"
