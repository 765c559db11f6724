"""A small Mask R-CNN shared by ``scripts/make_detector_fixture.py`` and its test.

It depends only on torch and torchvision, so the fixture script can build it in an environment
with torchvision's native operators while the test builds the identical architecture on top of
the pure-PyTorch fallbacks. torchvision is imported inside the functions: in the test process,
``visionloop.models.torch_ops.import_torchvision()`` must run before torchvision is imported.

Sizes keep the fixture small (~100k parameters; the three copies of the weights take ~1.1 MB): a
four-convolution backbone, a 24-channel FPN and slim box and mask heads.

The ROI heads train on every proposal (at most 64 per image plus the ground truth, all taken by a
sampler asked for 256 with no positive quota) rather than on a random subset. A sampled subset is
redrawn from scratch whenever the count of positive proposals moves by one, so a last-bit
difference between two runs (native versus fallback ``roi_align``) could change a whole step's
batch; with every proposal taken only the proposals themselves can differ. The RPN's own sampler
is harmless: anchors and ground truth are fixed, so its draws depend on the seed alone.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from itertools import pairwise

import torch
from torch import nn

IMAGE_SIZE = 160
NUM_CLASSES = 3  # background + 2
FPN_CHANNELS = 24
DETECTIONS_PER_IMAGE = 10


class TinyBackbone(nn.Module):
    """Four stride-2 convolutions; an FPN over the last three (strides 4, 8, 16) plus max pool."""

    def __init__(self, out_channels: int = FPN_CHANNELS) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        widths = (3, 16, 24, 32, 48)
        self.body = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                nn.GroupNorm(4, c_out),
                nn.ReLU(inplace=True),
            )
            for c_in, c_out in pairwise(widths)
        )
        self.fpn = FeaturePyramidNetwork(list(widths[2:]), out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features: OrderedDict[str, torch.Tensor] = OrderedDict()
        for index, stage in enumerate(self.body):
            x = stage(x)
            if index >= 1:
                features[str(index - 1)] = x
        return self.fpn(features)  # type: ignore[no-any-return]


def build_tiny_maskrcnn() -> nn.Module:
    """The fixture's Mask R-CNN, freshly initialised from torch's global RNG (seed it first)."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    backbone = TinyBackbone()
    channels = backbone.out_channels
    levels = ["0", "1", "2"]
    anchors = AnchorGenerator(sizes=((16,), (32,), (64,), (128,)), aspect_ratios=((0.5, 1.0, 2.0),) * 4)
    representation = 32
    mask_width = 24
    return MaskRCNN(
        backbone,
        num_classes=None,
        min_size=IMAGE_SIZE,
        max_size=IMAGE_SIZE,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=300,
        rpn_post_nms_top_n_train=64,
        rpn_pre_nms_top_n_test=200,
        rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=64,
        box_roi_pool=MultiScaleRoIAlign(featmap_names=levels, output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(channels * 7 * 7, representation),
        box_predictor=FastRCNNPredictor(representation, NUM_CLASSES),
        box_score_thresh=0.0,
        box_detections_per_img=DETECTIONS_PER_IMAGE,
        box_batch_size_per_image=256,  # > 64 proposals + ground truth: every proposal is used
        box_positive_fraction=1.0,
        mask_roi_pool=MultiScaleRoIAlign(featmap_names=levels, output_size=14, sampling_ratio=2),
        mask_head=MaskRCNNHeads(channels, [mask_width, mask_width], 1),
        mask_predictor=MaskRCNNPredictor(mask_width, mask_width, NUM_CLASSES),
    )


def synthetic_batch(
    generator: torch.Generator,
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Two uint8 images with two or three filled rectangles/ellipses each, and their targets.

    Shapes are drawn on a noisy background with a class-dependent colour so a few SGD steps
    separate the classes. The model takes :func:`as_float` of the images.
    """
    size = IMAGE_SIZE
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    colours = {
        1: torch.tensor([230, 51, 26], dtype=torch.uint8),
        2: torch.tensor([26, 77, 230], dtype=torch.uint8),
    }
    layouts = [
        [(1, (12, 20, 70, 90)), (2, (90, 40, 150, 110)), (1, (30, 110, 80, 150))],
        [(2, (20, 15, 100, 60)), (1, (60, 80, 140, 150))],
    ]
    images: list[torch.Tensor] = []
    targets: list[dict[str, torch.Tensor]] = []
    for image_index, layout in enumerate(layouts):
        image = torch.randint(89, 115, (3, size, size), generator=generator, dtype=torch.uint8)
        boxes, labels, masks = [], [], []
        for shape_index, (label, (x1, y1, x2, y2)) in enumerate(layout):
            if (image_index + shape_index) % 2:  # ellipse inscribed in the box
                cx, cy, rx, ry = (x1 + x2 - 1) / 2, (y1 + y2 - 1) / 2, (x2 - x1) / 2, (y2 - y1) / 2
                mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
            else:
                mask = (xx >= x1) & (xx < x2) & (yy >= y1) & (yy < y2)
            image = torch.where(mask, colours[label][:, None, None], image)
            boxes.append([float(x1), float(y1), float(x2), float(y2)])
            labels.append(label)
            masks.append(mask)
        images.append(image)
        targets.append(
            {
                "boxes": torch.tensor(boxes, dtype=torch.float32),
                "labels": torch.tensor(labels, dtype=torch.int64),
                "masks": torch.stack(masks).to(torch.uint8),
            }
        )
    return images, targets


LOSS_NAMES = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg")
TRAIN_STEPS = 30
# Steps whose reproduction the test checks. Runs that differ in the last bits (native versus
# fallback roi_align, or another CPU's arithmetic) eventually flip a discrete choice: which
# proposals pass the RPN's top-k and NMS, or which side of an IoU threshold one falls. From then on
# the trajectories part. With init weights perturbed by a relative 1e-7 that happened from step 22
# on in trials (from step 5 with 1e-6); the fixture script checks the first CHECKED_STEPS.
CHECKED_STEPS = 10
LEARNING_RATE = 0.02
MOMENTUM = 0.9


def step_seed(step: int) -> int:
    """Seed of torch's global RNG before training step ``step`` (the RPN/ROI samplers draw from it)."""
    return 1000 + step


def training_steps(
    model: nn.Module,
    images: list[torch.Tensor],
    targets: list[dict[str, torch.Tensor]],
    steps: int = TRAIN_STEPS,
) -> Iterator[dict[str, float]]:
    """Plain SGD on the fixed batch; yields each step's loss components after its update."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    model.train()
    for step in range(steps):
        torch.manual_seed(step_seed(step))
        losses = model(images, targets)
        total = sum(losses[name] for name in LOSS_NAMES)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        yield {name: float(losses[name].detach()) for name in LOSS_NAMES}


def as_float(images: list[torch.Tensor]) -> list[torch.Tensor]:
    """uint8 (3, H, W) images as the model's float inputs in [0, 1]."""
    return [image.to(torch.float32) / 255 for image in images]


def eval_images(train_images: list[torch.Tensor]) -> list[torch.Tensor]:
    """uint8 eval inputs: the training images and a mirrored, darkened copy of the first."""
    darker = (train_images[0].flip(-1).to(torch.int32) * 4 // 5).to(torch.uint8)
    return [*train_images, darker]
