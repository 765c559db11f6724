"""One squash-and-normalise arithmetic: the numpy batch ONNX Runtime and the edge runtime feed
equals the tensors PyTorch training builds, image by image."""

from __future__ import annotations

import numpy as np
import torch

from visionloop.imaging.model_input import normalised_batch
from visionloop.tasks.preprocess import normalised_tensor


def test_the_numpy_batch_equals_the_training_tensors() -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(40, 60), (32, 32), (90, 17)]]
    batch = normalised_batch(images, 32)
    assert batch.shape == (3, 3, 32, 32) and batch.dtype == np.float32
    expected = torch.stack([normalised_tensor(image, 32) for image in images]).numpy()
    np.testing.assert_allclose(batch, expected, atol=1e-6)
