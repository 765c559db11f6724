"""The model section of a training config: which family, backbone, weights and input size."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ModelConfig"]


class ModelConfig(BaseModel):
    """``family`` picks the head (``classifier``; ``faster_rcnn``; ``mask_rcnn``;
    ``keypoint_rcnn`` or ``heatmap``); ``None`` uses the task's default. ``weights`` is
    ``imagenet`` (offline packaged weights), ``hub`` (download), ``none`` or a file path.
    ``image_size`` is the classifier/pose input side and the detectors' resize target.
    """

    model_config = ConfigDict(extra="forbid")

    family: str | None = None
    backbone: str = "mobilenet_v2"
    weights: str = "imagenet"
    image_size: int = Field(default=224, ge=16, le=4096)
    freeze_backbone: bool = False
    fpn_channels: int = Field(default=128, ge=8, le=1024)
    anchor_scale: float = Field(default=4.0, gt=0)
    score_threshold: float = Field(default=0.05, ge=0, le=1)
    max_detections: int = Field(default=100, ge=1, le=10_000)

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("weights must be imagenet, hub, none or a file path")
        return value.strip()
