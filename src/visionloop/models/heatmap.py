"""A DeepLabCut-style pose network: ImageNet backbone, transposed-convolution heatmap head.

Like DeepLabCut's single-animal networks it predicts, per body part, a score map (sigmoid per
pixel, trained against a disc-shaped target of ``radius`` output pixels) and a location
refinement (sub-pixel x/y offsets, trained only inside the disc). The peak of each score map
plus its offset is the part's position and the peak's sigmoid is its likelihood, which the
evaluation cuts at a p-cutoff as DeepLabCut does.

Every labelled instance paints its discs into the maps, so images with several animals train
too; :func:`visionloop.tasks.outputs.heatmap_peaks` returns up to ``max_instances`` peaks per
part, strongest first (in numpy, so every runtime decodes alike).
Assembling peaks of several animals into individuals is not done yet: the pose task decodes one
animal per image (the strongest peak of each part).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from visionloop.models.backbones import WeightsInfo, build_imagenet_network, channels_last, feature_stages

__all__ = ["HeatmapPoseNet", "PoseTargets", "build_heatmap_pose", "heatmap_targets"]


class HeatmapPoseNet(nn.Module):
    """Backbone features at stride 16, upsampled twice to a stride-4 map of score+offset channels."""

    def __init__(self, features: nn.Sequential, channels: int, num_parts: int, head_channels: int = 128):
        super().__init__()
        self.features = features
        self.num_parts = num_parts
        self.stride = 4
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(channels, head_channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(head_channels),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(head_channels, head_channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(head_channels),
            nn.ReLU(inplace=True),
        )
        self.scores = nn.Conv2d(head_channels, num_parts, 1)
        self.offsets = nn.Conv2d(head_channels, 2 * num_parts, 1)
        with torch.no_grad():
            self.scores.bias.fill_(-4.0)  # type: ignore[union-attr]  # start from "no part here"
            self.offsets.weight.zero_()
            self.offsets.bias.zero_()  # type: ignore[union-attr]

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.upsample(self.features(images))
        return self.scores(hidden), self.offsets(hidden)


def build_heatmap_pose(
    num_parts: int, backbone: str = "mobilenet_v2", weights: str = "imagenet", freeze_backbone: bool = False
) -> tuple[HeatmapPoseNet, WeightsInfo]:
    network, info = build_imagenet_network(backbone, weights)
    features = getattr(network, "features", None)
    if not isinstance(features, nn.Sequential):
        raise ValueError(f"{backbone} has no 'features' stages")
    stride16 = next(stage for stage in feature_stages(features) if stage.stride == 16)
    trunk = nn.Sequential(*list(features)[: stride16.index + 1])
    if freeze_backbone:
        for parameter in trunk.parameters():
            parameter.requires_grad_(False)
    return channels_last(HeatmapPoseNet(trunk, stride16.channels, num_parts)), info


@dataclass(frozen=True)
class PoseTargets:
    scores: torch.Tensor  # (B, P, h, w) 0/1 discs; offsets train only inside them
    offsets: torch.Tensor  # (B, 2P, h, w) offsets in output pixels, x then y per part


def heatmap_targets(
    keypoints: list[torch.Tensor], output_size: tuple[int, int], stride: int, radius: float = 2.0
) -> PoseTargets:
    """Targets from per-image ``(I, P, 3)`` keypoints in input pixels (I instances, x, y, visibility).

    Every visible part of every instance paints a disc into its part's map, so one network
    serves single- and multi-animal images.
    """
    batch = len(keypoints)
    parts = keypoints[0].shape[1]
    height, width = output_size
    ys = torch.arange(height, dtype=torch.float32).view(height, 1) + 0.5
    xs = torch.arange(width, dtype=torch.float32).view(1, width) + 0.5
    scores = torch.zeros(batch, parts, height, width)
    offsets = torch.zeros(batch, 2 * parts, height, width)
    nearest = torch.full((batch, parts, height, width), float("inf"))
    for b, instances in enumerate(keypoints):
        for instance in instances:
            for p in range(parts):
                x, y, visibility = (float(v) for v in instance[p])
                if visibility <= 0:
                    continue
                gx, gy = x / stride, y / stride
                dx, dy = gx - xs, gy - ys
                distance = (dx**2 + dy**2).sqrt()
                closer = (distance <= radius) & (distance < nearest[b, p])
                scores[b, p][closer] = 1.0
                offsets[b, 2 * p][closer] = dx.expand(height, width)[closer]
                offsets[b, 2 * p + 1][closer] = dy.expand(height, width)[closer]
                nearest[b, p] = torch.where(closer, distance, nearest[b, p])
    return PoseTargets(scores=scores, offsets=offsets)


def heatmap_loss(
    logits: torch.Tensor, offsets: torch.Tensor, targets: PoseTargets, offset_weight: float = 0.05
) -> dict[str, torch.Tensor]:
    """Per-pixel sigmoid cross-entropy on the score maps plus Huber loss on the offsets in the discs."""
    positives = targets.scores.sum().clamp(min=1.0)
    # Discs are tiny next to the map: weight positives up so the maps do not collapse to zero.
    pos_weight = torch.tensor(min(50.0, targets.scores.numel() / float(positives)))
    score_loss = F.binary_cross_entropy_with_logits(logits, targets.scores, pos_weight=pos_weight)
    mask = targets.scores.repeat_interleave(2, dim=1)
    offset_loss = (F.smooth_l1_loss(offsets, targets.offsets, reduction="none") * mask).sum() / positives
    return {"loss_heatmap": score_loss, "loss_locref": offset_weight * offset_loss}
