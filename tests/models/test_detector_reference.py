"""A small Mask R-CNN on the CPU fallback operators against a run with torchvision's native ones.

The reference ``fixtures/maskrcnn_reference.npz`` comes from ``scripts/make_detector_fixture.py``
run where torchvision's compiled operators load. It holds a 30-step SGD run of the model in
``tiny_detector.py`` (torch and torchvision only, shared with the script) on a fixed synthetic
batch: the weights before it, after ``CHECKED_STEPS`` steps and at its end, every step's loss
components, and the trained model's eval-mode outputs (boxes, labels, scores, pasted mask
probabilities) on three images. Where the native operators load, these tests exercise them instead
of the fallbacks.

* Eval: the trained weights give the same detections, in the same order, as natively.
* Training: from the initial weights, the first ``CHECKED_STEPS`` steps reproduce the native
  losses and weights. This runs ``roi_align``'s backward inside a real model: every loss after
  the first depends on the updates before it. Later steps are not compared: two runs that differ
  in the last bits eventually flip a discrete choice (which proposals survive the RPN's top-k and
  NMS) and part ways; see ``CHECKED_STEPS`` in ``tiny_detector.py``.

To regenerate the fixture (after changing ``tiny_detector.py``, or torch/torchvision), use an
environment whose torchvision extension loads; the CUDA build of torch runs on CPU too::

    python3 -m venv /tmp/tv-native
    /tmp/tv-native/bin/pip --isolated install torch==2.13.0 torchvision==0.28.0 numpy
    /tmp/tv-native/bin/python scripts/make_detector_fixture.py   # about a minute

The script refuses to write a fixture that sits on a knife edge: kept detection scores closer
than 1e-5, or eval outputs or checked losses that move by more than 2e-5 when the weights are
perturbed by a relative 1e-7.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("torchvision") is None:
    pytest.skip("torchvision not installed", allow_module_level=True)

from tiny_detector import (  # noqa: E402
    CHECKED_STEPS,
    LOSS_NAMES,
    TRAIN_STEPS,
    as_float,
    build_tiny_maskrcnn,
    step_seed,
    training_steps,
)

from visionloop.models.torch_ops import import_torchvision  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "maskrcnn_reference.npz"

# Measured: eval boxes 1.5e-5 (pixels), scores 1e-7, masks 6e-6; losses 2e-7, weights 1e-7.
OUTPUT_ATOL = 1e-4
LOSS_ATOL = 1e-4
WEIGHT_ATOL = 1e-5


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(autouse=True)
def deterministic() -> Iterator[None]:
    import_torchvision()
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def weights(reference: dict[str, np.ndarray], prefix: str) -> dict[str, torch.Tensor]:
    return {
        key.removeprefix(f"{prefix}/"): torch.from_numpy(value)
        for key, value in reference.items()
        if key.startswith(f"{prefix}/")
    }


def model_with(reference: dict[str, np.ndarray], prefix: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_tiny_maskrcnn()
    model.load_state_dict(weights(reference, prefix), strict=True)
    return model


def indexed(reference: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    count = sum(1 for key in reference if key.startswith(prefix) and key[len(prefix) :].isdigit())
    return [reference[f"{prefix}{i}"] for i in range(count)]


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max()) if a.size else 0.0


def test_eval_outputs_match_native(reference: dict[str, np.ndarray]) -> None:
    model = model_with(reference, "final").eval()
    images = as_float([torch.from_numpy(image) for image in indexed(reference, "test_image_")])
    assert len(images) == 3
    with torch.no_grad():
        outputs = model(images)
    worst: dict[str, float] = {}
    for j, output in enumerate(outputs):
        expected_labels = reference[f"out_labels_{j}"]
        assert len(expected_labels) > 0
        np.testing.assert_array_equal(output["labels"].numpy(), expected_labels, err_msg=f"image {j}")
        for name in ("boxes", "scores", "masks"):
            actual, expected = output[name].numpy(), reference[f"out_{name}_{j}"]
            assert actual.shape == expected.shape, (j, name)
            np.testing.assert_allclose(
                actual, expected, rtol=0, atol=OUTPUT_ATOL, err_msg=f"image {j} {name}"
            )
            worst[name] = max(worst.get(name, 0.0), max_abs(actual, expected))
    print("eval outputs max abs difference: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))


def test_training_steps_reproduce_native_losses_and_weights(reference: dict[str, np.ndarray]) -> None:
    """roi_align's backward runs inside the model: every step's losses depend on the last update."""
    assert reference["loss_names"].tolist() == list(LOSS_NAMES)
    assert int(reference["checked_steps"]) == CHECKED_STEPS
    np.testing.assert_array_equal(reference["train_seeds"], [step_seed(s) for s in range(TRAIN_STEPS)])
    model = model_with(reference, "init")
    images = as_float([torch.from_numpy(image) for image in indexed(reference, "train_image_")])
    targets = [
        {
            "boxes": torch.from_numpy(reference[f"train_boxes_{i}"]),
            "labels": torch.from_numpy(reference[f"train_labels_{i}"]),
            "masks": torch.from_numpy(reference[f"train_masks_{i}"]),
        }
        for i in range(len(images))
    ]
    steps = islice(training_steps(model, images, targets), CHECKED_STEPS)
    losses = np.array([[step[name] for name in LOSS_NAMES] for step in steps])
    expected_losses = reference["train_losses"][:CHECKED_STEPS]
    assert losses.shape == expected_losses.shape
    np.testing.assert_allclose(losses, expected_losses, rtol=0, atol=LOSS_ATOL)

    initial = weights(reference, "init")
    moved = max(max_abs(value.numpy(), initial[name].numpy()) for name, value in model.state_dict().items())
    assert moved > 1e-2, "training did not move the weights: the comparison would prove nothing"
    worst_weight = 0.0
    for name, expected in weights(reference, "checked").items():
        actual = model.state_dict()[name]
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=0, atol=WEIGHT_ATOL, err_msg=name)
        worst_weight = max(worst_weight, max_abs(actual.numpy(), expected.numpy()))
    print(
        f"training max abs difference over {CHECKED_STEPS} steps: losses"
        f" {max_abs(losses, expected_losses):.1e}, weights {worst_weight:.1e}"
    )
