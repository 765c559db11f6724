"""Calibrated auto-labeling on Fashion-MNIST: coverage and realised accuracy, over repeated trials.

Each trial draws a fresh random 10% of the 60k training images as the human-labelled set: half
trains the learner, half is the calibration set that ``calibrate_thresholds`` (the code behind
``visionloop autolabel``) certifies per-class thresholds on, at a target accuracy of 0.95 with
95% confidence. The thresholds then auto-accept the learner's labels on the other 90% of the
pool, and the hidden true labels measure what was accepted: coverage (accepted share of the
unlabelled 90%) and realised accuracy. The learner is the one ``bench/label_efficiency.py`` uses
(logistic regression on pooled ImageNet MobileNetV2 features of the images, standardised).

Targets: mean coverage >= 60%, and the realised accuracy meets 0.95 in >= 95% of trials (the
violation rate is printed). Nothing asserts; the exit code is 0 unless something crashes.

Usage::

    .venv/bin/python bench/autolabel.py [--trials 40] [--labelled 0.1] [--target 0.95]
        [--confidence 0.95] [--global] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from visionloop.active.calibration import calibrate_thresholds
from visionloop.datasets import fashion_mnist

sys.path.insert(0, str(Path(__file__).parent))
from label_efficiency import Learner, cached_features  # the shared learner and features

COVERAGE_TARGET = 0.60
VIOLATION_TARGET = 0.05


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--labelled", type=float, default=0.10, help="share of the pool humans label")
    parser.add_argument("--target", type=float, default=0.95, help="target accuracy of auto-labels")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument(
        "--global", dest="per_class", action="store_false", help="one threshold, not per class"
    )
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not fashion_mnist.available():
        print("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist", file=sys.stderr)
        return 1
    print("visionloop calibrated auto-labeling benchmark (Fashion-MNIST)")
    print("=============================================================")
    features, labels, _, _ = cached_features(args.workdir)
    features = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-6)
    count = len(features)
    human = int(args.labelled * count)
    print(
        f"pool {count} images; per trial {human} human labels ({human // 2} train, {human - human // 2} "
        f"calibrate); target accuracy {args.target} with {args.confidence:.0%} confidence, "
        f"{'per-class' if args.per_class else 'global'} thresholds"
    )
    rows = []
    for trial in range(args.trials):
        started = time.perf_counter()
        rng = np.random.default_rng(trial)
        order = rng.permutation(count)
        train, calibrate, rest = order[: human // 2], order[human // 2 : human], order[human:]
        learner = Learner(10).fit(features[train], labels[train])
        calibration_probabilities = learner.probabilities(features[calibrate])
        predicted = calibration_probabilities.argmax(axis=1)
        calibration = calibrate_thresholds(
            calibration_probabilities.max(axis=1),
            predicted == labels[calibrate],
            target_accuracy=args.target,
            confidence=args.confidence,
            groups=[str(c) for c in predicted] if args.per_class else None,
        )
        rest_probabilities = learner.probabilities(features[rest])
        rest_predicted = rest_probabilities.argmax(axis=1)
        rest_scores = rest_probabilities.max(axis=1)
        accepted = np.array(
            [
                calibration.accepts(str(c) if args.per_class else None, float(s))
                for c, s in zip(rest_predicted, rest_scores, strict=True)
            ]
        )
        coverage = float(accepted.mean())
        realised = (
            float((rest_predicted[accepted] == labels[rest][accepted]).mean()) if accepted.any() else 1.0
        )
        model_accuracy = float((rest_predicted == labels[rest]).mean())
        rows.append(
            {"trial": trial, "coverage": coverage, "accuracy": realised, "model_accuracy": model_accuracy}
        )
        print(
            f"trial {trial:>3}: model accuracy {model_accuracy:.4f}, auto-labels cover {coverage:.1%} "
            f"at accuracy {realised:.4f} ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    coverages = np.array([row["coverage"] for row in rows])
    accuracies = np.array([row["accuracy"] for row in rows])
    violations = float((accuracies < args.target).mean())
    print(
        f"\nover {args.trials} trials: mean coverage {coverages.mean():.1%} (min {coverages.min():.1%}), "
        f"realised accuracy mean {accuracies.mean():.4f} (min {accuracies.min():.4f}), "
        f"violation rate {violations:.1%}"
    )
    print(
        f"coverage >= {COVERAGE_TARGET:.0%}: {'PASS' if coverages.mean() >= COVERAGE_TARGET else 'FAIL'}; "
        f"target met in >= {1 - VIOLATION_TARGET:.0%} of trials: "
        f"{'PASS' if violations <= VIOLATION_TARGET else 'FAIL'}"
    )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
