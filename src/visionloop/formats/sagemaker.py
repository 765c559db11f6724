"""SageMaker Ground Truth augmented manifest: JSON lines, one image per line.

Each line has ``source-ref`` (``s3://bucket/key``: the image name is ``key``; plain relative
paths are accepted too), a label attribute ``<attr>`` and its ``<attr>-metadata``. The
attribute is found by the ``-metadata`` suffix (or given to :func:`load` as ``attribute=``).

* Classification: ``<attr>`` is the integer class id; metadata ``class-name``, ``confidence``,
  ``type: groundtruth/image-classification``.
* Detection: ``<attr>`` is ``{"annotations": [{class_id, left, top, width, height}],
  "image_size": [{width, height, depth}]}`` (absolute pixels); metadata ``class-map``
  (``{"0": "bird"}``), ``objects: [{"confidence"}]`` (one per box),
  ``type: groundtruth/object-detection``.

``human-annotated: "no"`` marks machine labels (automated data labeling): they load as model
predictions whose version is the ``job-name``; ``"yes"`` loads as human labels by
``sagemaker:<job-name>``; without the key the ``--as`` provenance (default human) applies.
Confidences of human labels are kept as scores. ``records`` counts non-blank lines and a line is
accepted or rejected as a whole (locator ``line N``). Several lines may name the same image
(e.g. a labeling job and an adjustment job); their labels add up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.errors import UnsafePathError, ValidationError
from visionloop.core.labels import ClassLabel, ObjectLabels
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.common import ObjectRow, human_provenance, labels_to_save, objects_label
from visionloop.formats.model import Annotation, ImportResult, LabeledImage, LabelSet, Rejection
from visionloop.formats.registry import LoadOptions, SaveOptions
from visionloop.formats.safeio import FormatFileError, json_object_line, read_text
from visionloop.formats.validate import box_problem, class_problem, finite_numbers, name_problem
from visionloop.storage import atomic_write_local, safe_relative_path

CLASSIFICATION_TYPE = "groundtruth/image-classification"
DETECTION_TYPE = "groundtruth/object-detection"
#: Label attribute written by :func:`save`.
DEFAULT_ATTRIBUTE = "label"
#: Job name for labels whose provenance names no SageMaker job.
DEFAULT_JOB = "visionloop"
_METADATA = "-metadata"


class _Reject(Exception):
    """Internal: a line is invalid for the reason given."""


def load(path: Path, options: LoadOptions, *, attribute: str | None = None) -> ImportResult:
    """Read a manifest; ``attribute`` names the label attribute when a line holds several."""
    try:
        text = read_text(path)
    except FormatFileError as exc:
        return ImportResult(LabelSet(options.schema), 1, [Rejection(str(path), "line 1", str(exc))])
    parsed: list[tuple[int, _Line]] = []
    rejections: list[Rejection] = []
    records = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        records += 1
        try:
            parsed.append((number, _parse_line(line, attribute, options)))
        except _Reject as exc:
            rejections.append(Rejection(str(path), f"line {number}", str(exc)))
        except UnsafePathError as exc:
            rejections.append(Rejection(str(path), f"line {number}", f"unsafe source-ref: {exc}"))
        except ValidationError as exc:
            rejections.append(Rejection(str(path), f"line {number}", f"invalid label: {exc}"))
    schema = options.schema or _infer_schema([entry for _, entry in parsed], options.task)
    labels = LabelSet(schema)
    for number, entry in parsed:
        problem = _fit_problem(entry, schema)
        if problem:
            rejections.append(Rejection(str(path), f"line {number}", problem))
            continue
        image = labels.image(entry.name)
        if entry.width is not None:
            image.width, image.height = entry.width, entry.height
        image.annotations.append(Annotation(entry.label, _provenance(entry, path, options)))
    return ImportResult(labels, records, rejections)


class _Line:
    """One parsed manifest line: image, size, label and how it was made."""

    def __init__(self, name: str, label: ClassLabel | ObjectLabels, metadata: dict[str, Any]) -> None:
        self.name = name
        self.label = label
        self.width: int | None = None
        self.height: int | None = None
        human = metadata.get("human-annotated")
        if human not in (None, "yes", "no"):
            raise _Reject(f'\'human-annotated\' must be "yes" or "no", got {human!r}')
        self.human: bool | None = None if human is None else human == "yes"
        job = metadata.get("job-name")
        if job is not None and (not isinstance(job, str) or not job):
            raise _Reject("'job-name' must be a non-empty string")
        self.job: str | None = job


def _parse_line(text: str, attribute: str | None, options: LoadOptions) -> _Line:
    try:
        record = json_object_line(text)
    except ValueError as exc:
        raise _Reject(str(exc)) from exc
    name = _image_name(record.get("source-ref"))
    attr = attribute or _find_attribute(record)
    value, metadata = record.get(attr), record.get(attr + _METADATA)
    if value is None:
        raise _Reject(f"no label attribute {attr!r}")
    if not isinstance(metadata, dict):
        raise _Reject(f"'{attr}{_METADATA}' must be an object")
    if isinstance(value, dict):
        line = _Line(name, _detection(value, metadata), metadata)
        line.width, line.height = _image_size(value)
        _check_boxes(line)
        return line
    if isinstance(value, int) and not isinstance(value, bool):
        return _Line(name, _classification(value, metadata), metadata)
    raise _Reject(f"label attribute {attr!r} must be a class id (integer) or an object with 'annotations'")


def _image_name(source: Any) -> str:
    if not isinstance(source, str) or not source:
        raise _Reject("'source-ref' must be a non-empty string")
    if source.startswith("s3://"):
        bucket, _, key = source[len("s3://") :].partition("/")
        if not bucket or not key:
            raise _Reject(f"'source-ref' {source!r} must look like s3://bucket/key")
        return safe_relative_path(key)
    if "://" in source:
        raise _Reject(f"'source-ref' {source!r}: only s3:// URIs and relative paths are supported")
    return safe_relative_path(source)


def _find_attribute(record: dict[str, Any]) -> str:
    candidates = [key[: -len(_METADATA)] for key in record if key.endswith(_METADATA)]
    candidates = [key for key in candidates if key in record]
    if len(candidates) != 1:
        found = ", ".join(sorted(candidates)) or "none"
        raise _Reject(
            f"expected exactly one label attribute with a '{_METADATA}' twin, found {found}; "
            "name it with attribute="
        )
    return candidates[0]


def _confidence(value: Any, what: str) -> float | None:
    if value is None:
        return None
    numbers = finite_numbers([value])
    if numbers is None or not 0.0 <= numbers[0] <= 1.0:
        raise _Reject(f"{what} must be a number within [0, 1], got {value!r}")
    return numbers[0]


def _classification(class_id: int, metadata: dict[str, Any]) -> ClassLabel:
    kind = metadata.get("type", CLASSIFICATION_TYPE)
    if kind != CLASSIFICATION_TYPE:
        raise _Reject(f"a class id label needs type {CLASSIFICATION_TYPE!r}, got {kind!r}")
    name = metadata.get("class-name")
    if not isinstance(name, str) or not name.strip():
        class_map = metadata.get("class-map")
        name = class_map.get(str(class_id)) if isinstance(class_map, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise _Reject(f"class id {class_id} has no 'class-name' in the metadata")
    problem = name_problem(name.strip())
    if problem:
        raise _Reject(problem)
    return ClassLabel(name.strip(), _confidence(metadata.get("confidence"), "confidence"))


def _detection(value: dict[str, Any], metadata: dict[str, Any]) -> ObjectLabels:
    kind = metadata.get("type", DETECTION_TYPE)
    if kind != DETECTION_TYPE:
        raise _Reject(f"an 'annotations' label needs type {DETECTION_TYPE!r}, got {kind!r}")
    annotations = value.get("annotations")
    if not isinstance(annotations, list):
        raise _Reject("'annotations' must be a list")
    class_map = metadata.get("class-map", {})
    if not isinstance(class_map, dict):
        raise _Reject("'class-map' must be an object of class id -> name")
    objects = metadata.get("objects")
    if objects is not None and (not isinstance(objects, list) or len(objects) != len(annotations)):
        raise _Reject(f"'objects' must list one confidence per annotation ({len(annotations)})")
    rows = []
    for index, annotation in enumerate(annotations):
        row = _box_row(annotation, class_map, index)
        if objects is not None:
            entry = objects[index]
            score = _confidence(entry.get("confidence") if isinstance(entry, dict) else entry, "confidence")
            row.score = 1.0 if score is None else score
        rows.append(row)
    return objects_label(rows)


def _box_row(annotation: Any, class_map: dict[str, Any], index: int) -> ObjectRow:
    where = f"annotation {index}"
    if not isinstance(annotation, dict):
        raise _Reject(f"{where} must be an object")
    class_id = annotation.get("class_id")
    if not isinstance(class_id, int) or isinstance(class_id, bool):
        raise _Reject(f"{where}: class_id must be an integer, got {class_id!r}")
    name = class_map.get(str(class_id))
    if not isinstance(name, str) or not name.strip():
        raise _Reject(f"{where}: class_id {class_id} is not in the class-map")
    problem = name_problem(name.strip())
    if problem:
        raise _Reject(f"{where}: {problem}")
    values = finite_numbers([annotation.get(k) for k in ("left", "top", "width", "height")], 4)
    if values is None:
        raise _Reject(f"{where}: left, top, width and height must be finite numbers")
    left, top, width, height = values
    box = [left, top, left + width, top + height]
    problem = box_problem(box, None, None)
    if problem:
        raise _Reject(f"{where}: {problem}")
    return ObjectRow(box=box, class_name=name.strip())


def _image_size(value: dict[str, Any]) -> tuple[int | None, int | None]:
    sizes = value.get("image_size")
    if sizes is None:
        return None, None
    if not isinstance(sizes, list) or len(sizes) != 1 or not isinstance(sizes[0], dict):
        raise _Reject("'image_size' must be a list with one {width, height, depth} object")
    width, height = sizes[0].get("width"), sizes[0].get("height")
    for number, label in ((width, "width"), (height, "height")):
        if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
            raise _Reject(f"image {label} must be a positive integer, got {number!r}")
    return width, height


def _check_boxes(line: _Line) -> None:
    assert isinstance(line.label, ObjectLabels)  # noqa: S101 - detection lines hold objects
    for index, box in enumerate(line.label.boxes.tolist()):
        problem = box_problem(box, line.width, line.height)
        if problem:
            raise _Reject(f"annotation {index}: {problem}")


def _infer_schema(lines: list[_Line], task: TaskType | None) -> LabelSchema | None:
    """Classes in order of first use; the task from the first line unless ``--task`` says."""
    if not lines:
        return None
    if task is None:
        task = TaskType.CLASSIFICATION if isinstance(lines[0].label, ClassLabel) else TaskType.DETECTION
    names: list[str] = []
    for line in lines:
        if isinstance(line.label, ClassLabel):
            names.append(line.label.class_name)
        else:
            names.extend(line.label.class_names)
    return LabelSchema(task=task, classes=list(dict.fromkeys(names)) or ["object"])


def _fit_problem(line: _Line, schema: LabelSchema | None) -> str | None:
    assert schema is not None  # noqa: S101 - a parsed line always yields a schema
    is_class = isinstance(line.label, ClassLabel)
    if is_class != (schema.task is TaskType.CLASSIFICATION):
        kind = "classification" if is_class else "object-detection"
        return f"{kind} label in a {schema.task} project"
    for name in line.label.class_counts():
        problem = class_problem(name, schema)
        if problem:
            return problem
    return None


def _provenance(line: _Line, path: Path, options: LoadOptions) -> Provenance:
    if line.human is None:
        return human_provenance(path, options.provenance)
    if line.human:
        return Provenance.human(f"sagemaker:{line.job or 'unknown-job'}")
    label = line.label
    if isinstance(label, ClassLabel):
        score = label.score
    else:
        score = float(np.mean(label.scores)) if label.scores is not None and len(label) else None
    return Provenance.model(line.job or "sagemaker", score)


# -- saving -----------------------------------------------------------------------------------
def save(
    labels: LabelSet, out: Path, options: SaveOptions, *, attribute: str = DEFAULT_ATTRIBUTE
) -> list[Path]:
    """Write ``output.manifest`` (or ``out`` itself when it names a ``.manifest``/``.jsonl``
    file); ``source-ref`` is the image name (prefix your bucket when uploading). ``image_size``
    is written when the size is known, with ``depth`` 3 (the size of an RGB image)."""
    schema = labels.schema
    assert schema is not None  # noqa: S101 - FormatSpec.save checked it
    target = out if out.suffix in (".manifest", ".jsonl", ".json") else out / "output.manifest"
    created = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    lines = []
    for image in sorted(labels.images, key=lambda i: i.name):
        for annotation in labels_to_save(image, options.predictions):
            record: dict[str, Any] = {"source-ref": image.name}
            value, metadata = _write_label(annotation, image, schema)
            metadata["human-annotated"] = (
                "no" if annotation.provenance.kind is ProvenanceKind.MODEL else "yes"
            )
            metadata["job-name"] = _job_name(annotation.provenance)
            metadata["creation-date"] = created
            record[attribute] = value
            record[attribute + _METADATA] = metadata
            lines.append(json.dumps(record, ensure_ascii=False))
    atomic_write_local(str(target), ("\n".join(lines) + "\n" if lines else "").encode("utf-8"))
    return [target]


def _job_name(provenance: Provenance) -> str:
    if provenance.kind is ProvenanceKind.HUMAN:
        annotator = provenance.annotator or DEFAULT_JOB
        return annotator.removeprefix("sagemaker:")
    return provenance.model_version or DEFAULT_JOB


def _write_label(
    annotation: Annotation, image: LabeledImage, schema: LabelSchema
) -> tuple[Any, dict[str, Any]]:
    label = annotation.label
    model = annotation.provenance.kind is ProvenanceKind.MODEL
    if isinstance(label, ClassLabel):
        metadata: dict[str, Any] = {"class-name": label.class_name, "type": CLASSIFICATION_TYPE}
        score = label.score if label.score is not None else annotation.provenance.score if model else None
        if score is not None:
            metadata["confidence"] = score
        return schema.class_index(label.class_name), metadata
    ids = {name: index for index, name in enumerate(schema.classes)}
    boxes = []
    for (x0, y0, x1, y1), name in zip(label.boxes.tolist(), label.class_names, strict=True):
        boxes.append({"class_id": ids[name], "left": x0, "top": y0, "width": x1 - x0, "height": y1 - y0})
    value: dict[str, Any] = {"annotations": boxes}
    if image.width is not None and image.height is not None:
        value["image_size"] = [{"width": image.width, "height": image.height, "depth": 3}]
    metadata = {
        "class-map": {str(index): name for index, name in enumerate(schema.classes)},
        "type": DETECTION_TYPE,
    }
    if label.scores is not None:
        metadata["objects"] = [{"confidence": float(score)} for score in label.scores]
    elif model:
        metadata["objects"] = [{"confidence": annotation.provenance.score or 1.0} for _ in boxes]
    return value, metadata
