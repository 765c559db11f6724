"""Two-stage detectors (Faster / Mask / Keypoint R-CNN) on an ImageNet backbone's ``features``.

torchvision ships these heads but no offline COCO weights here, so the backbone is what carries
pretraining: the ``features`` stages of a classification network (MobileNetV2 by default) at
strides 8, 16 and 32 feed a feature pyramid. Batch norm in the backbone is frozen (detection
batches are tiny), anchors scale with the stride so small objects get small anchors, and the
input size is configurable because the torchvision default (800 px) is far too slow on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from visionloop.core.errors import ValidationError
from visionloop.models.backbones import WeightsInfo, build_imagenet_network, feature_stages
from visionloop.models.torch_ops import import_torchvision

__all__ = ["DetectorKind", "DetectorSpec", "build_detector"]

DetectorKind = Literal["faster_rcnn", "mask_rcnn", "keypoint_rcnn"]


# torchvision's defaults (2,000 proposals, 512 sampled ROIs per image in training; 1,000 at test)
# suit 800-pixel COCO images. Here images are a few hundred pixels with a handful of objects, and
# ROI pooling dominates a CPU step (4x fewer ROIs made a step ~3x faster), so fewer proposals do:
# 300 at test time is what the Faster R-CNN paper used. DetectorSpec.extra overrides any of them.
SMALL_IMAGE_PROPOSALS: dict[str, int] = {
    "rpn_pre_nms_top_n_train": 1000,
    "rpn_post_nms_top_n_train": 1000,
    "box_batch_size_per_image": 128,
    "rpn_pre_nms_top_n_test": 500,
    "rpn_post_nms_top_n_test": 300,
}

# The mask and keypoint heads are convolution stacks run on every positive ROI at 14x14.
# torchvision's (4 x 256 for masks, 8 x 512 for keypoints) cost ~0.5 and ~3.7 GMACs per ROI;
# HEAD_LAYERS convolutions as wide as the FPN keep them 4x to 30x cheaper for CPU training.
HEAD_LAYERS = 4
BOX_REPRESENTATION = 1024  # the width of torchvision's default two-layer box head


@dataclass(frozen=True)
class DetectorSpec:
    kind: DetectorKind
    num_classes: int  # including the background class at index 0
    backbone: str = "mobilenet_v2"
    weights: str = "imagenet"
    min_size: int = 320
    max_size: int = 320
    num_keypoints: int = 0
    fpn_channels: int = 128
    anchor_scale: float = 4.0
    freeze_backbone: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def build_detector(spec: DetectorSpec) -> tuple[nn.Module, WeightsInfo]:
    tv = import_torchvision()
    from torchvision.models.detection import FasterRCNN, KeypointRCNN, MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    if spec.num_classes < 2:
        raise ValidationError("a detector needs at least one object class besides the background")
    if spec.kind == "keypoint_rcnn" and spec.num_keypoints < 1:
        raise ValidationError("a keypoint detector needs at least one keypoint")
    network, info = build_imagenet_network(
        spec.backbone, spec.weights, norm_layer=tv.ops.misc.FrozenBatchNorm2d
    )
    features = getattr(network, "features", None)
    if not isinstance(features, nn.Sequential):
        raise ValidationError(
            f"{spec.backbone} has no 'features' stages to build a detector on; use a MobileNet or "
            "EfficientNet backbone"
        )
    stages = {stage.stride: stage for stage in feature_stages(features)}
    picked = [stages[stride] for stride in (8, 16, 32) if stride in stages]
    if len(picked) < 2:
        raise ValidationError(f"{spec.backbone} does not expose stride 8/16/32 feature stages")
    if spec.freeze_backbone:
        for parameter in features.parameters():
            parameter.requires_grad_(False)
    backbone = BackboneWithFPN(
        features,
        return_layers={str(stage.index): str(level) for level, stage in enumerate(picked)},
        in_channels_list=[stage.channels for stage in picked],
        out_channels=spec.fpn_channels,
        extra_blocks=LastLevelMaxPool(),
    )
    strides = [stage.stride for stage in picked] + [picked[-1].stride * 2]  # + the max-pool level
    anchors = AnchorGenerator(
        sizes=tuple(
            tuple(round(spec.anchor_scale * stride * 2 ** (octave / 3)) for octave in range(3))
            for stride in strides
        ),
        aspect_ratios=((0.5, 1.0, 2.0),) * len(strides),
    )
    levels = [str(level) for level in range(len(picked))]
    common: dict[str, Any] = {
        "num_classes": spec.num_classes,
        "min_size": spec.min_size,
        "max_size": spec.max_size,
        "rpn_anchor_generator": anchors,
        "box_roi_pool": tv.ops.MultiScaleRoIAlign(featmap_names=levels, output_size=7, sampling_ratio=2),
        **SMALL_IMAGE_PROPOSALS,
        **spec.extra,
    }
    head_width = spec.fpn_channels
    if spec.kind != "faster_rcnn":
        # torchvision takes num_classes only when it builds every predictor itself; with our own
        # mask or keypoint predictor the box predictor (on its default 1024-wide head) is ours too.
        common["box_predictor"] = FastRCNNPredictor(BOX_REPRESENTATION, common.pop("num_classes"))
    model: nn.Module
    if spec.kind == "faster_rcnn":
        model = FasterRCNN(backbone, **common)
    elif spec.kind == "mask_rcnn":
        model = MaskRCNN(
            backbone,
            mask_roi_pool=tv.ops.MultiScaleRoIAlign(featmap_names=levels, output_size=14, sampling_ratio=2),
            mask_head=MaskRCNNHeads(spec.fpn_channels, (head_width,) * HEAD_LAYERS, dilation=1),
            mask_predictor=MaskRCNNPredictor(head_width, head_width, spec.num_classes),
            **common,
        )
    else:
        model = KeypointRCNN(
            backbone,
            keypoint_roi_pool=tv.ops.MultiScaleRoIAlign(
                featmap_names=levels, output_size=14, sampling_ratio=2
            ),
            keypoint_head=KeypointRCNNHeads(spec.fpn_channels, (head_width,) * HEAD_LAYERS),
            keypoint_predictor=KeypointRCNNPredictor(head_width, spec.num_keypoints),
            **common,
        )
    return model, info
