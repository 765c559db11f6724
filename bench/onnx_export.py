"""ONNX export with --int8, measured: fp32 against int8 ONNX Runtime speed and accuracy for a
classifier and a detector, side by side in one run.

The models are trained by visionloop, the way users train them:

  classifier  MobileNetV2 (offline ImageNet weights) fine-tuned on real Fashion-MNIST items
              (Debian ``dataset-fashion-mnist``; ``bench/train_fashion_mnist.py``'s project) at
              ``--cls-size`` px, top-1 accuracy
  detector    Faster R-CNN on MobileNetV2 + FPN trained on scenes of real Fashion-MNIST items
              (``bench/train_tasks.py``'s detection project, exact boxes) at 128 px, box mAP

For each model, first the product's own path: ``export_project_model(..., int8=True)`` exports,
checks parity and tries an int8 graph on ``--parity`` project images (calibrated on
``--calibration`` others); its decision and figures are printed as recorded in ``onnx.json``.
Then, on the held-out test split (items never trained or calibrated on), the bench quantizes
the fp32 graph the same way whatever that decision was, and measures side by side:

  images/s   the graph alone on preprocessed inputs, fp32 and int8 sessions with the same
             settings taking turns for ``--rounds`` rounds (best round each), classifier in
             batches of 32, detector one image per run; PyTorch eager on the same images
             (timed on its own) for scale
  accuracy   top-1 / box mAP against the test labels, in points, for PyTorch, fp32 and int8

The machine is shared: the 1-minute load average is printed before and after. Nothing asserts;
the exit code is 0 unless something crashes.

Usage::

    .venv/bin/python bench/onnx_export.py [--cls-train 3000] [--cls-size 64] [--det-train 300]
        [--det-epochs 4] [--parity 64] [--calibration 32] [--rounds 3] [--threads N]
        [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from visionloop.core.labels import Label
from visionloop.core.provenance import ProvenanceKind
from visionloop.datasets import fashion_mnist
from visionloop.datasets.records import ImageReader
from visionloop.models.artifact import read_artifact
from visionloop.project import Project
from visionloop.tasks.agreement import metric_points
from visionloop.tasks.onnx_export import export_project_model
from visionloop.tasks.onnx_files import EMBEDDING_OUTPUT, INPUT_NAME
from visionloop.tasks.onnx_int8 import images_per_second, quantize_static
from visionloop.tasks.onnx_runtime import (
    SessionSettings,
    exportable_family,
    images_per_run,
    open_session,
    session_predictions,
)
from visionloop.tasks.registry import load_trained_model
from visionloop.training.config import load_train_config
from visionloop.training.run import train_project

sys.path.insert(0, str(Path(__file__).parent))
from train_fashion_mnist import build_project as build_classifier_project  # the projects
from train_tasks import BENCH_TASKS
from train_tasks import build_project as build_scene_project

_BATCH = 32


@dataclass
class ModelResult:
    name: str
    family: str
    metric: str
    test_images: int
    export_decision: str
    export_figures: dict[str, Any]
    parity: dict[str, Any]
    torch_images_per_second: float
    fp32_images_per_second: float
    int8_images_per_second: float
    torch_points: float | None
    fp32_points: float | None
    int8_points: float | None
    train_seconds: float
    export_seconds: float


def _test_split(project: Project, limit: int) -> tuple[list[npt.NDArray[np.uint8]], list[Label]]:
    reader = ImageReader()
    with project.open_catalog() as catalog:
        items = list(catalog.iter_items(split="test"))[:limit]
        annotations = catalog.current_annotations([item.id for item in items])
    images, truths = [], []
    for item in items:
        record = annotations.get(item.id)
        if record is None or record.provenance.kind is not ProvenanceKind.HUMAN:
            continue
        images.append(reader(item.uri))
        truths.append(record.label)
    return images, truths


def _calibration_images(project: Project, count: int) -> list[npt.NDArray[np.uint8]]:
    reader = ImageReader()
    with project.open_catalog() as catalog:
        items = list(catalog.iter_items(split="train"))
    step = max(1, len(items) // max(1, count))
    return [reader(item.uri) for item in items[::step][:count]]


def measure(
    name: str, project: Project, run_id: str, args: argparse.Namespace, train_seconds: float
) -> ModelResult:
    started = time.perf_counter()
    _, export = export_project_model(
        project, run_id, parity_images=args.parity, int8=True, calibration_images=args.calibration
    )
    export_seconds = time.perf_counter() - started
    trial = export.int8
    assert trial is not None
    print(f"[{name}] export: {trial.reason} (on {trial.images} images, {trial.loss_basis} basis)", flush=True)

    folder = export.folder
    artifact = read_artifact(folder)
    family = exportable_family(artifact)
    images, truths = _test_split(project, args.test)
    sizes = [(int(image.shape[0]), int(image.shape[1])) for image in images]
    step = images_per_run(family) or _BATCH
    inputs = [family.input_batch(images[i : i + step], artifact.model) for i in range(0, len(images), step)]
    int8_path = Path(args.workdir) / f"{name}.int8.onnx"
    calibration = _calibration_images(project, args.calibration)
    quantize_static(
        export.path,
        int8_path,
        INPUT_NAME,
        [
            family.input_batch(calibration[i : i + step], artifact.model)
            for i in range(0, len(calibration), step)
        ],
    )
    settings = SessionSettings(threads=args.threads)
    sessions = {
        "fp32": open_session(str(export.path), settings),
        "int8": open_session(str(int8_path), settings),
    }
    speeds = images_per_second(sessions, INPUT_NAME, inputs, rounds=args.rounds)

    names = [output.name for output in family.onnx_outputs]
    labels = {
        precision: session_predictions(
            session, family, artifact, INPUT_NAME, names, EMBEDDING_OUTPUT, images
        )[0]
        for precision, session in sessions.items()
    }
    trained = load_trained_model(folder)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    started = time.perf_counter()
    with torch.inference_mode():
        labels["torch"] = [
            label for i in range(0, len(images), step) for label in trained.predict(images[i : i + step])
        ]
    torch_speed = len(images) / (time.perf_counter() - started)
    metric = "accuracy" if name == "classifier" else "map"
    points = {
        key: metric_points(truths, predicted, artifact.schema, sizes)[metric]
        for key, predicted in labels.items()
    }
    return ModelResult(
        name=name,
        family=artifact.family,
        metric=metric,
        test_images=len(images),
        export_decision=trial.reason,
        export_figures=asdict(trial),
        parity=asdict(export.parity),
        torch_images_per_second=torch_speed,
        fp32_images_per_second=speeds["fp32"],
        int8_images_per_second=speeds["int8"],
        torch_points=points["torch"],
        fp32_points=points["fp32"],
        int8_points=points["int8"],
        train_seconds=train_seconds,
        export_seconds=export_seconds,
    )


def classifier(args: argparse.Namespace, root: Path) -> ModelResult:
    project, counts, _ = build_classifier_project(root, args.cls_train)
    print(
        f"\n[classifier] fine-tuning on {counts['train']} Fashion-MNIST items at {args.cls_size} px",
        flush=True,
    )
    config = load_train_config(
        overrides=[
            f"model.image_size={args.cls_size}",
            "optim.batch_size=64",
            "optim.optimizer=sgd",
            "optim.lr=0.05",
            f"optim.epochs={args.cls_epochs}",
            "augment.crop_scale=1.0",
            "data.val_fraction=0.05",
            "early_stopping.patience=null",
            "checkpoint.every_steps=100000",
            "device=cpu",
        ]
    )
    started = time.perf_counter()
    trained = train_project(project, config)
    return measure("classifier", project, trained.run_id, args, time.perf_counter() - started)


def detector(args: argparse.Namespace, root: Path) -> ModelResult:
    bench = BENCH_TASKS["detection"]
    project = build_scene_project(root, bench, args.det_train, args.test, seed=0)
    print(
        f"\n[detector] training {bench.family} on {args.det_train} scenes for {args.det_epochs} epochs",
        flush=True,
    )
    config = load_train_config(
        overrides=[
            f"model.family={bench.family}",
            f"model.image_size={bench.image_size}",
            f"optim.epochs={args.det_epochs}",
            f"optim.lr={bench.lr}",
            "optim.optimizer=sgd",
            "optim.batch_size=8",
            "optim.warmup_steps=20",
            "data.val_fraction=0.1",
            "early_stopping.patience=null",
            "checkpoint.every_steps=100000",
            "device=cpu",
        ]
    )
    started = time.perf_counter()
    trained = train_project(project, config)
    return measure("detector", project, trained.run_id, args, time.perf_counter() - started)


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cls-train", type=int, default=3000, help="Fashion-MNIST train items")
    parser.add_argument("--cls-size", type=int, default=64)
    parser.add_argument("--cls-epochs", type=int, default=1)
    parser.add_argument("--det-train", type=int, default=300, help="train scenes")
    parser.add_argument("--det-epochs", type=int, default=4)
    parser.add_argument("--test", type=int, default=200, help="test items / scenes measured")
    parser.add_argument("--parity", type=int, default=64, help="export-model --parity-images")
    parser.add_argument("--calibration", type=int, default=32, help="export-model --calibration-images")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="ONNX Runtime / PyTorch threads (default: all cores)"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not fashion_mnist.available():
        print("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist", file=sys.stderr)
        return 1
    keep = args.workdir is not None
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="visionloop-onnx-"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    print("visionloop ONNX export benchmark: fp32 vs int8")
    print("===============================================")
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}; load average before: {os.getloadavg()[0]:.2f}")
    try:
        results = [classifier(args, args.workdir / "classifier"), detector(args, args.workdir / "detector")]
    finally:
        if not keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    threads = args.threads or "all"
    print(f"\nTest split, {threads} thread(s); images/s of the graph alone (PyTorch eager: the model)")
    print(
        f"{'model':<11} {'metric':<9} {'images':>6} {'torch/s':>8} {'fp32/s':>8} {'int8/s':>8} "
        f"{'speedup':>7} {'torch':>7} {'fp32':>7} {'int8':>7} {'lost':>6}"
    )
    for result in results:
        speedup = result.int8_images_per_second / result.fp32_images_per_second
        lost = (
            None
            if result.fp32_points is None or result.int8_points is None
            else result.fp32_points - result.int8_points
        )
        print(
            f"{result.name:<11} {result.metric:<9} {result.test_images:>6} "
            f"{result.torch_images_per_second:>8.1f} {result.fp32_images_per_second:>8.1f} "
            f"{result.int8_images_per_second:>8.1f} {speedup:>6.2f}x {_points(result.torch_points):>7} "
            f"{_points(result.fp32_points):>7} {_points(result.int8_points):>7} {_points(lost):>6}"
        )
    print("\nexport-model --int8 decisions (parity images, as recorded in onnx.json):")
    for result in results:
        lost = ", ".join(f"{k} {v:.2f}" for k, v in result.parity.get("points_lost", {}).items())
        parity = f"points lost {lost}" if lost else f"top-1 agreement {result.parity['agreement']:.2%}"
        print(f"  {result.name}: parity {parity}; int8 {result.export_decision}")
    if args.json:
        print(json.dumps([asdict(result) for result in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
