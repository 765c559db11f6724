"""The part of an R-CNN detector that runs as an ONNX graph, and why it is cut where it is.

The graph takes one image already resized to the network's size (``(1, 3, h, w)`` floats in
``[0, 1]``, dynamic ``h`` and ``w``; :func:`~visionloop.tasks.detection_inputs.detector_input`)
and returns ``boxes`` (network pixels), 1-based ``labels``, ``scores``, plus ``masks`` (each
object's ``M x M`` probabilities for its own class) or ``keypoint_heatmaps`` (``K`` logit maps per
object). Inside: normalisation, padding to a multiple of 32, backbone, region proposals with NMS,
ROI align, the box head with per-class NMS, and the mask or keypoint head.

Why this cut, rather than exporting the whole torchvision model with its own resize:

* Resize outside, in numpy, with torchvision's size rule and interpolation arithmetic: the graph
  input is then network-sized whatever the photo (a 12 MP photo would enter as 144 MB of float32
  and be converted whole), and the size arithmetic is PyTorch's eager one exactly (traced, it is
  redone in float32 and can land a pixel off).
* One image per run, dynamic size: torchvision's RPN and box post-processing loop over the batch
  in Python, so a traced graph bakes its batch size in. Padding every image to one fixed square
  to batch them would change what the network sees at the border (the padded area would carry
  the layers' biases instead of the zeros PyTorch pads with), so the two runtimes would disagree.
* Mask pasting and keypoint decoding outside, in numpy (:mod:`visionloop.tasks.detection_outputs`):
  in the graph they are ``N x H x W`` float masks at photo size and an ONNX loop with a resize per
  object (measured: ~115 ms of a 525 ms Keypoint R-CNN run at 100 objects).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from visionloop.models.torch_ops import import_torchvision

__all__ = ["DetectorGraph"]


class DetectorGraph(nn.Module):
    """A torchvision R-CNN in eval mode, from a network-sized unit image to its raw detections."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        import_torchvision()
        from torchvision.models.detection.image_list import ImageList
        from torchvision.models.detection.roi_heads import maskrcnn_inference

        self.detector = detector
        self._image_list: Any = ImageList
        self._mask_inference: Any = maskrcnn_inference

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        detector: Any = self.detector
        transform, heads = detector.transform, detector.roi_heads
        image = transform.normalize(images[0])
        batch = transform.batch_images([image], size_divisible=transform.size_divisible)
        sizes = [(image.shape[-2], image.shape[-1])]  # traced as sizes, so the graph stays dynamic
        features = detector.backbone(batch)
        proposals, _ = detector.rpn(self._image_list(batch, sizes), features)
        pooled = heads.box_head(heads.box_roi_pool(features, proposals, sizes))
        class_logits, box_regression = heads.box_predictor(pooled)
        boxes, scores, labels = heads.postprocess_detections(class_logits, box_regression, proposals, sizes)
        outputs = [boxes[0], labels[0], scores[0]]
        if heads.has_mask():
            logits = heads.mask_predictor(heads.mask_head(heads.mask_roi_pool(features, boxes, sizes)))
            outputs.append(self._mask_inference(logits, labels)[0])
        if heads.has_keypoint():
            found = heads.keypoint_head(heads.keypoint_roi_pool(features, boxes, sizes))
            outputs.append(heads.keypoint_predictor(found))
        return tuple(outputs)
