"""Image classifiers: an ImageNet network with its head swapped for the project's classes."""

from __future__ import annotations

from torch import nn

from visionloop.models.backbones import (
    WeightsInfo,
    build_imagenet_network,
    channels_last,
    replace_classifier_head,
)

__all__ = ["build_classifier"]


def build_classifier(
    architecture: str, num_classes: int, weights: str = "imagenet", freeze_backbone: bool = False
) -> tuple[nn.Module, WeightsInfo]:
    """With ``freeze_backbone`` only the new head trains (a linear probe on ImageNet features).

    Frozen layers are also put in eval mode by the training loop so batch-norm statistics stay
    the pretrained ones.
    """
    network, info = build_imagenet_network(architecture, weights)
    head = replace_classifier_head(network, num_classes)
    if freeze_backbone:
        for name, parameter in network.named_parameters():
            parameter.requires_grad_(name.startswith(head + "."))
    return channels_last(network), info
