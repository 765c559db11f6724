"""Pre-labeling on Ray: images/s on 1 and 2 Ray workers and on the local executor, in one run.

The same ``prelabel`` call (all items, ONNX Runtime, predictions and embeddings stored, run
recorded) on the same camera-sized JPEGs (``_photos``: Fashion-MNIST items on 1024x768 photos
by default) and the same model (MobileNetV2, ``_prelabel_setup``), three ways:

  local   the local executor with the compute of one Ray worker: this process pinned to one
          core (``sched_setaffinity``), decoding in-process (``workers=0``), so ONNX Runtime
          runs one thread, as in an actor with one CPU;
  ray-1   ``--executor ray`` with one Ray Data actor of one CPU (``executor.cpus_per_worker``);
  ray-2   two such actors.

A local Ray instance with one CPU per core is started once. Each configuration pre-labels a small
set (``--small``) and the full set (``--images``) in every round, interleaved, after an untimed
warm-up round; the fastest of ``--repeats`` rounds counts. The sustained rate is the extra photos
over the extra seconds, so fixed costs (loading the model, Ray starting actors: seconds, whatever
the pool's size) cancel out; they are printed beside it, with the end-to-end rate and the driver's
(this process's) CPU time. Scaling efficiency is ray-2 / (2 x ray-1) on sustained rates, and
ray-1 is compared with local. Targets: efficiency >= 0.8 and ray-1 within 10% of local (or
faster). With Ray, the driver receives the predictions and writes them on a core of its own
(with two actors on two cores it shares them); locally that work shares the one core.
For reference the run also times the bare machine: the same decode-and-predict code in one and
in two plain processes (one thread each, no Ray, no catalog), whose efficiency bounds any
executor's on these cores. Printed as PASS/FAIL; nothing asserts.

Usage::

    .venv/bin/python bench/ray_scaling.py [--images 1000] [--small 200] [--size 1024x768] [--side 224]
        [--batch-size 32] [--repeats 3] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from _photos import make_photos
from _prelabel_setup import SCHEMA, make_model, make_project
from visionloop.active.prelabel import PrelabelOptions, prelabel
from visionloop.active.prelabel_batch import decode_item, predict_decoded
from visionloop.datasets.records import ImageReader
from visionloop.imaging.decode import decode_rgb
from visionloop.project import Project
from visionloop.project.config import ExecutorSettings, ProjectConfig
from visionloop.tasks.onnx_export import export_onnx
from visionloop.tasks.onnx_session import SessionSettings
from visionloop.tasks.predictor import load_predictor
from visionloop.tasks.registry import squashed_input_size

EFFICIENCY_TARGET = 0.8
OVERHEAD_TARGET = 0.9  # ray-1 at least 90% of local


@contextmanager
def one_core() -> Iterator[None]:
    """This process (and what it starts meanwhile) on one core, as a Ray actor with one CPU."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def configurations(batch_size: int) -> dict[str, tuple[PrelabelOptions, Callable[[], Any]]]:
    local = PrelabelOptions(items="all", workers=0, batch_size=batch_size, runtime="onnx")
    ray = PrelabelOptions(items="all", batch_size=batch_size, runtime="onnx", executor="ray")
    return {
        "local": (local, one_core),
        "ray-1": (PrelabelOptions(**{**ray.__dict__, "workers": 1}), contextmanager(_nothing)),
        "ray-2": (PrelabelOptions(**{**ray.__dict__, "workers": 2}), contextmanager(_nothing)),
    }


def _nothing() -> Iterator[None]:
    yield


@dataclass
class Figure:
    """One configuration's best rounds over a small and the full set of photos. The sustained
    rate is the extra photos over the extra seconds: fixed costs (model loading, Ray actors
    starting) cancel out, and nothing buffered can flatter it."""

    small: int
    images: int
    small_seconds: float = float("inf")
    seconds: float = float("inf")
    driver_cpu: float = float("inf")  # this process's CPU seconds over the full set

    @property
    def rate(self) -> float:
        return self.images / self.seconds

    @property
    def sustained(self) -> float:
        return (self.images - self.small) / (self.seconds - self.small_seconds)

    @property
    def startup(self) -> float:
        return max(0.0, self.seconds - self.images / self.sustained)


def timed_prelabel(
    project: Project, model: Path, options: PrelabelOptions, images: int
) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds for one pre-labeling run of ``images``."""
    cpu, begun = time.process_time(), time.perf_counter()
    report = prelabel(project, str(model), replace(options, limit=images))
    seconds = time.perf_counter() - begun
    if report.predicted != images or report.failed or report.runtime != "onnx":
        raise RuntimeError(f"predicted {report.predicted} on {report.runtime}: {report.failed[:3]}")
    return seconds, time.process_time() - cpu


def measure(
    project: Project, model: Path, batch_size: int, repeats: int, small: int, images: int
) -> dict[str, Figure]:
    """Each configuration's fastest of ``repeats`` interleaved rounds (after a warm-up round)."""
    figures = {name: Figure(small, images) for name in configurations(batch_size)}
    for round_number in range(repeats + 1):  # round 0 warms up (imports, caches, Ray workers)
        for name, (options, place) in configurations(batch_size).items():
            with place():
                small_seconds, _ = timed_prelabel(project, model, options, small)
                seconds, driver_cpu = timed_prelabel(project, model, options, images)
            figure = figures[name] if round_number else Figure(small, images)
            figure.small_seconds = min(figure.small_seconds, small_seconds)
            figure.seconds = min(figure.seconds, seconds)
            figure.driver_cpu = min(figure.driver_cpu, driver_cpu)
            print(
                f"  round {round_number} {name}: {small} in {small_seconds:.1f} s, "
                f"{images} in {seconds:.1f} s",
                flush=True,
            )
    return figures


