"""Formats registered by name; implementations import lazily on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from visionloop.core.errors import ConfigError
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.model import ImportResult, LabelSet


@dataclass(frozen=True)
class LoadOptions:
    """How to read a file.

    ``schema`` is the project's schema when importing into a project (unknown classes are then
    rejected); ``provenance`` overrides the provenance of labels the format does not mark itself
    (``--as human|model``).
    """

    schema: LabelSchema | None = None
    provenance: Provenance | None = None
    task: TaskType | None = None
    reference: Path | None = None  # a ground-truth file naming the images of a results file


@dataclass(frozen=True)
class SaveOptions:
    """How to write a label set.

    ``predictions`` writes model predictions (results files) rather than ground truth.
    ``image_source`` is a folder holding the images under their names: formats whose layout
    includes the images (YOLO, ImageFolder) copy them from there; without it they write labels
    only.
    """

    predictions: bool = False
    image_source: Path | None = None


class Loader(Protocol):
    def __call__(self, path: Path, options: LoadOptions) -> ImportResult: ...


class Saver(Protocol):
    def __call__(self, labels: LabelSet, out: Path, options: SaveOptions) -> list[Path]: ...


@dataclass(frozen=True)
class FormatSpec:
    name: str
    module: str  # "visionloop.formats.coco": defines ``load`` and ``save``
    tasks: frozenset[TaskType]
    description: str

    def _function(self, name: str) -> Callable[..., Any]:
        module = importlib.import_module(self.module)
        function: Callable[..., Any] = getattr(module, name)
        return function

    def load(self, path: Path, options: LoadOptions | None = None) -> ImportResult:
        result: ImportResult = self._function("load")(path, options or LoadOptions())
        return result

    def save(self, labels: LabelSet, out: Path, options: SaveOptions | None = None) -> list[Path]:
        if labels.schema is None:
            raise ConfigError(f"cannot save {self.name}: the labels have no schema")
        if labels.schema.task not in self.tasks:
            supported = ", ".join(sorted(task.value for task in self.tasks))
            raise ConfigError(
                f"format {self.name} cannot express {labels.schema.task} labels (it supports {supported})"
            )
        written: list[Path] = self._function("save")(labels, out, options or SaveOptions())
        return written


_FORMATS: dict[str, FormatSpec] = {}


def register(spec: FormatSpec) -> None:
    _FORMATS[spec.name] = spec


def get_format(name: str) -> FormatSpec:
    try:
        return _FORMATS[name.lower()]
    except KeyError:
        raise ConfigError(
            f"unknown format {name!r}; available formats: {', '.join(sorted(_FORMATS))}"
        ) from None


def available_formats() -> list[FormatSpec]:
    return [_FORMATS[name] for name in sorted(_FORMATS)]


_ALL = frozenset(TaskType)
_OBJECTS = frozenset({TaskType.DETECTION, TaskType.SEGMENTATION, TaskType.KEYPOINTS})
for _spec in (
    FormatSpec(
        "coco",
        "visionloop.formats.coco",
        _OBJECTS,
        "COCO JSON: instances (boxes, polygons, RLE), keypoints with skeleton; results files",
    ),
    FormatSpec(
        "yolo",
        "visionloop.formats.yolo",
        _ALL,
        "Ultralytics YOLO: txt labels (detect, segment polygons, pose), class folders, data.yaml",
    ),
    FormatSpec("voc", "visionloop.formats.voc", frozenset({TaskType.DETECTION}), "Pascal VOC XML boxes"),
    FormatSpec(
        "imagefolder",
        "visionloop.formats.imagefolder",
        frozenset({TaskType.CLASSIFICATION}),
        "ImageFolder: one folder per class",
    ),
    FormatSpec(
        "labelstudio",
        "visionloop.formats.labelstudio",
        _ALL,
        "Label Studio JSON tasks with annotations and predictions "
        "(choices, rectangles, polygons, brush, keypoints)",
    ),
    FormatSpec(
        "cvat",
        "visionloop.formats.cvat",
        _ALL,
        "CVAT for images 1.1 XML: tags, boxes, polygons, points, skeletons, masks, attributes",
    ),
    FormatSpec(
        "labelbox",
        "visionloop.formats.labelbox",
        _ALL,
        "Labelbox NDJSON (model-assisted labeling import): radio/checklist, bbox, polygon, point, mask",
    ),
    FormatSpec(
        "sagemaker",
        "visionloop.formats.sagemaker",
        frozenset({TaskType.CLASSIFICATION, TaskType.DETECTION}),
        "SageMaker Ground Truth augmented manifest (classification, bounding boxes)",
    ),
    FormatSpec(
        "deeplabcut",
        "visionloop.formats.deeplabcut",
        frozenset({TaskType.KEYPOINTS}),
        "DeepLabCut project: config.yaml and labeled-data CollectedData CSVs (folder or zip)",
    ),
):
    register(_spec)
