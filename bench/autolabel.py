"""Calibrated auto-labeling on Fashion-MNIST: coverage and realised accuracy, over repeated trials.

The pool is the 60k Fashion-MNIST training images (Debian's dataset-fashion-mnist). Humans label
10% of it: 3,000 random images train the model and, in each trial, 3,000 more, drawn at random
from the rest, are the calibration set on which ``calibrate_thresholds`` (the code behind
``visionloop autolabel``) certifies a threshold for a target accuracy of 0.95 with 95%
confidence. The threshold then auto-accepts the model's labels on the other 90% of the pool and
the hidden true labels measure what was accepted: coverage (accepted share of that 90%) and
realised accuracy. The model is fixed across trials; the calibration draw is what the guarantee
is about, so it is redrawn each time.

Two learners:

  finetune (default)  the user's path: PNGs ingested into a project, ``train_project`` fine-tunes
                      the ImageNet MobileNetV2 on the 3,000 labelled images, ``prelabel`` predicts
                      the rest; one trial is also run through ``autolabel`` itself, which must
                      accept exactly as many items as the trial computed
  linear              the fixed learner of bench/label_efficiency.py (logistic regression on
                      frozen ImageNet features): quick, and weaker

Targets: mean coverage >= 60%, and the realised accuracy meets 0.95 in >= 95% of trials (the
violation rate is printed). Nothing asserts; the exit code is 0 unless something crashes.

Usage::

    .venv/bin/python bench/autolabel.py [--learner finetune|linear] [--trials 200] [--labelled 0.1]
        [--target 0.95] [--confidence 0.95] [--image-size 64] [--epochs 6] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from visionloop.active.autolabel import AutolabelOptions, autolabel
from visionloop.active.calibration import calibrate_thresholds
from visionloop.active.prelabel import PrelabelOptions, prelabel
from visionloop.core.labels import ClassLabel
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.datasets import fashion_mnist
from visionloop.ingest import IngestOptions, ingest
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.storage import Filesystem
from visionloop.training.config import load_train_config
from visionloop.training.run import train_project

sys.path.insert(0, str(Path(__file__).parent))
from label_efficiency import Learner, cached_features  # the shared fixed learner and features

COVERAGE_TARGET = 0.60
VIOLATION_TARGET = 0.05
CALIBRATION_SPLIT = "calib"

Predictions = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]


def finetuned_predictions(args: argparse.Namespace, train: npt.NDArray[np.int64]) -> tuple[Predictions, dict]:
    """(predicted class, score, true class) for every image not in ``train``, from a model that
    visionloop fine-tuned on ``train``; cached in the work folder."""
    cache = args.workdir / f"autolabel-finetune-{args.image_size}px-{args.epochs}ep-{len(train)}.npz"
    images, labels = fashion_mnist.load("train")
    rest = np.setdiff1d(np.arange(len(images)), train)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            saved = {key: data[key] for key in data.files}
        info = json.loads(str(saved["info"]))
        return (saved["predicted"], saved["scores"], labels[rest].astype(np.int64)), info
    root = args.workdir / "autolabel-project"
    shutil.rmtree(root, ignore_errors=True)  # a run that stopped before caching its predictions
    schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=list(fashion_mnist.CLASSES))
    project = Project.create(root / "project", ProjectConfig(name="autolabel-bench", labels=schema))
    started = time.perf_counter()
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for index, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"{index:05d}.png", compress_level=1)
    with project.open_catalog() as catalog:
        ingest(catalog, Filesystem(str(folder)), IngestOptions(split="train"))
        ids = catalog.item_ids_for_uris([str(folder / f"{index:05d}.png") for index in range(len(images))])
        item_of = np.array([ids[str(folder / f"{index:05d}.png")] for index in range(len(images))])
        catalog.add_annotations(
            [
                (
                    int(item_of[i]),
                    ClassLabel(fashion_mnist.CLASSES[int(labels[i])]),
                    Provenance.human("bench"),
                )
                for i in train
            ]
        )
    setup = time.perf_counter() - started
    print(f"wrote, ingested and labelled the pool in {setup:.0f} s", flush=True)
    config = load_train_config(
        project.config.train,
        None,
        [
            "model.backbone=mobilenet_v2",
            "model.weights=imagenet",
            f"model.image_size={args.image_size}",
            f"optim.epochs={args.epochs}",
            "optim.batch_size=64",
            "optim.lr=0.05",
            "augment.crop_scale=1.0",
            "early_stopping.patience=null",
            "data.val_fraction=0.05",
        ],
    )
    started = time.perf_counter()
    trained = train_project(project, config)
    train_seconds = time.perf_counter() - started
    print(f"fine-tuned on {trained.train_items} images in {train_seconds:.0f} s", flush=True)
    started = time.perf_counter()
    report = prelabel(project, trained.run_id, PrelabelOptions(batch_size=256, workers=1))
    print(
        f"pre-labelled {report.predicted} images in {time.perf_counter() - started:.0f} s "
        f"({report.images_per_second:.0f} img/s, runtime {report.runtime})",
        flush=True,
    )
    with project.open_catalog() as catalog:
        predictions = catalog.run_predictions(report.run_id)
    class_index = {name: i for i, name in enumerate(fashion_mnist.CLASSES)}
    predicted = np.empty(len(rest), np.int64)
    scores = np.empty(len(rest), np.float64)
    for position, index in enumerate(rest):
        label, score = predictions[int(item_of[index])]
        assert isinstance(label, ClassLabel)
        predicted[position] = class_index[label.class_name]
        scores[position] = float(score if score is not None else label.score or 0.0)
    info = {
        "project": str(project.root),
        "prelabel_run": report.run_id,
        "item_of_rest": [int(item_of[i]) for i in rest],
        "train_seconds": train_seconds,
    }
    np.savez(cache, predicted=predicted, scores=scores, info=np.array(json.dumps(info)))
    return (predicted, scores, labels[rest].astype(np.int64)), info


def linear_predictions(args: argparse.Namespace, train: npt.NDArray[np.int64]) -> Predictions:
    features, labels, _, _ = cached_features(args.workdir)
    features = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-6)
    rest = np.setdiff1d(np.arange(len(features)), train)
    learner = Learner(10).fit(features[train], labels[train])
    probabilities = learner.probabilities(features[rest])
    return probabilities.argmax(axis=1), probabilities.max(axis=1).astype(np.float64), labels[rest]


def through_autolabel(
    args: argparse.Namespace, info: dict, calibrate: npt.NDArray[np.int64], predictions: Predictions
) -> int:
    """Run ``visionloop autolabel`` (dry run) with ``calibrate`` as the human calibration set."""
    _, _, truth = predictions
    project = Project.load(Path(info["project"]))
    items = [info["item_of_rest"][int(i)] for i in calibrate]
    with project.open_catalog() as catalog:
        catalog.add_annotations(
            [
                (item, ClassLabel(fashion_mnist.CLASSES[int(truth[i])]), Provenance.human("bench"))
                for item, i in zip(items, calibrate, strict=True)
            ]
        )
        catalog.assign_split(items, CALIBRATION_SPLIT)
    options = AutolabelOptions(
        target_accuracy=args.target,
        confidence=args.confidence,
        calibration_split=CALIBRATION_SPLIT,
        dry_run=True,
    )
    return autolabel(project, options, prelabel_run=info["prelabel_run"]).accepted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learner", choices=["finetune", "linear"], default="finetune")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--labelled", type=float, default=0.10, help="share of the pool humans label")
    parser.add_argument("--target", type=float, default=0.95, help="target accuracy of auto-labels")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--image-size", type=int, default=64, help="finetune: model input side")
    parser.add_argument("--epochs", type=int, default=6, help="finetune: training epochs")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not fashion_mnist.available():
        print("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist", file=sys.stderr)
        return 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    print("visionloop calibrated auto-labeling benchmark (Fashion-MNIST)")
    print("=============================================================")
    count = len(fashion_mnist.load("test")[1]) * 6  # 60k training images
    human = int(args.labelled * count)
    train = np.sort(np.random.default_rng(12345).permutation(count)[: human // 2])
    info: dict = {}
    if args.learner == "finetune":
        predictions, info = finetuned_predictions(args, train)
    else:
        predictions = linear_predictions(args, train)
    predicted, scores, truth = predictions
    correct = predicted == truth
    print(
        f"learner {args.learner}: {len(train)} training labels, accuracy on the other {len(truth)} images "
        f"{correct.mean():.4f}; per trial {human - len(train)} calibration labels (total human labels "
        f"{human} = {args.labelled:.0%} of the pool); target accuracy {args.target} with "
        f"{args.confidence:.0%} confidence, one global threshold"
    )
    rows = []
    calibrate_size = human - len(train)
    for trial in range(args.trials):
        order = np.random.default_rng(trial).permutation(len(truth))
        calibrate, rest = order[:calibrate_size], order[calibrate_size:]
        calibration = calibrate_thresholds(
            scores[calibrate], correct[calibrate], target_accuracy=args.target, confidence=args.confidence
        )
        threshold = calibration.threshold_for(None)
        accepted = scores[rest] >= threshold if threshold is not None else np.zeros(len(rest), bool)
        coverage = float(accepted.mean())
        realised = float(correct[rest][accepted].mean()) if accepted.any() else 1.0
        rows.append({"trial": trial, "coverage": coverage, "accuracy": realised, "threshold": threshold})
        if trial == 0 and args.learner == "finetune":
            through = through_autolabel(args, info, calibrate, predictions)
            print(
                f"trial 0 through 'visionloop autolabel': {through} items accepted, the trial computed "
                f"{int(accepted.sum())} ({'same' if through == int(accepted.sum()) else 'DIFFERENT'})"
            )
    coverages = np.array([row["coverage"] for row in rows])
    accuracies = np.array([row["accuracy"] for row in rows])
    violations = float((accuracies < args.target).mean())
    print(
        f"\nover {args.trials} trials: coverage mean {coverages.mean():.1%} (min {coverages.min():.1%}, "
        f"max {coverages.max():.1%}); realised accuracy mean {accuracies.mean():.4f} "
        f"(min {accuracies.min():.4f}); violation rate {violations:.1%}"
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
