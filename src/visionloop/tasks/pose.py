"""DeepLabCut-style body-part pose: a heatmap network, one animal per image at prediction time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from visionloop.core.labels import Label, ObjectLabels
from visionloop.core.schema import LabelSchema
from visionloop.models.backbones import WeightsInfo
from visionloop.models.config import ModelConfig
from visionloop.models.embeddings import EmbeddingSource
from visionloop.models.heatmap import build_heatmap_pose, heatmap_loss, heatmap_targets
from visionloop.tasks.examples import Example
from visionloop.tasks.outputs import HEATMAP_STRIDE, pose_labels
from visionloop.tasks.preprocess import normalised_batch, normalised_tensor
from visionloop.tasks.spec import Batch, OnnxOutput

__all__ = ["HeatmapFamily", "keypoint_uncertainty"]


class HeatmapFamily:
    name = "heatmap"
    needs_masks = False
    needs_keypoints = True
    onnx_outputs: tuple[OnnxOutput, ...] = (
        OnnxOutput("scoremaps", ("batch", "parts", "height/4", "width/4"), "part logits"),
        OnnxOutput("locref", ("batch", "2*parts", "height/4", "width/4"), "sub-pixel x/y offsets"),
    )

    def build(self, schema: LabelSchema, config: ModelConfig) -> tuple[nn.Module, WeightsInfo]:
        model, info = build_heatmap_pose(
            len(schema.keypoints), config.backbone, config.weights, config.freeze_backbone
        )
        return model, info

    def encode(self, example: Example, config: ModelConfig) -> tuple[torch.Tensor, Any]:
        height, width = example.size
        side = config.image_size
        keypoints = example.keypoints
        if keypoints is None:
            keypoints = np.zeros((0, 0, 3), np.float32)
        scaled = keypoints.astype(np.float32).copy()
        scaled[:, :, 0] *= side / width
        scaled[:, :, 1] *= side / height
        return normalised_tensor(example.image, side), torch.from_numpy(scaled)

    def collate(self, encoded: Sequence[tuple[torch.Tensor, Any]], sizes: list[tuple[int, int]]) -> Batch:
        return Batch(
            images=torch.stack([image for image, _ in encoded]), targets=[t for _, t in encoded], sizes=sizes
        )

    def loss(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        images = batch.images
        if not isinstance(images, torch.Tensor):
            raise TypeError("the heatmap family collates images into one tensor")
        logits, offsets = model(images)
        parts = logits.shape[1]
        keypoints = [t if t.numel() else torch.zeros(0, parts, 3) for t in batch.targets]
        targets = heatmap_targets(keypoints, (logits.shape[2], logits.shape[3]), HEATMAP_STRIDE)
        return heatmap_loss(logits, offsets, targets)

    def squashed_size(self, config: ModelConfig) -> tuple[int, int] | None:
        return (config.image_size, config.image_size)

    def embedding_source(self, model: nn.Module) -> EmbeddingSource:
        """The backbone's stride-16 features, averaged over the image."""
        features = model.features
        if not isinstance(features, nn.Module):
            raise TypeError("the heatmap network has a features module")
        return features, "output"

    def input_batch(
        self, images: Sequence[npt.NDArray[np.uint8]], config: ModelConfig
    ) -> npt.NDArray[np.float32]:
        return normalised_batch(images, config.image_size)

    def predict(
        self,
        model: nn.Module,
        images: Sequence[npt.NDArray[np.uint8]],
        schema: LabelSchema,
        config: ModelConfig,
    ) -> list[Label]:
        inputs = torch.from_numpy(self.input_batch(images, config))
        with torch.inference_mode():
            logits, offsets = model(inputs)
        sizes = [(int(image.shape[0]), int(image.shape[1])) for image in images]
        return self.labels_from_outputs([logits.numpy(), offsets.numpy()], sizes, schema, config)

    def labels_from_outputs(
        self,
        outputs: Sequence[npt.NDArray[np.float32]],
        sizes: Sequence[tuple[int, int]],
        schema: LabelSchema,
        config: ModelConfig,
    ) -> list[Label]:
        """One animal per image: each part at its strongest peak, score maps then offsets
        (:func:`~visionloop.tasks.outputs.pose_labels`)."""
        return list(pose_labels(outputs[0], outputs[1], sizes, schema.classes[0], config.image_size))


def keypoint_uncertainty(label: Label) -> float:
    """One minus the mean keypoint likelihood of the least sure instance."""
    if not isinstance(label, ObjectLabels) or label.keypoint_scores is None or len(label) == 0:
        return 1.0
    return float(1.0 - label.keypoint_scores.mean(axis=1).min())
