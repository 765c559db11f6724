"""Calibrated auto-labeling of objects (detection or keypoints): coverage, realised accuracy and
realised mean IoU / OKS, over repeated calibration draws.

The data are the scenes of real Fashion-MNIST items that ``bench/train_tasks.py`` builds (exact
boxes and keypoints by construction), all drawn from Fashion-MNIST's train split. Scenes
``0 .. train-1`` are imported as human labels and train the model once, through
``train_project`` with the settings ``train_tasks.py`` uses (Faster R-CNN or Keypoint R-CNN on
MobileNetV2 + FPN). The next ``calibrate + pool`` scenes (new compositions: every scene draws
from its own seed) are ingested unlabelled and pre-labelled with ``prelabel``; their true labels
stay hidden in ``truth.json``. The project, truth and predictions are kept in ``--workdir``, so
a second run with the same work folder skips training and prediction.

Each trial fixes the model and redraws the calibration set, which is what the guarantee is
about: a random ``--calibrate`` of the predicted scenes get their true labels (as a human
would give them) and the rest form the pool. As ``visionloop autolabel`` does, a prediction
becomes the label that would be accepted (``candidate_label``: objects scoring at least
``--object-score``), its confidence is ``item_confidence`` of that label, and it is correct
when ``agrees`` with the truth (every object matched one-to-one, same class, at IoU or OKS >=
``--match``, nothing left over); ``calibrate_thresholds`` certifies one global threshold at
``--target`` accuracy with ``--confidence``. The hidden truth then measures the accepted pool
items:

  coverage            accepted share of the pool
  realised accuracy   share of accepted items that agree with the truth (the certified quantity)
  mean IoU / OKS      over the object slots of accepted items: each truth object matched to a
                      prediction of its class (greedy by score, as ``agrees`` matches) adds its
                      IoU (detection) or OKS (keypoints); an unmatched truth object or a left-over
                      prediction adds 0
  violation rate      share of trials whose realised accuracy is below the target

Once, the real ``autolabel()`` runs (dry run) on a copy of the project in which one trial's
calibration scenes carry human labels, and its accepted count is compared with the bench's own
computation on the same calibration items: the bench measures the product's path. autolabel
also calibrates on the training scenes held out for validation (human-labelled, not trained
on), so the comparison includes them, and it uses the first draw for which that calibration
accepts anything (trial 0 if none does).

Targets, as for ``bench/autolabel.py``: mean coverage >= 60%, and the realised accuracy meets
the target in >= 95% of trials. Nothing asserts; the exit code is 0 unless something crashes.

Usage::

    .venv/bin/python bench/autolabel_objects.py [--task detection|keypoints] [--train 400]
        [--calibrate 600] [--pool 2000] [--trials 40] [--target 0.95] [--confidence 0.95]
        [--match 0.5] [--object-score 0.5] [--epochs N] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from visionloop.active.autolabel import AutolabelOptions, agrees, autolabel, candidate_label
from visionloop.active.calibration import Calibration, calibrate_thresholds
from visionloop.active.prelabel import PrelabelOptions, prelabel
from visionloop.active.uncertainty import item_confidence
from visionloop.core.labels import ObjectLabels, label_from_dict
from visionloop.core.provenance import Provenance, ProvenanceKind
from visionloop.core.schema import TaskType
from visionloop.datasets import fashion_mnist
from visionloop.datasets.scenes import Scene, fashion_scenes, write_scene_folder
from visionloop.ingest import IngestOptions, ingest
from visionloop.metrics.matching import box_iou, keypoint_oks
from visionloop.models.artifact import read_training_items
from visionloop.project import Project
from visionloop.storage import Filesystem, atomic_write_local
from visionloop.training.config import load_train_config
from visionloop.training.run import train_project

sys.path.insert(0, str(Path(__file__).parent))
from train_tasks import BENCH_TASKS, CLASSES, BenchTask, build_project  # the scenes and models

COVERAGE_TARGET = 0.60
VIOLATION_TARGET = 0.05
TASKS = ("detection", "keypoints")
MANIFEST = "bench.json"
TRUTH = "truth.json"
FloatArray = npt.NDArray[np.float64]


@dataclass
class Prepared:
    """The trained model's predictions and the hidden truth of the unlabelled scenes."""

    project: Project
    manifest: dict[str, Any]
    items: list[int]  # item ids of the unlabelled scenes, in scene order
    truth: dict[int, ObjectLabels]
    predicted: dict[int, ObjectLabels]
    cached: bool


