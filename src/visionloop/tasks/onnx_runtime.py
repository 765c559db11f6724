"""Inference with ONNX Runtime: the same labels and embeddings as the PyTorch model, faster on CPU.

:class:`OnnxModel` has the :class:`~visionloop.tasks.predictor.Predictor` surface of
``TrainedModel``. Preprocessing is numpy (Pillow resize, one vectorised normalisation per batch)
and the outputs are decoded by the family's own ``labels_from_outputs``, the code the PyTorch
path runs, so both runtimes return labels of the same form.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.core.errors import MissingDependencyError, ValidationError
from visionloop.core.labels import Label
from visionloop.core.schema import LabelSchema
from visionloop.models.artifact import ModelArtifact
from visionloop.tasks.onnx_files import OnnxExport
from visionloop.tasks.registry import get_task
from visionloop.tasks.spec import ExportableFamily

__all__ = [
    "OnnxModel",
    "SessionSettings",
    "available_cores",
    "exportable_family",
    "import_onnxruntime",
    "open_session",
]


@dataclass(frozen=True)
class SessionSettings:
    """``threads`` per operator (default: every available core). ``busy_wait``: idle operator
    threads spin for the next piece of work (lowest latency); turn it off when other processes
    need the cores meanwhile, such as decoding workers, so waiting threads sleep instead."""

    threads: int | None = None
    busy_wait: bool = True


def import_onnxruntime(purpose: str) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError("onnxruntime", "onnx", purpose) from exc
    return onnxruntime


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def open_session(path: str, settings: SessionSettings = SessionSettings()) -> Any:
    """A CPU ``InferenceSession`` with all graph optimisations, one operator at a time, each
    spread over ``settings.threads``."""
    ort = import_onnxruntime("Running a model with ONNX Runtime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = settings.threads or available_cores()
    options.inter_op_num_threads = 1
    if not settings.busy_wait:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
        raise ValidationError(f"{path}: ONNX Runtime cannot load the graph: {exc}") from exc


def exportable_family(artifact: ModelArtifact) -> ExportableFamily:
    """The artifact's model family, refused when it cannot run as an ONNX graph yet."""
    family = get_task(artifact.schema.task).family(artifact.family)
    if not isinstance(family, ExportableFamily):
        raise ValidationError(
            f"{artifact.folder}: ONNX export of {family.name} models is not supported yet "
            "(supported: classifier, heatmap)"
        )
    return family


class OnnxModel:
    """A model folder's ONNX export, run by ONNX Runtime on the CPU."""

    runtime = "onnx"

    def __init__(self, session: Any, family: ExportableFamily, artifact: ModelArtifact, export: OnnxExport):
        self.session = session
        self.family = family
        self._artifact = artifact
        self.export = export

    @classmethod
    def open(
        cls, artifact: ModelArtifact, export: OnnxExport, settings: SessionSettings = SessionSettings()
    ) -> OnnxModel:
        family = exportable_family(artifact)
        return cls(open_session(str(export.path), settings), family, artifact, export)

    @property
    def artifact(self) -> ModelArtifact:
        return self._artifact

    @property
    def schema(self) -> LabelSchema:
        return self._artifact.schema

    @property
    def version(self) -> str:
        return self._artifact.version

    def outputs(
        self, images: Sequence[npt.NDArray[np.uint8]], names: Sequence[str] | None = None
    ) -> list[npt.NDArray[np.float32]]:
        """The graph's raw outputs (all, or ``names``) for raw RGB images."""
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
        outputs = self.outputs(images, self.export.label_outputs)
        return self.family.labels_from_outputs(outputs, _sizes(images), self.schema, self._artifact.model)

    def predict_and_embed(
        self, images: Sequence[npt.NDArray[np.uint8]]
    ) -> tuple[list[Label], npt.NDArray[np.float32]]:
        """Labels and one embedding row per image, from the same run of the graph."""
        names = [*self.export.label_outputs, self.export.embedding_output]
        *label_outputs, embeddings = self.outputs(images, names)
        labels = self.family.labels_from_outputs(
            label_outputs, _sizes(images), self.schema, self._artifact.model
        )
        return labels, embeddings


def _sizes(images: Sequence[npt.NDArray[np.uint8]]) -> list[tuple[int, int]]:
    return [(int(image.shape[0]), int(image.shape[1])) for image in images]
