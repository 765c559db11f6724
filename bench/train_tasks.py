"""Train detection, instance segmentation and keypoint models on CPU and compare each with the
same model before training; print the figures.

The data are constructed scenes of *real* Fashion-MNIST items (Debian's
``dataset-fashion-mnist``) pasted on textured canvases by :mod:`visionloop.datasets.scenes`, so
every box, mask and keypoint is exact by construction. Train scenes draw items from the
Fashion-MNIST train split and test scenes from its test split: no test item was seen in training.

Each task goes through what a user runs: the scenes are written as PNGs plus a COCO file,
imported into a project's catalog (``import_labels``, which ingests the images), trained with
``train_project`` and scored on the test split with ``evaluate_model``. The "untrained" model
is the same family built the same way (ImageNet backbone, freshly initialised heads), saved as
a model folder and evaluated on the same test split.

  detection         Faster R-CNN on MobileNetV2 + FPN           box mAP (COCO, pycocotools)
  segmentation      Mask R-CNN on MobileNetV2 + FPN             mask mAP and box mAP
  keypoints         Keypoint R-CNN on MobileNetV2 + FPN         OKS AP, PCK, pixel error
  pose (heatmap)    DeepLabCut-style heatmaps, one item/scene   pixel error, PCK, OKS AP

Target: each trained model's headline metric is far better than the untrained model's (PASS:
a score at least 0.25 higher and at least 5x the untrained value; an error at most 1/5 of it).
Nothing asserts; the exit code is 0 unless something crashes.

Usage::

    .venv/bin/python bench/train_tasks.py [--tasks detection,segmentation,keypoints,pose]
        [--train-scenes 400] [--test-scenes 100] [--epochs N] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from visionloop.core.schema import LabelSchema, TaskType
from visionloop.datasets import fashion_mnist
from visionloop.datasets.scenes import fashion_scenes, scene_schema, write_scene_folder
from visionloop.evaluation.evaluate import evaluate_model
from visionloop.formats.transfer import import_labels
from visionloop.ingest import IngestOptions, ingest
from visionloop.models.artifact import write_artifact
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.storage import Filesystem
from visionloop.tasks.registry import get_task
from visionloop.training.config import TrainConfig, load_train_config
from visionloop.training.run import train_project

CLASSES = ("trouser", "sandal", "bag", "ankle-boot")
MARGIN = 0.25  # a trained headline metric must beat the untrained one by this much...
FACTOR = 5.0  # ...and be at least this many times larger


@dataclass(frozen=True)
class BenchTask:
    name: str
    task: TaskType
    family: str
    headline: str
    objects: tuple[int, int]
    image_size: int
    lr: float
    epochs: int
    keypoints: bool = False
    lower_is_better: bool = False


# Epochs are sized so the whole benchmark takes about 25 minutes on 2 CPU cores.
BENCH_TASKS = {
    "detection": BenchTask("detection", TaskType.DETECTION, "faster_rcnn", "map", (1, 3), 128, 0.02, 8),
    "segmentation": BenchTask(
        "segmentation", TaskType.SEGMENTATION, "mask_rcnn", "mask_map", (1, 3), 128, 0.02, 6
    ),
    "keypoints": BenchTask(
        "keypoints", TaskType.KEYPOINTS, "keypoint_rcnn", "oks_ap", (1, 3), 128, 0.02, 6, keypoints=True
    ),
    # DeepLabCut judges pose models by pixel error; OKS AP with COCO's person-sized sigma is
    # harsh on 28-56 px items (a 3 px miss on a 30 px item already scores OKS ~0.6).
    "pose": BenchTask(
        "pose", TaskType.KEYPOINTS, "heatmap", "pixel_error", (1, 1), 128, 0.001, 15, True, True
    ),
}
SHOWN = ("map", "map50", "mask_map", "oks_ap", "pck", "pixel_error")


@dataclass
class TaskResult:
    name: str
    family: str
    headline: str
    trained: dict[str, float | None]
    untrained: dict[str, float | None]
    train_scenes: int
    test_scenes: int
    objects: int
    epochs: int
    train_seconds: float
    train_images_per_second: float
    data_seconds: float

    lower_is_better: bool = False

    @property
    def passed(self) -> bool:
        after, before = self.trained.get(self.headline), self.untrained.get(self.headline)
        if self.lower_is_better:  # an error: must shrink FACTOR-fold (an untrained n/a is worst)
            return after is not None and (before is None or after * FACTOR <= before)
        after, before = after or 0.0, before or 0.0
        return after >= before + MARGIN and after >= FACTOR * before


def build_project(root: Path, bench: BenchTask, train_scenes: int, test_scenes: int, seed: int) -> Project:
    """Write train and test scene folders and import them into a new project as human labels."""
    schema = scene_schema(bench.task, CLASSES)
    project = Project.create(root / "project", ProjectConfig(name=f"scenes-{bench.name}", labels=schema))
    with project.open_catalog() as catalog:
        for split, count in (("train", train_scenes), ("test", test_scenes)):
            scenes = fashion_scenes(
                count,
                size=(bench.image_size, bench.image_size),
                objects=bench.objects,
                scale=(1.0, 2.0),
                classes=CLASSES,
                seed=seed,
                split=split,
                with_keypoints=bench.keypoints,
            )
            folder = root / split
            annotations = write_scene_folder(scenes, folder, schema)

            def ingest_split(image_root: str, split: str = split) -> None:
                ingest(catalog, Filesystem(image_root), IngestOptions(split=split))

            report = import_labels(
                catalog,
                "coco",
                annotations,
                image_root=str(folder),
                schema=schema,
                ingest_images=ingest_split,
            )
            if report.rejected or report.images_not_found:
                raise RuntimeError(f"scene import lost labels: {report.to_dict()}")
    return project


def headline_figures(metrics: dict[str, Any]) -> dict[str, float | None]:
    figures: dict[str, float | None] = {}
    for key in SHOWN:
        value = metrics.get(key)
        if key == "pck":
            value = (metrics.get("keypoints") or {}).get("pck")
        if isinstance(value, int | float) and not math.isnan(value):
            figures[key] = float(value)
        elif key in metrics or (key == "pck" and "keypoints" in metrics):
            figures[key] = None
    return figures


def untrained_model(project: Project, config: TrainConfig, schema: LabelSchema, folder: Path) -> Path:
    """The family as training starts it (ImageNet backbone, new heads), saved as a model folder."""
    family = get_task(schema.task).family(config.model.family)
    torch.manual_seed(config.seed)
    network, _ = family.build(schema, config.model)
    write_artifact(folder, network.state_dict(), schema, config.model, family.name, run_id=None)
    return folder


def run_task(bench: BenchTask, args: argparse.Namespace, root: Path) -> TaskResult:
    started = time.perf_counter()
    project = build_project(root, bench, args.train_scenes, args.test_scenes, args.seed)
    data_seconds = time.perf_counter() - started
    epochs = args.epochs or bench.epochs
    config = load_train_config(
        overrides=[
            f"model.family={bench.family}",
            f"model.image_size={bench.image_size}",
            f"optim.epochs={epochs}",
            f"optim.lr={bench.lr}",
            f"optim.optimizer={'adamw' if bench.family == 'heatmap' else 'sgd'}",
            f"optim.batch_size={args.batch_size}",
            "optim.warmup_steps=20",
            "data.val_fraction=0.1",
            "early_stopping.patience=null",
            "checkpoint.every_steps=1000",
            "device=cpu",
            f"seed={args.seed}",
        ]
    )
    schema = project.config.labels
    print(
        f"\n[{bench.name}] {bench.family}: training {epochs} epochs on {args.train_scenes} scenes",
        flush=True,
    )
    trained = train_project(project, config)
    after = evaluate_model(project, trained.run_id, split="test", corruptions=(), explain=0).metrics
    before_folder = untrained_model(project, config, schema, root / "untrained")
    before = evaluate_model(project, str(before_folder), split="test", corruptions=(), explain=0).metrics
    state = trained.result.state
    result = TaskResult(
        name=bench.name,
        family=bench.family,
        headline=bench.headline,
        trained=headline_figures(after),
        untrained=headline_figures(before),
        train_scenes=trained.train_items,
        test_scenes=int(after.get("evaluated_images", 0)),
        objects=int(after.get("ground_truth_objects", 0) or 0),
        epochs=state.epoch,
        train_seconds=state.train_seconds,
        train_images_per_second=trained.result.images_per_second,
        data_seconds=data_seconds,
        lower_is_better=bench.lower_is_better,
    )
    print(
        f"[{bench.name}] trained {format_figures(result.trained)}"
        f" | untrained {format_figures(result.untrained)}"
        f" | {result.train_seconds:.0f} s",
        flush=True,
    )
    return result


def format_figures(figures: dict[str, float | None]) -> str:
    return ", ".join(f"{key} {'n/a' if value is None else f'{value:.3f}'}" for key, value in figures.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tasks", default=",".join(BENCH_TASKS), help="comma-separated: " + ", ".join(BENCH_TASKS)
    )
    parser.add_argument("--train-scenes", type=int, default=400)
    parser.add_argument("--test-scenes", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=None, help="override every task's epochs")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.tasks.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCH_TASKS]
    if unknown:
        parser.error(f"unknown tasks {unknown}; choose from {', '.join(BENCH_TASKS)}")
    if not fashion_mnist.available():
        print("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist", file=sys.stderr)
        return 1
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="visionloop-tasks-"))
    print("visionloop object-task training benchmark (scenes of real Fashion-MNIST items)")
    print("=================================================================================")
    print(
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}; "
        f"classes {', '.join(CLASSES)}; work folder {workdir}"
    )
    results: list[TaskResult] = []
    try:
        for name in names:
            task_root = workdir / name
            if task_root.exists():
                print(f"{task_root} exists; pass an empty --workdir", file=sys.stderr)
                return 1
            results.append(run_task(BENCH_TASKS[name], args, task_root))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print("\nResults on test scenes (items from Fashion-MNIST's test split)")
    print(
        f"{'task':<13} {'family':<14} {'metric':<12} {'untrained':>9} {'trained':>8} {'train s':>8} "
        f"{'img/s':>6}  verdict"
    )
    for result in results:
        for index, key in enumerate(result.trained):
            before, after = result.untrained.get(key), result.trained[key]
            verdict = ("PASS" if result.passed else "FAIL") if key == result.headline else ""
            label = f"{key}{' *' if key == result.headline else ''}"
            head = (result.name, result.family) if index == 0 else ("", "")
            timing = (
                f"{result.train_seconds:>8.0f} {result.train_images_per_second:>6.1f}"
                if index == 0
                else f"{'':>8} {'':>6}"
            )
            print(
                f"{head[0]:<13} {head[1]:<14} {label:<12} {_show(before):>9} {_show(after):>8} "
                f"{timing}  {verdict}"
            )
    print(
        f"\n* headline metric; PASS = trained >= untrained + {MARGIN} and >= {FACTOR}x untrained "
        f"(errors: trained <= untrained / {FACTOR}). "
        "pixel_error is in pixels of the 128 px scenes (lower is better; n/a when nothing is matched)."
    )
    if args.json:
        print(json.dumps([asdict(result) for result in results], indent=2))
    return 0


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
