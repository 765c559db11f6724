"""An exported model as the edge runtime runs it: ONNX Runtime and numpy, no PyTorch.

A model folder from ``visionloop export-model MODEL --format onnx`` holds ``model.json`` (the
label schema and model config), ``model.onnx`` and ``onnx.json`` (what the graph was exported
from and the parity check it passed); the weights are not needed. The export is refused when it
is stale or damaged, with the same checks pre-labeling applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label
from visionloop.core.schema import LabelSchema
from visionloop.edge.decoders import Decoder, decoder_for
from visionloop.tasks.model_files import META_NAME, ModelDescription, read_model_description
from visionloop.tasks.onnx_files import ONNX_NAME, OnnxExport, export_exists, read_export
from visionloop.tasks.onnx_session import SessionSettings, open_session, session_runs

__all__ = ["EdgeModel", "model_folder"]

EDGE_EXTRA = "edge"


def model_folder(path: Path) -> Path:
    """The model folder ``path`` names: the folder itself, or the folder of its ``model.onnx``."""
    if path.is_dir():
        return path
    if path.is_file() and path.name == ONNX_NAME:
        return path.parent
    if path.is_file() and path.suffix == ".onnx":
        raise ValidationError(
            f"{path}: expected the {ONNX_NAME} of a model folder (next to {META_NAME} and onnx.json); "
            "pass the folder that 'visionloop export-model' wrote"
        )
    raise ValidationError(f"{path}: no such model folder")


@dataclass(frozen=True)
class EdgeModel:
    """A checked export with its decoder and an open ONNX Runtime session."""

    description: ModelDescription
    export: OnnxExport
    decoder: Decoder
    session: Any

    @classmethod
    def open(cls, path: Path, settings: SessionSettings | None = None) -> EdgeModel:
        folder = model_folder(path)
        description = read_model_description(folder)
        decoder = decoder_for(description.family, str(folder))
        if not export_exists(folder):
            raise ValidationError(
                f"{folder}: no ONNX export (create one with 'visionloop export-model MODEL --format onnx')"
            )
        export = read_export(folder, description)
        session = open_session(str(export.runtime_path), settings or SessionSettings(), EDGE_EXTRA)
        return cls(description, export, decoder, session)

    @property
    def schema(self) -> LabelSchema:
        return self.description.schema

    @property
    def version(self) -> str:
        return self.description.version

    @property
    def family(self) -> str:
        return self.description.family

    @property
    def precision(self) -> str:
        """``fp32`` or ``int8``: which of the export's graphs runs."""
        return self.export.precision

    @property
    def side(self) -> int:
        return self.description.image_size

    @property
    def squashed_size(self) -> tuple[int, int] | None:
        """The ``(height, width)`` images are squashed to, so decoders may resize early."""
        return (self.side, self.side) if self.decoder.squashes else None

    @property
    def images_per_run(self) -> int | None:
        """How many images one run of the graph takes (the export's record): 1 for detectors,
        ``None`` for any number."""
        return self.export.images_per_run

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Label]:
        """Labels for raw RGB images of any size, in those images' pixels: the whole batch in one
        run, or one run per image for graphs that take one (the detectors)."""

        def inputs(chunk: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
            return self.decoder.inputs(chunk, self.side)

        names = self.export.label_outputs
        labels: list[Label] = []
        runs = session_runs(self.session, self.export.input_name, images, names, self.images_per_run, inputs)
        for chunk, outputs in runs:
            sizes = [(int(image.shape[0]), int(image.shape[1])) for image in chunk]
            named = dict(zip(names, outputs, strict=True))
            labels.extend(self.decoder.labels(named, sizes, self.schema, self.side))
        return labels
