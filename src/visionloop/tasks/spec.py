"""What a task type means to training, evaluation and serving: one :class:`TaskSpec` each.

A task has one or more model families (the keypoints task: Keypoint R-CNN for people-style
instances, a DeepLabCut-style heatmap network for body parts). A family knows how to build its
network, turn examples into tensors, compute the training loss and turn outputs back into core
labels; the spec adds what is common to the task: metrics, the headline metric the trainer and
gate optimise, and an uncertainty score for active learning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.models.backbones import WeightsInfo
from visionloop.models.config import ModelConfig
from visionloop.models.embeddings import EmbeddingSource
from visionloop.tasks.examples import Example

__all__ = [
    "Batch",
    "ExportableFamily",
    "GraphExportableFamily",
    "MetricsFunction",
    "ModelFamily",
    "OnnxOutput",
    "TaskSpec",
]


@dataclass(frozen=True)
class Batch:
    """Collated tensors: ``images`` is a stacked tensor or a list (detectors take a list)."""

    images: torch.Tensor | list[torch.Tensor]
    targets: Any
    sizes: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.sizes)


@dataclass(frozen=True, slots=True)
class OnnxOutput:
    """One named output of the exported graph, with its symbolic shape."""

    name: str
    shape: tuple[str | int, ...]
    meaning: str


class ModelFamily(Protocol):
    name: str
    needs_masks: bool
    needs_keypoints: bool
    onnx_outputs: tuple[OnnxOutput, ...]

    def build(self, schema: LabelSchema, config: ModelConfig) -> tuple[nn.Module, WeightsInfo]: ...

    def encode(self, example: Example, config: ModelConfig) -> tuple[torch.Tensor, Any]:
        """The model input for one example and its training target."""
        ...

    def collate(self, encoded: Sequence[tuple[torch.Tensor, Any]], sizes: list[tuple[int, int]]) -> Batch: ...

    def loss(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]: ...

    def predict(
        self,
        model: nn.Module,
        images: Sequence[npt.NDArray[np.uint8]],
        schema: LabelSchema,
        config: ModelConfig,
    ) -> list[Label]:
        """Labels for raw RGB images (any size), in original pixel coordinates."""
        ...

    def embedding_source(self, model: nn.Module) -> EmbeddingSource:
        """The module whose input or output, pooled, is an image's embedding."""
        ...

    def squashed_size(self, config: ModelConfig) -> tuple[int, int] | None:
        """The ``(height, width)`` every image is squashed to before the network, so decoding
        may resize early; ``None`` when the family sizes images by its own rules."""
        ...


@runtime_checkable
class ExportableFamily(ModelFamily, Protocol):
    """A family whose network is one graph from a fixed-size image batch to ``onnx_outputs``, so
    it can run outside PyTorch (ONNX Runtime): preprocessing and decoding live outside the graph."""

    def input_batch(
        self, images: Sequence[npt.NDArray[np.uint8]], config: ModelConfig
    ) -> npt.NDArray[np.float32]:
        """The network input for raw RGB images (any size), as one ``(N, 3, H, W)`` array."""
        ...

    def labels_from_outputs(
        self,
        outputs: Sequence[npt.NDArray[np.float32]],
        sizes: Sequence[tuple[int, int]],
        schema: LabelSchema,
        config: ModelConfig,
    ) -> list[Label]:
        """Labels from the network's outputs (in ``onnx_outputs`` order) for images of ``sizes``
        ``(height, width)``, in those images' pixel coordinates."""
        ...


@runtime_checkable
class GraphExportableFamily(ExportableFamily, Protocol):
    """An exportable family whose graph is more than its network and runs one image per run, at
    a size of the image's own (the R-CNN detectors: proposals, NMS and the ROI heads are in the
    graph, and torchvision's heads loop over a batch in Python, so a traced batch size is fixed).
    ``input_batch`` then takes exactly one image and ``labels_from_outputs`` one image's outputs."""

    def onnx_graph(self, network: nn.Module) -> nn.Module:
        """The module to export: ``input_batch`` output to ``onnx_outputs``, in that order."""
        ...

    def onnx_dynamic_axes(self) -> dict[str, dict[int, str]]:
        """The input's and outputs' dynamic axes, by name (the input is ``images``)."""
        ...


MetricsFunction = Callable[
    [Sequence[Label | None], Sequence[Label], LabelSchema, Sequence[tuple[int, int]]], dict[str, Any]
]


@dataclass(frozen=True)
class TaskSpec:
    task: TaskType
    families: Mapping[str, ModelFamily]
    default_family: str
    headline_metric: str  # key of the metrics dict that early stopping, tuning and the gate use
    metrics: MetricsFunction
    uncertainty: Callable[[Label], float]

    def family(self, name: str | None) -> ModelFamily:
        chosen = name or self.default_family
        family = self.families.get(chosen)
        if family is None:
            raise ValidationError(
                f"model family {chosen!r} does not fit a {self.task} task; choose from "
                + ", ".join(sorted(self.families))
            )
        return family
