"""The interchange model every format loads into and saves from.

A :class:`LabelSet` is a label schema plus images, each named by a POSIX path relative to the
dataset root (unique within the set) and carrying any number of annotations, each a core label
with its provenance (human ground truth, model predictions with scores and model version, or
auto-accepted labels). Coordinates follow the core convention: absolute pixels after EXIF
transpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from visionloop.core.labels import Label
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema


@dataclass(frozen=True)
class Annotation:
    label: Label
    provenance: Provenance


@dataclass
class LabeledImage:
    name: str
    width: int | None = None
    height: int | None = None
    annotations: list[Annotation] = field(default_factory=list)


@dataclass
class LabelSet:
    """``schema`` is None only when a file was too broken to say what its labels mean."""

    schema: LabelSchema | None
    images: list[LabeledImage] = field(default_factory=list)

    def image(self, name: str) -> LabeledImage:
        """The image called ``name``, created empty when the set does not have it yet."""
        for image in self.images:
            if image.name == name:
                return image
        created = LabeledImage(name)
        self.images.append(created)
        return created


@dataclass(frozen=True)
class Rejection:
    """One record a loader refused: the file, where in it (line, JSON pointer, element path), why."""

    file: str
    locator: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.locator}: {self.reason}"


@dataclass
class ImportResult:
    """What a loader read: the labels it accepted and every record it refused.

    ``records`` counts the format's own records (COCO annotations, YOLO lines, CVAT shapes, ...);
    ``imported + len(rejections) == records`` always holds.
    """

    labels: LabelSet
    records: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.records - len(self.rejections)