@dataclass
class Scored:
    """Per unlabelled item, what a calibration or acceptance decision uses and what it earns."""

    confidence: FloatArray  # item_confidence of the candidate label
    correct: npt.NDArray[np.bool_]  # agrees(truth, candidate label) at --match
    similarity: FloatArray  # summed IoU / OKS of the matched object pairs
    slots: FloatArray  # truth objects + left-over predictions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=TASKS, default="detection")
    parser.add_argument("--train", type=int, default=400, help="human-labelled scenes the model trains on")
    parser.add_argument("--calibrate", type=int, default=600, help="human-labelled calibration scenes")
    parser.add_argument("--pool", type=int, default=2000, help="unlabelled scenes to auto-label")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--target", type=float, default=0.95, help="target accuracy of auto-labels")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--match", type=float, default=0.5, help="IoU (detection) or OKS (keypoints)")
    parser.add_argument("--object-score", type=float, default=0.5, help="objects kept in a label")
    parser.add_argument("--epochs", type=int, default=None, help="default: train_tasks.py's")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "visionloop-autolabel-objects",
        help="keeps the project, truth and predictions for later runs",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if min(args.train, args.calibrate, args.pool, args.trials) < 1:
        parser.error("--train, --calibrate, --pool and --trials must be positive")
    if not fashion_mnist.available():
        print("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist", file=sys.stderr)
        return 1
    bench = BENCH_TASKS[args.task]
    measure = "IoU" if bench.task is TaskType.DETECTION else "OKS"
    title = f"visionloop calibrated auto-labeling benchmark ({args.task}, scenes of Fashion-MNIST items)"
    print(title)
    print("=" * len(title))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; work folder {args.workdir}")
    prepared = prepare(args.workdir / args.task, bench, args)
    if prepared is None:
        return 1
    manifest = prepared.manifest
    origin = "cached from an earlier run" if prepared.cached else "this run"
    print(
        f"model: {bench.family}, {manifest['epochs']} epochs on {manifest['train_items']} scenes "
        f"(+{manifest['val_items']} held out for validation): {manifest['train_seconds']:.0f} s; "
        f"validation {format_metrics(manifest['val_metrics'])} ({origin})"
    )
    print(
        f"pre-label: {len(prepared.items)} unlabelled scenes in {manifest['prelabel_seconds']:.0f} s "
        f"({manifest['prelabel_images_per_second']:.1f} img/s)"
    )
    scored = score_items(prepared, bench.task, args.match, args.object_score)
    overall_accuracy = float(scored.correct.mean())
    print(
        f"over all {len(prepared.items)} predicted scenes: {overall_accuracy:.1%} of items agree with "
        f"the truth at {measure} >= {args.match}; mean {measure} {mean_similarity(scored):.3f}"
    )
    total = args.train + args.calibrate + args.pool
    print(
        f"per trial: {args.calibrate} calibration scenes drawn from the predicted ones, {args.pool} "
        f"in the pool; human labels {args.train + args.calibrate} of {total} scenes "
        f"({(args.train + args.calibrate) / total:.0%}); target accuracy {args.target} with "
        f"{args.confidence:.0%} confidence, one global threshold, objects kept at score >= "
        f"{args.object_score}"
    )
    rows = run_trials(scored, args)
    print_rows(rows, measure)
    coverages = np.array([row["coverage"] for row in rows])
    accuracies = np.array([row["accuracy"] for row in rows])
    similarities = np.array([row["mean_similarity"] for row in rows if row["accepted"]])
    violations = float((accuracies < args.target).mean())
    print(
        f"\nover {args.trials} trials: mean coverage {coverages.mean():.1%} (min {coverages.min():.1%}, "
        f"max {coverages.max():.1%}), realised accuracy mean {accuracies.mean():.4f} "
        f"(min {accuracies.min():.4f}), violation rate {violations:.1%}"
    )
    if len(similarities):
        print(
            f"realised mean {measure} of accepted labels: {similarities.mean():.3f} "
            f"(min over trials {similarities.min():.3f}); all predicted scenes: "
            f"{mean_similarity(scored):.3f}"
        )
    else:
        print(f"realised mean {measure}: n/a, no trial accepted anything")
    print(
        f"coverage >= {COVERAGE_TARGET:.0%}: {'PASS' if coverages.mean() >= COVERAGE_TARGET else 'FAIL'}; "
        f"target met in >= {1 - VIOLATION_TARGET:.0%} of trials: "
        f"{'PASS' if violations <= VIOLATION_TARGET else 'FAIL'}"
    )
    check = product_check(prepared, bench.task, scored, args)
    if args.json:
        print(
            json.dumps(
                {
                    "task": args.task,
                    "model": {key: value for key, value in manifest.items() if key != "settings"},
                    "item_accuracy_all": overall_accuracy,
                    "mean_similarity_all": mean_similarity(scored),
                    "trials": rows,
                    "violation_rate": violations,
                    "product_check": check,
                }
            )
        )
    return 0


