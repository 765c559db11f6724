"""Classification: an ImageNet network with a new head, cross-entropy, softmax scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from visionloop.core.errors import ValidationError
from visionloop.core.labels import ClassLabel, Label
from visionloop.core.schema import LabelSchema
from visionloop.models.backbones import WeightsInfo
from visionloop.models.classifier import build_classifier
from visionloop.models.config import ModelConfig
from visionloop.models.embeddings import EmbeddingSource
from visionloop.tasks.examples import Example
from visionloop.tasks.outputs import class_labels
from visionloop.tasks.preprocess import normalised_batch, normalised_tensor
from visionloop.tasks.spec import Batch, OnnxOutput

__all__ = ["ClassifierFamily", "classification_uncertainty"]


class ClassifierFamily:
    name = "classifier"
    needs_masks = False
    needs_keypoints = False
    onnx_outputs: tuple[OnnxOutput, ...] = (
        OnnxOutput("logits", ("batch", "classes"), "unnormalised class scores"),
    )

    def build(self, schema: LabelSchema, config: ModelConfig) -> tuple[nn.Module, WeightsInfo]:
        return build_classifier(config.backbone, len(schema.classes), config.weights, config.freeze_backbone)

    def encode(self, example: Example, config: ModelConfig) -> tuple[torch.Tensor, Any]:
        return normalised_tensor(example.image, config.image_size), example.class_index

    def collate(self, encoded: Sequence[tuple[torch.Tensor, Any]], sizes: list[tuple[int, int]]) -> Batch:
        if any(target is None for _, target in encoded):
            raise ValidationError("an unlabelled image reached classification training")
        images = torch.stack([image for image, _ in encoded])
        targets = torch.tensor([target for _, target in encoded], dtype=torch.int64)
        return Batch(images=images, targets=targets, sizes=sizes)

    def loss(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        if not isinstance(batch.images, torch.Tensor):
            raise TypeError("the classifier family collates images into one tensor")
        return {"loss_classifier": F.cross_entropy(model(batch.images), batch.targets)}

    def squashed_size(self, config: ModelConfig) -> tuple[int, int] | None:
        return (config.image_size, config.image_size)

    def embedding_source(self, model: nn.Module) -> EmbeddingSource:
        """What the classifier head sees: the pooled backbone features (torchvision classifiers
        end in one linear layer)."""
        head = [module for module in model.modules() if isinstance(module, nn.Linear)][-1]
        return head, "input"

    def input_batch(
        self, images: Sequence[npt.NDArray[np.uint8]], config: ModelConfig
    ) -> npt.NDArray[np.float32]:
        return normalised_batch(images, config.image_size)

    def logits(
        self, model: nn.Module, images: Sequence[npt.NDArray[np.uint8]], config: ModelConfig
    ) -> npt.NDArray[np.float32]:
        inputs = torch.from_numpy(self.input_batch(images, config))
        with torch.inference_mode():
            logits: npt.NDArray[np.float32] = model(inputs).float().numpy()
        return logits

    def predict(
        self,
        model: nn.Module,
        images: Sequence[npt.NDArray[np.uint8]],
        schema: LabelSchema,
        config: ModelConfig,
    ) -> list[Label]:
        sizes = [(int(image.shape[0]), int(image.shape[1])) for image in images]
        return self.labels_from_outputs([self.logits(model, images, config)], sizes, schema, config)

    def labels_from_outputs(
        self,
        outputs: Sequence[npt.NDArray[np.float32]],
        sizes: Sequence[tuple[int, int]],
        schema: LabelSchema,
        config: ModelConfig,
    ) -> list[Label]:
        """One :class:`ClassLabel` per logits row (:func:`~visionloop.tasks.outputs.class_labels`)."""
        return list(class_labels(outputs[0], schema.classes))


def classification_uncertainty(label: Label) -> float:
    """One minus the top-class probability (least-confidence sampling)."""
    if not isinstance(label, ClassLabel) or label.score is None:
        return 1.0
    return 1.0 - label.score