def _plain_worker(
    folder: str, uris: list[str], batch_size: int, ready: Any, results: Any
) -> None:  # pragma: no cover - runs in a child process
    """The actor's work (decode and predict, one thread) in a plain process, timed after loading."""
    reader = ImageReader({})
    trained, _ = load_predictor(Path(folder), "onnx", SessionSettings(threads=1, busy_wait=False))
    at_least, resize_to = trained.artifact.model.image_size, squashed_input_size(trained.artifact)
    ready.wait()
    begun = time.perf_counter()
    for start in range(0, len(uris), batch_size):
        chunk = uris[start : start + batch_size]
        predict_decoded(
            trained, [decode_item(reader, i, uri, at_least, resize_to) for i, uri in enumerate(chunk)]
        )
    results.put(time.perf_counter() - begun)


def machine_ceiling(model: Path, photos: list[Path], batch_size: int, processes: int) -> float:
    """Images/s of ``processes`` plain processes splitting the photos: what the cores give without
    Ray or visionloop's executors (their efficiency bounds any executor's)."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Barrier(processes), context.Queue()
    shares = [[str(path) for path in photos[index::processes]] for index in range(processes)]
    workers = [
        context.Process(target=_plain_worker, args=(str(model), share, batch_size, ready, results))
        for share in shares
    ]
    for worker in workers:
        worker.start()
    seconds = max(results.get() for _ in workers)
    for worker in workers:
        worker.join()
    return len(photos) / seconds


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1000, help="photos pre-labeled per round")
    parser.add_argument(
        "--small", type=int, default=200, help="photos in the short run that measures fixed costs"
    )
    parser.add_argument("--size", default="1024x768", help="photo size, width x height")
    parser.add_argument("--side", type=int, default=224, help="the model's input side")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the fastest counts")
    parser.add_argument("--workdir", type=Path, default=None, help="keeps the photos between runs")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    import ray

    width, height = (int(part) for part in args.size.lower().split("x"))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vl-bench-ray-"))
    scratch = workdir / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    photos = make_photos(workdir / f"photos-{width}x{height}-{args.images}", args.images, (width, height))
    model = make_model(scratch / "model", args.side)
    export_onnx(model, [decode_rgb(path.read_bytes()) for path in photos[:32]])
    config = ProjectConfig(
        name="bench-ray", labels=SCHEMA, executor=ExecutorSettings(kind="ray", cpus_per_worker=1)
    )
    project = make_project(scratch / "project", photos[0].parent, config)
    cores = len(os.sched_getaffinity(0))
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    ceiling = {
        count: max(machine_ceiling(model, photos, args.batch_size, count) for _ in range(2))
        for count in (1, 2)
    }
    try:
        figures = measure(project, model, args.batch_size, args.repeats, args.small, len(photos))
    finally:
        ray.shutdown()

    steady = {name: figure.sustained for name, figure in figures.items()}
    efficiency = steady["ray-2"] / (2 * steady["ray-1"])
    overhead = steady["ray-1"] / steady["local"]
    print(
        f"\npre-labeling {len(photos)} JPEGs {width}x{height}, MobileNetV2 at {args.side} px, "
        f"ONNX Runtime, {cores} cores"
    )
    print(f"{'executor':<10}{'sustained images/s':>20}{'end to end':>12}{'fixed s':>9}{'driver CPU s':>14}")
    for name, figure in figures.items():
        print(
            f"{name:<10}{figure.sustained:>20.1f}{figure.rate:>12.1f}{figure.startup:>9.2f}{figure.driver_cpu:>14.2f}"
        )
    print(
        f"scaling efficiency 1 -> 2 Ray workers (sustained): {efficiency:.2f} "
        f"(target >= {EFFICIENCY_TARGET}) {verdict(efficiency >= EFFICIENCY_TARGET)}"
    )
    print(
        f"the machine itself: {ceiling[1]:.1f} images/s in one plain process, {ceiling[2]:.1f} in two: "
        f"efficiency {ceiling[2] / (2 * ceiling[1]):.2f}; Ray's 1 -> 2 scaling is "
        f"{efficiency / (ceiling[2] / (2 * ceiling[1])):.2f} of what the cores allow"
    )
    print(
        f"ray-1 / local (sustained): {overhead:.2f} (target >= {OVERHEAD_TARGET}) "
        f"{verdict(overhead >= OVERHEAD_TARGET)}"
    )
    if args.json:
        summary = {
            name: figure.__dict__
            | {"rate": figure.rate, "sustained": figure.sustained, "fixed_seconds": figure.startup}
            for name, figure in figures.items()
        }
        print(
            json.dumps(
                {
                    "figures": summary,
                    "efficiency": efficiency,
                    "ray1_over_local": overhead,
                    "plain_processes": ceiling,
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
