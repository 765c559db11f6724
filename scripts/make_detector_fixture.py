"""Write a reference run of a small Mask R-CNN made with torchvision's native operators.

Run once with an environment whose torchvision extension loads (the CUDA build of torch runs on
CPU too; see ``scripts/make_op_fixtures.py`` for creating it)::

    /tmp/tv-native/bin/python scripts/make_detector_fixture.py

It must not import visionloop: the architecture, the synthetic batch and the training loop come
from ``tests/models/tiny_detector.py``, which needs only torch and torchvision. The script builds
the model under ``torch.manual_seed(0)``, trains it with SGD on the fixed batch (torch's RNG is
seeded before each step; the backward passes run ``roi_align``'s native backward), then runs it in
eval mode on the test images.

The test re-runs the first ``CHECKED_STEPS`` steps with the fallback operators, whose results
differ from the native ones in the last bits. Before writing anything the script checks that the
reference is not on a knife edge: weights perturbed by a relative 1e-7 must reproduce those
steps' losses and the eval outputs well within the test's tolerances, and the kept detection
scores must be at least ``--min-score-gap`` apart (so order and top-k cannot flip).

It writes ``tests/models/fixtures/maskrcnn_reference.npz`` (``np.savez_compressed``, plain arrays
only, loadable with ``allow_pickle=False``). Keys:

* ``init/<name>``, ``checked/<name>`` and ``final/<name>``: the state dict before training,
  after ``checked_steps`` (0-d) steps and after all of them
* ``train_image_<i>`` (uint8, (3, H, W); the model takes them divided by 255),
  ``train_boxes_<i>``, ``train_labels_<i>``, ``train_masks_<i>``: the training batch
* ``train_losses`` (steps, 5), columns named by ``loss_names``; ``train_seeds`` (steps,)
* ``test_image_<j>`` (uint8) and the trained model's eval outputs on it: ``out_boxes_<j>``,
  ``out_labels_<j>``, ``out_scores_<j>`` and ``out_masks_<j>`` (pasted mask probabilities,
  (K, 1, H, W))
"""

from __future__ import annotations

import argparse
import sys
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torchvision  # the native extension must load: this script makes the reference data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "models"))

from tiny_detector import (  # noqa: E402
    CHECKED_STEPS,
    LOSS_NAMES,
    TRAIN_STEPS,
    as_float,
    build_tiny_maskrcnn,
    eval_images,
    step_seed,
    synthetic_batch,
    training_steps,
)

DEFAULT_OUT = ROOT / "tests/models/fixtures/maskrcnn_reference.npz"
# Native and fallback roi_align differ by ~1e-6; nearer scores could swap order or drop out.
MIN_SCORE_GAP = 1e-5
PERTURBATION = 1e-7
# Largest difference a perturbed run may show; the test allows 1e-4.
ROBUSTNESS_LIMIT = 2e-5

Outputs = list[dict[str, torch.Tensor]]