def prepare(root: Path, bench: BenchTask, args: argparse.Namespace) -> Prepared | None:
    """Train and pre-label once; later runs with the same settings read what was kept."""
    needed = args.calibrate + args.pool
    settings = {
        "task": bench.name,
        "train": args.train,
        "epochs": args.epochs or bench.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
    manifest_path = root / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest["settings"] != settings:
            print(
                f"{root} holds a run with other settings ({manifest['settings']}); pass another --workdir",
                file=sys.stderr,
            )
            return None
        if manifest["unlabelled"] < needed:
            print(
                f"{root} holds {manifest['unlabelled']} predicted scenes, fewer than --calibrate + "
                f"--pool = {needed}; pass another --workdir",
                file=sys.stderr,
            )
            return None
        return load_prepared(root, manifest, cached=True)
    if root.exists():
        print(
            f"{root} exists but holds no finished run; remove it or pass another --workdir", file=sys.stderr
        )
        return None
    started = time.perf_counter()
    project = build_project(root, bench, args.train, 0, args.seed)
    schema = project.config.labels
    truth: dict[str, dict[str, Any]] = {}

    def recorded(scenes: Iterator[Scene]) -> Iterator[Scene]:
        for index, scene in enumerate(scenes):  # write_scene_folder names them in this order
            truth[f"scene_{index:05d}.png"] = hidden_truth(scene.label).to_dict()
            yield scene

    # Scenes after the training ones: each scene draws from its own (seed, index) generator.
    scenes = islice(
        fashion_scenes(
            args.train + needed,
            size=(bench.image_size, bench.image_size),
            objects=bench.objects,
            scale=(1.0, 2.0),
            classes=CLASSES,
            seed=args.seed,
            split="train",
            with_keypoints=bench.keypoints,
        ),
        args.train,
        None,
    )
    folder = root / "unlabelled"
    write_scene_folder(recorded(scenes), folder, schema)  # its annotations.json is never imported
    atomic_write_local(str(root / TRUTH), json.dumps(truth).encode())
    with project.open_catalog() as catalog:
        ingest(catalog, Filesystem(str(folder / "images")), IngestOptions(split="train"))
    print(f"scenes: {args.train} to train, {needed} unlabelled ({time.perf_counter() - started:.0f} s)")
    epochs = settings["epochs"]
    print(f"training {bench.family} for {epochs} epochs on {args.train} scenes...", flush=True)
    trained = train_project(project, train_config(bench, epochs, args.batch_size, args.seed))
    print("pre-labelling the unlabelled scenes...", flush=True)
    report = prelabel(project, trained.run_id, PrelabelOptions(items="unlabeled"))
    artifact_metrics = trained.result.artifact.metrics or {}
    manifest = {
        "settings": settings,
        "unlabelled": needed,
        "train_run": trained.run_id,
        "prelabel_run": report.run_id,
        "epochs": trained.result.state.epoch,
        "train_items": trained.train_items,
        "val_items": trained.val_items,
        "train_seconds": trained.result.state.train_seconds,
        "val_metrics": {
            key: float(value)
            for key, value in artifact_metrics.items()
            if key.removeprefix("val_") in ("map", "map50", "oks_ap", "pck")
            and isinstance(value, int | float)
        },
        "prelabel_seconds": report.seconds,
        "prelabel_images_per_second": report.images_per_second,
    }
    if report.predicted != needed or report.failed:
        raise RuntimeError(f"pre-labelling predicted {report.predicted} of {needed}: {report.failed[:3]}")
    atomic_write_local(str(manifest_path), json.dumps(manifest, indent=2).encode())
    return load_prepared(root, manifest, cached=False)


def train_config(bench: BenchTask, epochs: int, batch_size: int, seed: int) -> Any:
    """The training settings of ``train_tasks.run_task`` (kept in step with it by hand)."""
    return load_train_config(
        overrides=[
            f"model.family={bench.family}",
            f"model.image_size={bench.image_size}",
            f"optim.epochs={epochs}",
            f"optim.lr={bench.lr}",
            f"optim.optimizer={'adamw' if bench.family == 'heatmap' else 'sgd'}",
            f"optim.batch_size={batch_size}",
            "optim.warmup_steps=20",
            "data.val_fraction=0.1",
            "early_stopping.patience=null",
            "checkpoint.every_steps=1000",
            "device=cpu",
            f"seed={seed}",
        ]
    )


def hidden_truth(label: ObjectLabels) -> ObjectLabels:
    """What the benchmark compares with: boxes, classes and keypoints (masks and the paste record
    are dropped to keep ``truth.json`` small)."""
    return dataclasses.replace(label, masks=None, extra={})


def load_prepared(root: Path, manifest: dict[str, Any], *, cached: bool) -> Prepared:
    project = Project.load(root / "project")
    truth_by_name = json.loads((root / TRUTH).read_text())
    with project.open_catalog() as catalog:
        predictions = catalog.run_predictions(manifest["prelabel_run"])
        by_name = {Path(item.uri).name: item.id for item in catalog.iter_items() if item.id in predictions}
    names = sorted(truth_by_name)[: manifest["unlabelled"]]
    items = [by_name[name] for name in names]
    truth = {by_name[name]: as_objects(label_from_dict(truth_by_name[name])) for name in names}
    predicted = {item: as_objects(predictions[item][0]) for item in items}
    return Prepared(project, manifest, items, truth, predicted, cached)


def as_objects(label: object) -> ObjectLabels:
    if not isinstance(label, ObjectLabels):
        raise TypeError(f"expected object labels, got {type(label).__name__}")
    return label


def score_items(prepared: Prepared, task: TaskType, match: float, object_score: float) -> Scored:
    """Confidence and correctness as ``autolabel`` computes them, plus the matched IoU / OKS."""
    rows = [
        item_scores(task, prepared.truth[item], prepared.predicted[item], match, object_score)
        for item in prepared.items
    ]
    confidence, correct, similarity, slots = (np.array(column) for column in zip(*rows, strict=True))
    return Scored(confidence.astype(np.float64), correct.astype(bool), similarity, slots)


def item_scores(
    task: TaskType, truth: ObjectLabels, predicted: ObjectLabels, match: float, object_score: float
) -> tuple[float, bool, float, float]:
    label = as_objects(candidate_label(predicted, object_score))
    similarity, slots = matched_similarity(task, truth, label)
    return item_confidence(label), agrees(task, truth, label, match), similarity, slots


def matched_similarity(task: TaskType, truth: ObjectLabels, predicted: ObjectLabels) -> tuple[float, float]:
    """Summed IoU (boxes) or OKS (keypoints) of one-to-one same-class pairs, matched greedily by
    predicted score as ``objects_agree`` does, and the object slots: truth objects plus
    left-over predictions (each unmatched one counts 0)."""
    if len(truth) == 0 or len(predicted) == 0:
        return 0.0, float(len(truth) + len(predicted))
    if task is TaskType.KEYPOINTS:
        similarity = keypoint_oks(truth, predicted)
    else:
        similarity = box_iou(truth.boxes, predicted.boxes)
    same_class = np.array(truth.class_names)[:, None] == np.array(predicted.class_names)[None, :]
    similarity = np.where(same_class, similarity, -1.0)
    scores = predicted.scores if predicted.scores is not None else np.ones(len(predicted))
    unmatched = np.ones(len(truth), bool)
    total, matched = 0.0, 0
    for column in np.argsort(-scores, kind="stable").tolist():
        candidates = np.where(unmatched, similarity[:, column], -1.0)
        best = int(np.argmax(candidates))
        if candidates[best] > 0:
            unmatched[best] = False
            total += float(candidates[best])
            matched += 1
    return total, float(len(truth) + len(predicted) - matched)


def mean_similarity(scored: Scored, chosen: npt.NDArray[np.bool_] | None = None) -> float:
    chosen = np.ones(len(scored.slots), bool) if chosen is None else chosen
    slots = float(scored.slots[chosen].sum())
    return float(scored.similarity[chosen].sum()) / slots if slots else 1.0


def calibrate(scored: Scored, calibration: npt.NDArray[np.intp], args: argparse.Namespace) -> Calibration:
    return calibrate_thresholds(
        scored.confidence[calibration],
        scored.correct[calibration],
        target_accuracy=args.target,
        confidence=args.confidence,
    )


def accepted_mask(result: Calibration, confidence: FloatArray) -> npt.NDArray[np.bool_]:
    return np.array([result.accepts(None, float(score)) for score in confidence], dtype=bool)


def run_trials(scored: Scored, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for trial in range(args.trials):
        calibration, pool = draw(trial, len(scored.confidence), args)
        result = calibrate(scored, calibration, args)
        entry = result.thresholds[None]
        accepted = accepted_mask(result, scored.confidence[pool])
        chosen = np.zeros(len(scored.confidence), bool)
        chosen[pool[accepted]] = True
        rows.append(
            {
                "trial": trial,
                "threshold": entry.threshold,
                "calibration_accepted": entry.accepted_items,
                "calibration_errors": entry.accepted_errors,
                "error_bound": entry.error_bound,
                "accepted": int(accepted.sum()),
                "coverage": float(accepted.mean()),
                "accuracy": float(scored.correct[chosen].mean()) if accepted.any() else 1.0,
                "mean_similarity": mean_similarity(scored, chosen) if accepted.any() else None,
                "pool_item_accuracy": float(scored.correct[pool].mean()),
            }
        )
    return rows


def draw(
    trial: int, count: int, args: argparse.Namespace
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Trial ``trial``'s calibration positions and pool positions among the predicted scenes."""
    order = np.random.default_rng(trial).permutation(count)
    return order[: args.calibrate], order[args.calibrate : args.calibrate + args.pool]


def print_rows(rows: list[dict[str, Any]], measure: str) -> None:
    print(
        f"\n{'trial':>5} {'threshold':>9} {'cal acc/err':>11} {'bound':>6} {'accepted':>8} "
        f"{'coverage':>8} {'accuracy':>8} {'mean ' + measure:>8} {'pool acc':>8}"
    )
    for row in rows:
        threshold = "none" if row["threshold"] is None else f"{row['threshold']:.4f}"
        bound = "-" if row["error_bound"] is None else f"{row['error_bound']:.3f}"
        similarity = "n/a" if row["mean_similarity"] is None else f"{row['mean_similarity']:.3f}"
        calibration = f"{row['calibration_accepted']}/{row['calibration_errors']}"
        print(
            f"{row['trial']:>5} {threshold:>9} {calibration:>11} {bound:>6} {row['accepted']:>8} "
            f"{row['coverage']:>8.1%} {row['accuracy']:>8.4f} {similarity:>8} "
            f"{row['pool_item_accuracy']:>8.3f}"
        )
    print(
        "cal acc/err: calibration items at or above the threshold and how many of them were wrong; "
        "bound: their Clopper-Pearson error bound; pool acc: share of all pool items the model gets "
        "right (what accepting everything would give)"
    )


def product_check(
    prepared: Prepared, task: TaskType, scored: Scored, args: argparse.Namespace
) -> dict[str, Any]:
    """Run ``autolabel`` (dry run) on a copy of the project in which one trial's calibration
    scenes have human labels, and compare its accepted count with the bench's computation.

    autolabel calibrates on every human label the model did not train on: the drawn scenes plus
    the training scenes held out for validation. Those are predicted first (the call autolabel
    would make itself), so the bench can pick the first draw whose calibration, with them,
    accepts something (trial 0 when none does): a comparison of two zeros would show little."""
    copy = prepared.project.root.parent / "check"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(prepared.project.root, copy)
    try:
        project = Project.load(copy)
        run_id = prepared.manifest["prelabel_run"]
        with project.open_catalog() as catalog:
            model = Path(str(catalog.get_run(run_id).inputs["model"]))
            trained_on = read_training_items(model) or set()
            held_out = sorted(
                item
                for item, record in catalog.current_annotations().items()
                if record.provenance.kind is ProvenanceKind.HUMAN and item not in trained_on
            )
        prelabel(project, str(model), PrelabelOptions(items="labeled"), only=held_out)
        with project.open_catalog() as catalog:
            human = catalog.current_annotations(held_out)
            latest = catalog.latest_predictions(held_out)
        extra = [
            item_scores(
                task,
                as_objects(human[item].label),
                as_objects(latest[item][1]),
                args.match,
                args.object_score,
            )
            for item in held_out
        ]
        extra_confidence = np.array([row[0] for row in extra], dtype=np.float64)
        extra_correct = np.array([row[1] for row in extra], dtype=bool)

        def bench_side(trial: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], int]:
            calibration, _ = draw(trial, len(prepared.items), args)
            result = calibrate_thresholds(
                np.concatenate([scored.confidence[calibration], extra_confidence]),
                np.concatenate([scored.correct[calibration], extra_correct]),
                target_accuracy=args.target,
                confidence=args.confidence,
            )
            rest = np.setdiff1d(np.arange(len(prepared.items)), calibration)
            return calibration, rest, int(accepted_mask(result, scored.confidence[rest]).sum())

        trial = next((t for t in range(args.trials) if bench_side(t)[2] > 0), 0)
        calibration, rest, bench_accepted = bench_side(trial)
        chosen = sorted(prepared.items[position] for position in calibration.tolist())
        with project.open_catalog() as catalog:
            catalog.add_annotations(
                [(item, prepared.truth[item], Provenance.human("bench-truth")) for item in chosen]
            )
        options = AutolabelOptions(
            target_accuracy=args.target,
            confidence=args.confidence,
            match=args.match,
            object_score=args.object_score,
            dry_run=True,
        )
        report = autolabel(project, options, prelabel_run=run_id)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    same = (
        bench_accepted == report.accepted
        and report.calibration_items == len(calibration) + len(extra)
        and report.candidates == len(rest)
    )
    print(
        f"\nproduct path (trial {trial}'s draw, visionloop autolabel --dry-run on a copy of the project): "
        f"calibrated on {report.calibration_items} items ({len(calibration)} drawn + {len(extra)} "
        f"held out of training for validation), threshold "
        f"{report.thresholds.get('*', {}).get('threshold')}, accepted {report.accepted} of "
        f"{report.candidates} ({report.coverage:.1%}); the bench's computation on the same items "
        f"accepts {bench_accepted} of {len(rest)}: {'MATCH' if same else 'MISMATCH'}"
    )
    return {
        "trial": trial,
        "autolabel_calibration_items": report.calibration_items,
        "autolabel_accepted": report.accepted,
        "autolabel_candidates": report.candidates,
        "bench_accepted": bench_accepted,
        "match": same,
    }


def format_metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{key.removeprefix('val_')} {value:.3f}" for key, value in metrics.items()) or "n/a"


if __name__ == "__main__":
    sys.exit(main())
