"""Corruptions keep geometry, get harsher with severity and are reproducible."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from visionloop.core.errors import ValidationError
from visionloop.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A textured 48x64 image: gradients, stripes and a little noise, mid-range intensities."""
    y, x = np.mgrid[0:48, 0:64].astype(np.float64)
    rng = np.random.default_rng(7)
    channels = [
        90 + 60 * np.sin(x / 3.0) + rng.normal(0, 10, x.shape),
        40 + 2 * x + 30 * np.cos(y / 2.0),
        120 + 50 * np.sin((x + y) / 4.0),
    ]
    return np.clip(np.stack(channels, axis=2), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_shape_dtype_kept_and_quality_falls_with_severity(image: np.ndarray, name: str) -> None:
    original = image.copy()
    outputs = [corrupt(image, name, severity, seed=0) for severity in SEVERITIES]
    assert np.array_equal(image, original)  # the input is left alone
    for output in outputs:
        assert output.shape == image.shape and output.dtype == np.uint8
        assert not np.array_equal(output, image)
    scores = [psnr(image, output) for output in outputs]
    assert all(a > b for a, b in itertools.pairwise(scores)), scores


def test_noise_is_deterministic_for_a_seed(image: np.ndarray) -> None:
    first = corrupt(image, "gaussian_noise", 3, seed=42)
    again = CORRUPTIONS["gaussian_noise"](image, 3, np.random.default_rng(42))
    other = corrupt(image, "gaussian_noise", 3, seed=43)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_brightness_raises_the_mean_and_keeps_black_grey(image: np.ndarray) -> None:
    means = [corrupt(image, "brightness", s).mean() for s in SEVERITIES]
    assert all(a < b for a, b in itertools.pairwise(means))
    black = np.zeros((2, 2, 3), dtype=np.uint8)
    assert np.all(corrupt(black, "brightness", 5) == 128)  # value 0.5 -> round(127.5)


def test_bad_input_is_rejected(image: np.ndarray) -> None:
    with pytest.raises(ValidationError, match="severity"):
        corrupt(image, "gaussian_blur", 6)
    with pytest.raises(ValidationError, match="uint8 RGB"):
        corrupt(image.astype(np.float32), "gaussian_noise", 1)
    with pytest.raises(ValidationError, match="uint8 RGB"):
        corrupt(image[:, :, 0], "jpeg_compression", 1)
    with pytest.raises(ValidationError, match="unknown corruption 'fog'"):
        corrupt(image, "fog", 1)
