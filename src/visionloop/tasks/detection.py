"""Detection, instance segmentation and person-style keypoints: the R-CNN families.

The three share everything but the extra head, so one class serves them, parameterised by the
detector kind. Class indices shift by one at this boundary (torchvision reserves 0 for the
background). Objects whose box is thinner than a pixel are dropped from training targets
because the box regression cannot encode them.

They export to ONNX as one graph per image (:mod:`visionloop.tasks.detection_graph` says where
the graph is cut and why); the numpy halves around it, :mod:`~visionloop.tasks.detection_inputs`
and :mod:`~visionloop.tasks.detection_outputs`, need no PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label, ObjectLabels
from visionloop.core.schema import LabelSchema
from visionloop.formats.masks import rle_encode
from visionloop.models.backbones import WeightsInfo
from visionloop.models.config import ModelConfig
from visionloop.models.detectors import DetectorKind, DetectorSpec, build_detector
from visionloop.models.embeddings import EmbeddingSource
from visionloop.tasks.detection_graph import DetectorGraph
from visionloop.tasks.detection_inputs import detector_input
from visionloop.tasks.detection_outputs import MASK_THRESHOLD, detection_labels, object_labels
from visionloop.tasks.examples import Example
from visionloop.tasks.preprocess import unit_tensor
from visionloop.tasks.spec import Batch, OnnxOutput

__all__ = ["RCNNFamily", "object_uncertainty"]

_MIN_BOX_SIDE = 1.0

_BASE_OUTPUTS = (
    OnnxOutput("boxes", ("detections", 4), "xyxy in network input pixels"),
    OnnxOutput("labels", ("detections",), "1-based class index"),
    OnnxOutput("scores", ("detections",), "confidence"),
)
_EXTRA_OUTPUTS: dict[str, tuple[OnnxOutput, ...]] = {
    "faster_rcnn": (),
    "mask_rcnn": (
        OnnxOutput("masks", ("detections", 1, 28, 28), "mask probabilities over the box, own class"),
    ),
    "keypoint_rcnn": (
        OnnxOutput("keypoint_heatmaps", ("detections", "keypoints", 56, 56), "keypoint logits over the box"),
    ),
}


class RCNNFamily:
    def __init__(self, kind: DetectorKind) -> None:
        self.name: str = kind
        self.kind = kind
        self.needs_masks = kind == "mask_rcnn"
        self.needs_keypoints = kind == "keypoint_rcnn"
        self.onnx_outputs = _BASE_OUTPUTS + _EXTRA_OUTPUTS[kind]

    def build(self, schema: LabelSchema, config: ModelConfig) -> tuple[nn.Module, WeightsInfo]:
        spec = DetectorSpec(
            kind=self.kind,
            num_classes=len(schema.classes) + 1,
            backbone=config.backbone,
            weights=config.weights,
            min_size=config.image_size,
            max_size=config.image_size,
            num_keypoints=len(schema.keypoints) if self.needs_keypoints else 0,
            fpn_channels=config.fpn_channels,
            anchor_scale=config.anchor_scale,
            freeze_backbone=config.freeze_backbone,
            extra={
                "box_score_thresh": config.score_threshold,
                "box_detections_per_img": config.max_detections,
            },
        )
        return build_detector(spec)

    def encode(self, example: Example, config: ModelConfig) -> tuple[torch.Tensor, Any]:
        height, width = example.size
        boxes = example.boxes if example.boxes is not None else np.zeros((0, 4), np.float32)
        labels = example.labels if example.labels is not None else np.zeros((0,), np.int64)
        keep = ((boxes[:, 2] - boxes[:, 0]) >= _MIN_BOX_SIDE) & ((boxes[:, 3] - boxes[:, 1]) >= _MIN_BOX_SIDE)
        target: dict[str, torch.Tensor] = {
            "boxes": torch.from_numpy(boxes[keep].astype(np.float32)).reshape(-1, 4),
            "labels": torch.from_numpy(labels[keep] + 1),
        }
        if self.needs_masks:
            masks = (
                example.masks
                if example.masks is not None
                else np.zeros((len(boxes), height, width), np.uint8)
            )
            target["masks"] = torch.from_numpy(np.ascontiguousarray(masks[keep]))
        if self.needs_keypoints:
            keypoints = example.keypoints
            if keypoints is None:
                keypoints = np.zeros((len(boxes), 0, 3), np.float32)
            target["keypoints"] = torch.from_numpy(np.ascontiguousarray(keypoints[keep], dtype=np.float32))
        return unit_tensor(example.image), target

    def collate(self, encoded: Sequence[tuple[torch.Tensor, Any]], sizes: list[tuple[int, int]]) -> Batch:
        return Batch(images=[image for image, _ in encoded], targets=[t for _, t in encoded], sizes=sizes)

    def loss(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        losses: dict[str, torch.Tensor] = model(batch.images, batch.targets)
        return losses

    def squashed_size(self, config: ModelConfig) -> tuple[int, int] | None:
        return None  # the detector keeps the aspect ratio, within its min and max size

    def embedding_source(self, model: nn.Module) -> EmbeddingSource:
        """The feature pyramid, each level averaged over the image and concatenated."""
        backbone = model.backbone
        if not isinstance(backbone, nn.Module):
            raise TypeError("a detector has a backbone module")
        return backbone, "output"

    def predict(
        self,
        model: nn.Module,
        images: Sequence[npt.NDArray[np.uint8]],
        schema: LabelSchema,
        config: ModelConfig,
    ) -> list[Label]:
        with torch.inference_mode():
            outputs = model([unit_tensor(image) for image in images])
        return [self._to_label(output, schema) for output in outputs]

    def _to_label(self, output: dict[str, torch.Tensor], schema: LabelSchema) -> ObjectLabels:
        masks = None
        if self.needs_masks:
            binary = (output["masks"][:, 0] >= MASK_THRESHOLD).numpy()
            masks = tuple(rle_encode(mask) for mask in binary)
        keypoints = logits = None
        if self.needs_keypoints:
            keypoints = output["keypoints"].numpy()
            logits = output["keypoints_scores"].numpy()
        return object_labels(
            output["boxes"].numpy(),
            output["labels"].numpy(),
            output["scores"].numpy(),
            schema.classes,
            masks=masks,
            keypoints=keypoints,
            keypoint_logits=logits,
        )

    def input_batch(
        self, images: Sequence[npt.NDArray[np.uint8]], config: ModelConfig
    ) -> npt.NDArray[np.float32]:
        """One image resized to the network's size, ``(1, 3, h, w)`` in ``[0, 1]``."""
        if len(images) != 1:
            raise ValidationError(f"the {self.name} graph runs one image at a time, got {len(images)}")
        return detector_input(images[0], config.image_size)

    def labels_from_outputs(
        self,
        outputs: Sequence[npt.NDArray[np.float32]],
        sizes: Sequence[tuple[int, int]],
        schema: LabelSchema,
        config: ModelConfig,
    ) -> list[Label]:
        if len(sizes) != 1:
            raise ValidationError(
                f"the {self.name} graph's outputs describe one image, got {len(sizes)} sizes"
            )
        named = dict(zip((output.name for output in self.onnx_outputs), outputs, strict=True))
        return [detection_labels(named, sizes[0], config.image_size, schema.classes)]

    def onnx_graph(self, network: nn.Module) -> nn.Module:
        return DetectorGraph(network)

    def onnx_dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes: dict[str, dict[int, str]] = {"images": {2: "height", 3: "width"}}
        axes.update({output.name: {0: "detections"} for output in self.onnx_outputs})
        return axes


def object_uncertainty(label: Label) -> float:
    """How unsure a detection result is: the least confident object's margin from certainty.

    An image whose best detection is a coin flip is worth a human's look; an image with no
    detections at all is maximally uncertain (the model may be missing everything).
    """
    if not isinstance(label, ObjectLabels) or label.scores is None or len(label) == 0:
        return 1.0
    margins = np.abs(label.scores - 0.5) * 2.0
    return float(1.0 - margins.min())
