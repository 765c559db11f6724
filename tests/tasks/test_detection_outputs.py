"""The numpy halves around an exported detector reproduce torchvision's arithmetic: the resize
before the graph, the mask pasting and keypoint decoding after it; and they import no PyTorch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from visionloop.core.labels import ObjectLabels
from visionloop.formats.masks import rle_decode, rle_encode
from visionloop.models.torch_ops import import_torchvision
from visionloop.tasks.detection_inputs import detector_input, network_size
from visionloop.tasks.detection_outputs import detection_labels, heatmap_keypoints, paste_masks

import_torchvision()
from torchvision.models.detection.roi_heads import (  # noqa: E402 - after the operators exist
    heatmaps_to_keypoints,
    paste_masks_in_image,
)


@pytest.mark.parametrize(
    ("height", "width", "side"),
    [(480, 640, 320), (333, 500, 320), (64, 64, 64), (50, 37, 64), (17, 400, 96), (3024, 4032, 320)],
)
def test_the_input_is_what_torchvision_resizes_to(height: int, width: int, side: int) -> None:
    image = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    unit = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1).div_(255.0)
    scale = min(side / min(height, width), side / max(height, width))
    expected = F.interpolate(
        unit[None], scale_factor=scale, mode="bilinear", recompute_scale_factor=True, align_corners=False
    )
    ours = detector_input(image, side)
    assert ours.shape == tuple(expected.shape) and ours.dtype == np.float32
    assert ours.shape[2:] == network_size(height, width, side)
    np.testing.assert_allclose(ours, expected.numpy(), atol=2e-5)


def test_masks_are_pasted_as_torchvision_pastes_them() -> None:
    rng = np.random.default_rng(0)
    height, width, count = 120, 170, 25
    corner = np.stack([rng.uniform(-20, width, count), rng.uniform(-20, height, count)], axis=1)
    boxes = np.concatenate([corner, corner + rng.uniform(0.3, 90, (count, 2))], axis=1).astype(np.float32)
    probabilities = rng.random((count, 1, 28, 28)).astype(np.float32)
    pasted = paste_masks_in_image(torch.from_numpy(probabilities), torch.from_numpy(boxes), (height, width))
    expected = (pasted[:, 0] >= 0.5).numpy()
    pasted_rles = paste_masks(probabilities, boxes, (height, width))
    ours = np.stack([rle_decode(rle) for rle in pasted_rles])
    assert (ours != expected).sum() == 0 and expected.sum() > 0
    assert [rle_encode(mask) for mask in ours] == list(pasted_rles)  # the core's canonical form
    assert paste_masks(probabilities[:0], boxes[:0], (height, width)) == ()


def test_keypoints_are_the_peaks_torchvision_finds() -> None:
    rng = np.random.default_rng(1)
    count = 20
    corner = rng.uniform(0, 200, (count, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(0.3, 120, (count, 2))], axis=1).astype(np.float32)
    heatmaps = rng.normal(size=(count, 4, 56, 56)).astype(np.float32)
    expected, expected_logits = heatmaps_to_keypoints(torch.from_numpy(heatmaps), torch.from_numpy(boxes))
    points, logits = heatmap_keypoints(heatmaps, boxes)
    np.testing.assert_array_equal(points, expected[..., :2].numpy())
    np.testing.assert_allclose(logits, expected_logits.numpy(), atol=1e-4)


def test_outputs_become_a_label_in_the_images_pixels() -> None:
    """A 200x100 image runs at 64x32 (side 64): boxes and keypoints scale back by 3.125."""
    outputs = {
        "boxes": np.array([[4.0, 8.0, 20.0, 24.0]], np.float32),
        "labels": np.array([2.0], np.float32),  # 1-based: the second class
        "scores": np.array([0.75], np.float32),
        "keypoint_heatmaps": np.zeros((1, 2, 56, 56), np.float32),
    }
    outputs["keypoint_heatmaps"][0, 0, 0, 0] = outputs["keypoint_heatmaps"][0, 1, 55, 55] = 5.0
    label = detection_labels(outputs, (200, 100), 64, ["box", "bar"])
    assert isinstance(label, ObjectLabels) and label.class_names == ("bar",)
    np.testing.assert_allclose(label.boxes, [[12.5, 25.0, 62.5, 75.0]])
    assert label.scores is not None and label.scores.tolist() == [0.75]
    assert label.keypoints is not None and label.keypoint_scores is not None
    assert (
        label.keypoints[0, 0, 0] < label.keypoints[0, 1, 0]
        and label.keypoints[0, 0, 1] < label.keypoints[0, 1, 1]
    )
    assert np.all(label.keypoints[:, :, 2] == 2.0)
    assert label.keypoint_scores[0, 0] > 0.5 and label.masks is None


def test_an_empty_result_is_an_empty_label() -> None:
    outputs = {
        "boxes": np.zeros((0, 4), np.float32),
        "labels": np.zeros((0,), np.float32),
        "scores": np.zeros((0,), np.float32),
        "masks": np.zeros((0, 1, 28, 28), np.float32),
    }
    label = detection_labels(outputs, (30, 40), 32, ["box"])
    assert len(label) == 0 and label.masks == ()


def test_the_numpy_halves_import_no_torch() -> None:
    modules = (
        "visionloop.tasks.detection_inputs, visionloop.tasks.detection_outputs, visionloop.tasks.agreement"
    )
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
