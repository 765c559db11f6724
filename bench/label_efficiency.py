"""How many human labels does each selection strategy need? Fashion-MNIST, same learner throughout.

The learner is fixed for every strategy, seed and round: multinomial logistic regression (L-BFGS,
L2 1e-3) on the pooled ImageNet MobileNetV2 features that ``visionloop prelabel`` stores as
embeddings (64 px input, computed once; the features are standardised). Fine-tuning the whole
network every round would take hours per strategy on a CPU; a fixed learner makes strategies the
only difference.

Protocol, per seed: the same 100 random seed labels for every strategy, then rounds of
``--batch`` labels chosen by the strategy from the 60k training images (an oracle reveals the
true class), until the test accuracy reaches 95% of what the learner gets with all 60k labels
(on the 10k test split) or ``--max-labels`` is spent. A strategy's figure is the labels used at
that point. The diversity strategies (k-center, hybrid) measure distances on a 64-dimensional
PCA of the features.

Target: the best visionloop strategy needs <= 0.6x the labels of random selection (mean over
seeds). Printed as PASS/FAIL; nothing asserts.

Usage::

    .venv/bin/python bench/label_efficiency.py [--seeds 3] [--batch 200] [--max-labels 6000]
        [--strategies random,least-confidence,margin,entropy,k-center,hybrid] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from visionloop.active.strategies import Candidates, select
from visionloop.active.uncertainty import probability_uncertainty
from visionloop.datasets import fashion_mnist
from visionloop.models.classifier import build_classifier
from visionloop.models.embeddings import capture_embeddings
from visionloop.tasks.classification import ClassifierFamily
from visionloop.tasks.preprocess import normalised_tensor

TARGET_RATIO = 0.6
SEED_LABELS = 100
IMAGE_SIDE = 64
PCA_DIMS = 64
DEFAULT_STRATEGIES = "random,least-confidence,margin,entropy,k-center,hybrid"
Array = npt.NDArray[np.float32]


def embed(images: npt.NDArray[np.uint8], batch: int = 256) -> Array:
    """Pooled MobileNetV2 (ImageNet) features, exactly what pre-labeling stores per image."""
    network, _ = build_classifier("mobilenet_v2", 10, "imagenet")
    network.eval()
    source = ClassifierFamily().embedding_source(network)
    rows: list[Array] = []
    with torch.inference_mode(), capture_embeddings(source) as captured:
        for start in range(0, len(images), batch):
            grey = images[start : start + batch]
            tensors = [normalised_tensor(np.repeat(g[:, :, None], 3, axis=2), IMAGE_SIDE) for g in grey]
            network(torch.stack(tensors))
            rows.append(captured.pop())
    return np.concatenate(rows)


def cached_features(workdir: Path) -> tuple[Array, npt.NDArray[np.int64], Array, npt.NDArray[np.int64]]:
    path = workdir / f"fashion-mnist-mobilenet_v2-{IMAGE_SIDE}px.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return data["train"], data["train_labels"], data["test"], data["test_labels"]
    train_images, train_labels = fashion_mnist.load("train")
    test_images, test_labels = fashion_mnist.load("test")
    started = time.perf_counter()
    train, test = embed(train_images), embed(test_images)
    print(f"embedded 70,000 images in {time.perf_counter() - started:.0f} s", flush=True)
    np.savez(path, train=train, train_labels=train_labels, test=test, test_labels=test_labels)
    return train, train_labels.astype(np.int64), test, test_labels.astype(np.int64)


class Learner:
    """Multinomial logistic regression with L2, fitted by full-batch L-BFGS (deterministic)."""

    def __init__(self, classes: int, weight_decay: float = 1e-3, iterations: int = 100) -> None:
        self.classes = classes
        self.weight_decay = weight_decay
        self.iterations = iterations
        self.linear: torch.nn.Linear | None = None

    def fit(self, features: Array, labels: npt.NDArray[np.int64]) -> Learner:
        x, y = torch.from_numpy(features), torch.from_numpy(labels)
        linear = torch.nn.Linear(x.shape[1], self.classes)
        torch.nn.init.zeros_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
        optimizer = torch.optim.LBFGS(
            linear.parameters(), max_iter=self.iterations, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(linear(x), y)
            loss = loss + self.weight_decay * linear.weight.square().sum() / 2
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        optimizer.step(closure)  # type: ignore[no-untyped-call]
        self.linear = linear
        return self

    def probabilities(self, features: Array) -> npt.NDArray[np.float64]:
        if self.linear is None:
            raise RuntimeError("fit the learner first")
        with torch.no_grad():
            return torch.softmax(self.linear(torch.from_numpy(features)), dim=1).double().numpy()


def pca(features: Array, dims: int) -> Array:
    centred = torch.from_numpy(features - features.mean(axis=0))
    _, _, components = torch.pca_lowrank(centred, q=dims, center=False, niter=4)
    return (centred @ components).numpy().astype(np.float32)


def labels_to_target(
    strategy: str,
    seed: int,
    features: Array,
    reduced: Array,
    labels: npt.NDArray[np.int64],
    test: Array,
    test_labels: npt.NDArray[np.int64],
    target: float,
    batch: int,
    max_labels: int,
) -> tuple[int | None, list[tuple[int, float]]]:
    rng = np.random.default_rng(seed)
    labelled = rng.choice(len(features), SEED_LABELS, replace=False)
    is_labelled = np.zeros(len(features), bool)
    is_labelled[labelled] = True
    curve: list[tuple[int, float]] = []
    while True:
        chosen = np.flatnonzero(is_labelled)
        learner = Learner(10).fit(features[chosen], labels[chosen])
        accuracy = float((learner.probabilities(test).argmax(axis=1) == test_labels).mean())
        curve.append((len(chosen), accuracy))
        if accuracy >= target:
            return len(chosen), curve
        if len(chosen) + batch > max_labels:
            return None, curve
        pool = np.flatnonzero(~is_labelled)
        candidates = Candidates(
            uncertainty=probability_uncertainty(learner.probabilities(features[pool])),
            embeddings=reduced[pool],
            labelled_embeddings=reduced[chosen],
        )
        picks = select(candidates, strategy, batch, seed=seed * 1000 + len(chosen))
        is_labelled[pool[picks]] = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200, help="labels added per round")
    parser.add_argument("--max-labels", type=int, default=6000)
    parser.add_argument("--strategies", default=DEFAULT_STRATEGIES)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not fashion_mnist.available():
        print("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist", file=sys.stderr)
        return 1
    strategies = [name.strip() for name in args.strategies.split(",") if name.strip()]
    print(
        "visionloop label-efficiency benchmark (Fashion-MNIST, fixed linear learner on MobileNetV2 features)"
    )
    print("=" * 96)
    features, labels, test, test_labels = cached_features(args.workdir)
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    features, test = (features - mean) / scale, (test - mean) / scale
    started = time.perf_counter()
    full = Learner(10).fit(features, labels)
    full_accuracy = float((full.probabilities(test).argmax(axis=1) == test_labels).mean())
    target = 0.95 * full_accuracy
    print(
        f"all 60,000 labels: test accuracy {full_accuracy:.4f} ({time.perf_counter() - started:.0f} s); "
        f"target = 95% of it = {target:.4f}"
    )
    reduced = pca(features, PCA_DIMS)
    needed: dict[str, list[int | None]] = {name: [] for name in strategies}
    curves: dict[str, list[list[tuple[int, float]]]] = {name: [] for name in strategies}
    for seed in range(args.seeds):
        for name in strategies:
            started = time.perf_counter()
            count, curve = labels_to_target(
                name, seed, features, reduced, labels, test, test_labels, target, args.batch, args.max_labels
            )
            needed[name].append(count)
            curves[name].append(curve)
            shown = "not reached" if count is None else f"{count} labels"
            print(
                f"seed {seed} {name:<17} {shown:>14} (final accuracy {curve[-1][1]:.4f}, "
                f"{time.perf_counter() - started:.0f} s)",
                flush=True,
            )

    def mean_needed(name: str) -> float:
        values = [args.max_labels + args.batch if v is None else v for v in needed[name]]
        return float(np.mean(values))

    print(
        f"\nlabels to reach {target:.4f} test accuracy (mean over {args.seeds} seeds; "
        f"'not reached' counts as {args.max_labels + args.batch})"
    )
    random_mean = mean_needed("random") if "random" in needed else float("nan")
    for name in strategies:
        ratio = mean_needed(name) / random_mean
        print(f"  {name:<17} {mean_needed(name):>8.0f}   {ratio:.2f}x random   per seed: {needed[name]}")
    others = [name for name in strategies if name != "random"]
    if others and "random" in needed:
        best = min(others, key=mean_needed)
        ratio = mean_needed(best) / random_mean
        verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        print(
            f"\nbest strategy {best}: {ratio:.2f}x the labels of random (target <= {TARGET_RATIO}): {verdict}"
        )
    if args.json:
        print(
            json.dumps({"full_accuracy": full_accuracy, "target": target, "needed": needed, "curves": curves})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
