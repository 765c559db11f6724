"""The data model: numpy, pydantic and the standard library only."""

from visionloop.core.errors import VisionloopError
from visionloop.core.labels import ClassLabel, Label, ObjectLabels, label_from_dict
from visionloop.core.media import ImageInfo, ItemSource, Split
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import LabelSchema, TaskType

__all__ = [
    "ClassLabel",
    "ImageInfo",
    "ItemSource",
    "Label",
    "LabelSchema",
    "ObjectLabels",
    "Provenance",
    "ProvenanceKind",
    "Split",
    "TaskType",
    "VisionloopError",
    "label_from_dict",
]
