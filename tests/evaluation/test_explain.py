"""Integrated Gradients attributes the output to the pixels that drive it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionloop.core.errors import ValidationError

torch = pytest.importorskip("torch")
pytest.importorskip("captum")

from visionloop.evaluation.explain import black_baseline, integrated_gradients, save_explanation  # noqa: E402


class LeftHalfNet(torch.nn.Module):
    """A tiny conv net whose logits depend only on the left half of the image."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, kernel_size=3, padding=1)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = x[..., : x.shape[-1] // 2]
        return self.head(torch.tanh(self.conv(left)).mean(dim=(2, 3)))


def test_attributions_fall_on_the_pixels_that_drive_the_output() -> None:
    torch.manual_seed(0)
    model = LeftHalfNet().train()
    images = torch.randn(2, 3, 8, 12)
    attribution = integrated_gradients(model, images, targets=[0, 1], steps=8)
    assert attribution.shape == (2, 8, 12)
    assert attribution.dtype == np.float64
    assert np.all(attribution >= 0)
    left, right = attribution[:, :, :6], attribution[:, :, 6:]
    assert np.all(left.sum(axis=(1, 2)) > 0)
    assert np.all(right == 0)
    assert model.training  # mode restored


def test_black_baseline_and_bad_input() -> None:
    images = torch.zeros(1, 3, 4, 4)
    baseline = black_baseline(images, mean=[0.5, 0.5, 0.5], std=[0.25, 0.5, 1.0])
    assert torch.allclose(baseline[0, :, 0, 0], torch.tensor([-2.0, -1.0, -0.5]))
    model = LeftHalfNet()
    with pytest.raises(ValidationError, match="2 targets"):
        integrated_gradients(model, torch.zeros(2, 3, 4, 4), targets=[0])
    with pytest.raises(ValidationError, match="baseline shape"):
        integrated_gradients(model, images, targets=[0], baseline=torch.zeros(1, 3, 2, 2))


def test_save_explanation_writes_side_by_side_png(tmp_path: Path) -> None:
    image = np.full((16, 24, 3), 128, dtype=np.uint8)
    heat = np.zeros((16, 24))
    heat[:, :12] = 1.0
    path = save_explanation(image, heat, tmp_path / "ig.png", title="cat $ <0.9>")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.width > png.height
    with pytest.raises(ValidationError, match="does not match"):
        save_explanation(image, heat[:, :5], tmp_path / "bad.png")
