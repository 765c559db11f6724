"""Inference with ONNX Runtime: the same labels and embeddings as the PyTorch model, faster on CPU.

:class:`OnnxModel` has the :class:`~visionloop.tasks.predictor.Predictor` surface of
``TrainedModel``. Preprocessing is numpy (Pillow resize, one vectorised normalisation per batch;
the detectors' own resize rule) and the outputs are decoded by the family's own
``labels_from_outputs``, the code the PyTorch path runs, so both runtimes return labels of the
same form. Detector graphs take one image per run (:class:`GraphExportableFamily`); the others
take the whole batch. When the export kept an int8 graph, that is the one loaded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label
from visionloop.core.schema import LabelSchema
from visionloop.models.artifact import ModelArtifact
from visionloop.models.config import ModelConfig
from visionloop.tasks.onnx_files import OnnxExport
from visionloop.tasks.onnx_session import (
    SessionSettings,
    available_cores,
    import_onnxruntime,
    open_session,
    session_runs,
)
from visionloop.tasks.registry import get_task
from visionloop.tasks.spec import ExportableFamily, GraphExportableFamily

__all__ = [
    "OnnxModel",
    "SessionSettings",
    "available_cores",
    "exportable_family",
    "graph_runs",
    "images_per_run",
    "import_onnxruntime",
    "open_session",
    "session_predictions",
]


def exportable_family(artifact: ModelArtifact) -> ExportableFamily:
    """The artifact's model family, refused when it cannot run as an ONNX graph yet."""
    family = get_task(artifact.schema.task).family(artifact.family)
    if not isinstance(family, ExportableFamily):
        raise ValidationError(
            f"{artifact.folder}: ONNX export of {family.name} models is not supported yet "
            "(supported: classifier, heatmap, faster_rcnn, mask_rcnn, keypoint_rcnn)"
        )
    return family


def images_per_run(family: ExportableFamily) -> int | None:
    """How many images one run of the family's graph takes: one for graph families, else any."""
    return 1 if isinstance(family, GraphExportableFamily) else None


def graph_runs(
    session: Any,
    family: ExportableFamily,
    config: ModelConfig,
    input_name: str,
    images: Sequence[npt.NDArray[np.uint8]],
    names: Sequence[str],
) -> Iterator[tuple[Sequence[npt.NDArray[np.uint8]], list[npt.NDArray[np.float32]]]]:
    """Each run's images and the outputs ``names`` it returned, over ``images`` (raw RGB)."""

    def inputs(chunk: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        return family.input_batch(chunk, config)

    return session_runs(session, input_name, images, names, images_per_run(family), inputs)


def session_predictions(
    session: Any,
    family: ExportableFamily,
    artifact: ModelArtifact,
    input_name: str,
    label_outputs: Sequence[str],
    embedding_output: str,
    images: Sequence[npt.NDArray[np.uint8]],
) -> tuple[list[Label], npt.NDArray[np.float32]]:
    """Labels and one embedding row per image from an open session of an exported graph."""
    labels: list[Label] = []
    rows: list[npt.NDArray[np.float32]] = []
    names = [*label_outputs, embedding_output]
    for chunk, outputs in graph_runs(session, family, artifact.model, input_name, images, names):
        labels.extend(
            family.labels_from_outputs(outputs[:-1], _sizes(chunk), artifact.schema, artifact.model)
        )
        rows.append(outputs[-1])
    embeddings = np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
    return labels, embeddings


class OnnxModel:
    """A model folder's ONNX export, run by ONNX Runtime on the CPU: its int8 graph when the
    export kept one (``precision``), else the fp32 graph."""

    runtime = "onnx"

    def __init__(self, session: Any, family: ExportableFamily, artifact: ModelArtifact, export: OnnxExport):
        self.session = session
        self.family = family
        self._artifact = artifact
        self.export = export

    @classmethod
    def open(
        cls, artifact: ModelArtifact, export: OnnxExport, settings: SessionSettings | None = None
    ) -> OnnxModel:
        family = exportable_family(artifact)
        session = open_session(str(export.runtime_path), settings or SessionSettings())
        return cls(session, family, artifact, export)

    @property
    def artifact(self) -> ModelArtifact:
        return self._artifact

    @property
    def schema(self) -> LabelSchema:
        return self._artifact.schema

    @property
    def version(self) -> str:
        return self._artifact.version

    @property
    def precision(self) -> str:
        """``fp32`` or ``int8``: which of the export's graphs runs."""
        return self.export.precision

    def outputs(
        self, images: Sequence[npt.NDArray[np.uint8]], names: Sequence[str] | None = None
    ) -> list[npt.NDArray[np.float32]]:
        """The graph's raw outputs (all, or ``names``) for raw RGB images, in one run (detector
        graphs take one image per run)."""
        inputs = self.family.input_batch(images, self._artifact.model)
        return self.run(inputs, names)

    def run(
        self, inputs: npt.NDArray[np.float32], names: Sequence[str] | None = None
    ) -> list[npt.NDArray[np.float32]]:
        """The graph's raw outputs (all, or ``names``) for an already preprocessed batch."""
        wanted = list(names) if names is not None else self.export.outputs
        results = self.session.run(wanted, {self.export.input_name: inputs})
        return [np.asarray(result, dtype=np.float32) for result in results]

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Label]:
        labels: list[Label] = []
        config = self._artifact.model
        runs = graph_runs(
            self.session, self.family, config, self.export.input_name, images, self.export.label_outputs
        )
        for chunk, outputs in runs:
            labels.extend(self.family.labels_from_outputs(outputs, _sizes(chunk), self.schema, config))
        return labels

    def predict_and_embed(
        self, images: Sequence[npt.NDArray[np.uint8]]
    ) -> tuple[list[Label], npt.NDArray[np.float32]]:
        """Labels and one embedding row per image, from the same run of the graph."""
        return session_predictions(
            self.session,
            self.family,
            self._artifact,
            self.export.input_name,
            self.export.label_outputs,
            self.export.embedding_output,
            images,
        )


def _sizes(images: Sequence[npt.NDArray[np.uint8]]) -> list[tuple[int, int]]:
    return [(int(image.shape[0]), int(image.shape[1])) for image in images]