def state_arrays(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {f"{prefix}/{name}": value.detach().numpy().copy() for name, value in state.items()}


def perturbed(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        name: value * (1 + PERTURBATION * torch.randn(value.shape, generator=generator))
        if value.is_floating_point()
        else value.clone()
        for name, value in state.items()
    }


def model_from(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_tiny_maskrcnn()
    model.load_state_dict(state)
    return model


def evaluate(model: torch.nn.Module, images: list[torch.Tensor], detections: int | None = None) -> Outputs:
    heads = model.roi_heads
    kept = heads.detections_per_img
    heads.detections_per_img = detections or kept
    model.eval()
    try:
        with torch.no_grad():
            return model(as_float(images))  # type: ignore[no-any-return]
    finally:
        heads.detections_per_img = kept


def smallest_score_gap(model: torch.nn.Module, images: list[torch.Tensor]) -> float:
    """Smallest gap between neighbouring scores among the kept detections and the first dropped one."""
    kept = model.roi_heads.detections_per_img
    smallest = float("inf")
    for output in evaluate(model, images, detections=10_000):
        scores = output["scores"][: kept + 1]
        if scores.numel() > 1:
            smallest = min(smallest, float((scores[:-1] - scores[1:]).min()))
    return smallest


def check_robustness(
    init: dict[str, torch.Tensor],
    final: dict[str, torch.Tensor],
    batch: tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]],
    losses: np.ndarray,
    evaluation: list[torch.Tensor],
    outputs: Outputs,
) -> None:
    images, targets = batch
    for seed in (1, 2):
        model = model_from(perturbed(init, seed))
        steps = islice(training_steps(model, as_float(images), targets), CHECKED_STEPS)
        again = np.array([[step[name] for name in LOSS_NAMES] for step in steps])
        loss_diff = float(np.abs(again - losses[:CHECKED_STEPS]).max())
        worst = 0.0
        for output, expected in zip(
            evaluate(model_from(perturbed(final, seed)), evaluation), outputs, strict=True
        ):
            if not torch.equal(output["labels"], expected["labels"]):
                raise SystemExit(f"perturbed weights (seed {seed}) change the detected labels")
            for key in ("boxes", "scores", "masks"):
                worst = max(worst, float((output[key] - expected[key]).abs().max()))
        print(f"perturbed by {PERTURBATION:.0e} (seed {seed}): losses {loss_diff:.1e}, outputs {worst:.1e}")
        if max(loss_diff, worst) > ROBUSTNESS_LIMIT:
            raise SystemExit("the reference is too sensitive to last-bit differences: change the set-up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--min-score-gap", type=float, default=MIN_SCORE_GAP)
    args = parser.parse_args()
    if not torchvision.extension._has_ops():
        raise SystemExit("torchvision's native extension did not load: use the CUDA build of torch")
    torch.use_deterministic_algorithms(True)
    arrays: dict[str, np.ndarray] = {}

    torch.manual_seed(0)
    model = build_tiny_maskrcnn()
    init = {name: value.clone() for name, value in model.state_dict().items()}
    arrays.update(state_arrays("init", init))
    images, targets = synthetic_batch(torch.Generator().manual_seed(1))
    for i, (image, target) in enumerate(zip(images, targets, strict=True)):
        arrays[f"train_image_{i}"] = image.numpy()
        arrays[f"train_boxes_{i}"] = target["boxes"].numpy()
        arrays[f"train_labels_{i}"] = target["labels"].numpy()
        arrays[f"train_masks_{i}"] = target["masks"].numpy()

    history: list[dict[str, float]] = []
    for losses in training_steps(model, as_float(images), targets):
        history.append(losses)
        if len(history) == CHECKED_STEPS:
            arrays.update(state_arrays("checked", model.state_dict()))
        print(f"step {len(history) - 1:2d}: " + "  ".join(f"{k[5:]} {v:.4f}" for k, v in losses.items()))
    final = {name: value.clone() for name, value in model.state_dict().items()}
    arrays.update(state_arrays("final", final))
    arrays["loss_names"] = np.array(LOSS_NAMES)
    arrays["train_losses"] = np.array([[step[name] for name in LOSS_NAMES] for step in history])
    arrays["checked_steps"] = np.array(CHECKED_STEPS, np.int64)
    arrays["train_seeds"] = np.array([step_seed(step) for step in range(TRAIN_STEPS)], np.int64)

    evaluation = eval_images(images)
    outputs = evaluate(model, evaluation)
    for j, (image, output) in enumerate(zip(evaluation, outputs, strict=True)):
        arrays[f"test_image_{j}"] = image.numpy()
        for key in ("boxes", "labels", "scores", "masks"):
            arrays[f"out_{key}_{j}"] = output[key].numpy()
        print(f"test image {j}: {len(output['scores'])} detections, labels {output['labels'].tolist()}")
        print("  scores " + " ".join(f"{s:.3f}" for s in output["scores"].tolist()))
    gap = smallest_score_gap(model, evaluation)
    print(f"smallest score gap {gap:.1e}")
    if gap < args.min_score_gap:
        raise SystemExit(f"scores too close ({gap:.1e} < {args.min_score_gap}): change the set-up")
    check_robustness(init, final, (images, targets), arrays["train_losses"], evaluation, outputs)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB, {len(arrays)} arrays)")


if __name__ == "__main__":
    main()
