"""``make demo``: the main job end to end on real data with the embedded defaults.

Today: a classification project on real Fashion-MNIST images (Debian's dataset-fashion-mnist)
with a SQLite catalog and local storage: init, ingest, incremental re-ingest, status. Every step
runs the real ``visionloop`` command, exactly as a user would type it.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from visionloop.datasets import fashion_mnist

PER_CLASS = 200


def run(*args: str) -> None:
    command = [str(Path(sys.executable).with_name("visionloop")), *args]
    print(f"\n$ visionloop {shlex.join(args)}", flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)  # noqa: S603 - our own CLI, arguments built here
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("demo-run"))
    parser.add_argument("--per-class", type=int, default=PER_CLASS)
    args = parser.parse_args()

    workdir: Path = args.workdir.resolve()
    images, project = workdir / "images", workdir / "project"
    if project.exists():
        shutil.rmtree(project)  # the demo always starts from a fresh project
    test_images, test_labels = fashion_mnist.load("test")
    written = fashion_mnist.export_image_folder(images, test_images, test_labels, args.per_class)
    print(f"Wrote {written} real Fashion-MNIST test images to {images}/<class>/")

    classes = ",".join(fashion_mnist.CLASSES)
    run("init", str(project), "--task", "classification", "--classes", classes)
    run("-p", str(project), "ingest", str(images))
    run("-p", str(project), "ingest", str(images))  # incremental: only stats files
    run("-p", str(project), "status")
    print(f"\nDemo finished. The project is in {project}; try: visionloop -p {project} status --json")


if __name__ == "__main__":
    main()
