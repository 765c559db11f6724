"""Serving: ONNX Runtime against PyTorch eager, REST latency against raw ONNX Runtime, and a load test
that moves the production alias twice, all in one run on the same photos.

Set-up, the way a team would: a project with Fashion-MNIST photos (640x480 JPEGs, one real test
item in each, labelled) as its test split; two versions of torchvision's ImageNet MobileNetV2
with a new 10-class head at 224 px (untrained heads; speed does not depend on them), each
exported to ONNX, evaluated by ``evaluate`` (the project's gate), registered, approved;
``production`` points at v1. ``visionloop serve``'s app runs under uvicorn in its own process on
127.0.0.1.

  (1) images/s of the same model on ONNX Runtime and on PyTorch eager, through visionloop's
      predictor (decoded images in, labels out), one image per call and batches of 16,
      interleaved, fastest of ``--repeats``. Target: ONNX Runtime >= 1.3x at one image per call.
  (2) latency of ``POST /v1/predict`` with one JPEG per request (sequential, kept-alive
      connection) next to a raw loop in this process: decode + resize + normalise +
      ``InferenceSession.run`` on the same JPEG bytes, in alternating blocks of 25.
      Target: REST p95 <= 1.25 x raw p95 + 10 ms.
  (3) ``--clients`` concurrent clients (default 50) posting photos for ``--duration`` seconds
      (default 60) while ``production`` moves to v2 at 1/3 of the time and back at 2/3 through
      the token-guarded REST routes. Target: zero 5xx (and every request answered).

Usage::

    .venv/bin/python bench/serving.py [--photos 200] [--requests 300] [--clients 50]
        [--duration 60] [--repeats 3] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from _photos import make_photos
from _server import Server
from visionloop.core.labels import ClassLabel
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.datasets import fashion_mnist
from visionloop.evaluation.evaluate import evaluate_model
from visionloop.imaging.decode import decode_rgb
from visionloop.imaging.model_input import IMAGENET_MEAN, IMAGENET_STD
from visionloop.ingest import IngestOptions, ingest
from visionloop.models.artifact import write_artifact
from visionloop.models.classifier import build_classifier
from visionloop.models.config import ModelConfig
from visionloop.project import Project
from visionloop.project.config import ProjectConfig
from visionloop.registry import ModelRegistry
from visionloop.storage import Filesystem
from visionloop.tasks.onnx_export import export_onnx
from visionloop.tasks.predictor import load_predictor

SIDE = 224
PHOTO_SIZE = (640, 480)
ORT_TARGET = 1.3
LATENCY_FACTOR, LATENCY_SLACK_MS = 1.25, 10.0
MEAN = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)  # the statistics the model was trained with
STD = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)


# -- set-up -----------------------------------------------------------------------------------


def build_project(root: Path, photos: list[Path], token: str) -> Project:
    """Photos as the labelled test split; v1 and v2 exported, evaluated, registered, approved."""
    schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=list(fashion_mnist.CLASSES))
    project = Project.create(root, ProjectConfig(name="bench-serving", labels=schema))
    _, labels = fashion_mnist.load("test")
    with project.open_catalog() as catalog:
        ingest(catalog, Filesystem(str(photos[0].parent)), IngestOptions(split="test", workers=1))
        index = {Path(item.uri).name: item.id for item in catalog.iter_items()}
        truth = [
            (
                index[path.name],
                ClassLabel(fashion_mnist.CLASSES[int(labels[i % len(labels)])]),
                Provenance.human("bench"),
            )
            for i, path in enumerate(photos)
        ]
        catalog.add_annotations(truth)
    parity = [decode_rgb(path.read_bytes()) for path in photos[:32]]
    for number in (1, 2):
        folder = root / "models" / f"v{number}"
        network, _ = build_classifier("mobilenet_v2", len(schema.classes), "imagenet")
        config = ModelConfig(family="classifier", image_size=SIDE, weights="imagenet")
        write_artifact(folder, network.state_dict(), schema, config, "classifier", run_id=None)
        export_onnx(folder, parity)
        evaluate_model(project, str(folder), corruptions=(), explain=0, limit=100)
    with project.open_catalog() as catalog:
        registry = ModelRegistry(catalog, project.root)
        for number in (1, 2):
            registry.register(root / "models" / f"v{number}", "bench")
            registry.approve(number, "reviewer", "serving benchmark")
        registry.promote(1, "production", "bench")
    return project


# -- (1) ONNX Runtime against PyTorch eager ----------------------------------------------------


def runtimes(folder: Path, images: list[np.ndarray], repeats: int) -> dict[str, dict[int, float]]:
    """Images/s per runtime and batch size, the fastest of ``repeats`` interleaved rounds."""
    predictors = {name: load_predictor(folder, name)[0] for name in ("onnx", "torch")}
    best: dict[str, dict[int, float]] = {name: {1: 0.0, 16: 0.0} for name in predictors}
    for predictor in predictors.values():
        predictor.predict(images[:16])  # warm
    for _ in range(repeats):
        for name, predictor in predictors.items():
            for batch in (1, 16):
                started = time.perf_counter()
                for start in range(0, len(images), batch):
                    predictor.predict(images[start : start + batch])
                best[name][batch] = max(best[name][batch], len(images) / (time.perf_counter() - started))
    return best


# -- (2) REST latency against raw ONNX Runtime --------------------------------------------------


class RawLoop:
    """Decode + resize + normalise + ``InferenceSession.run`` on one JPEG, nothing else."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])

    def __call__(self, data: bytes) -> None:
        with Image.open(io.BytesIO(data)) as image:
            pixels = np.asarray(image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR))
        batch = (pixels[None].transpose(0, 3, 1, 2).astype(np.float32) / 255.0 - MEAN) / STD
        self.session.run(["logits"], {"images": batch})


def latencies(
    folder: Path, url: str, token: str, payloads: list[bytes], block: int = 25
) -> tuple[list[float], list[float]]:
    """Seconds per image for the raw loop and for ``POST /v1/predict``, in alternating blocks of
    ``block`` images: both see the same machine, and neither runs while the other's ONNX Runtime
    threads are still spinning down."""
    raw, rest = RawLoop(folder), []
    raw_seconds: list[float] = []
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        raw(payloads[0])  # warm both
        client.post(
            "/v1/predict", content=payloads[0], headers={"Content-Type": "image/jpeg"}
        ).raise_for_status()
        for start in range(0, len(payloads), block):
            chunk = payloads[start : start + block]
            for data in chunk:
                begun = time.perf_counter()
                raw(data)
                raw_seconds.append(time.perf_counter() - begun)
            for data in chunk:
                begun = time.perf_counter()
                answer = client.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"})
                rest.append(time.perf_counter() - begun)
                answer.raise_for_status()
    return raw_seconds, rest


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(np.asarray(values), share * 100))


# -- (3) load test --------------------------------------------------------------------------------


@dataclass
class LoadResult:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    versions: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, version)
    failures: Counter[str] = field(default_factory=Counter)
    moves: list[tuple[float, str, int]] = field(default_factory=list)
    seconds: float = 0.0


async def load_test(url: str, token: str, payloads: list[bytes], clients: int, duration: float) -> LoadResult:
    result = LoadResult()
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, headers=auth) as http:
        started = time.perf_counter()
        stop_at = started + duration

        async def client(index: int) -> None:
            turn = index
            while time.perf_counter() < stop_at:
                data = payloads[turn % len(payloads)]
                turn += clients
                begun = time.perf_counter()
                try:
                    answer = await http.post(
                        "/v1/predict", content=data, headers={"Content-Type": "image/jpeg"}
                    )
                except httpx.HTTPError as exc:
                    result.failures[type(exc).__name__] += 1
                    continue
                result.latencies.append(time.perf_counter() - begun)
                result.statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    result.versions.append((begun - started, int(answer.json()["model"]["version"])))

        async def mover() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            for share, version in ((1 / 3, 2), (2 / 3, 1)):
                await asyncio.sleep(max(0.0, started + duration * share - time.perf_counter()))
                answer = await http.post(
                    f"/v1/models/v{version}/promote",
                    json={"alias": "production", "by": "bench"},
                    headers=headers,
                )
                answer.raise_for_status()
                result.moves.append((time.perf_counter() - started, "production", version))

        await asyncio.gather(mover(), *(client(index) for index in range(clients)))
        result.seconds = time.perf_counter() - started
    return result


def switch_times(result: LoadResult) -> list[str]:
    """When the answers' version changed, after each move (first answer from the new version)."""
    lines = []
    ordered = sorted(result.versions)
    for moved_at, _, version in result.moves:
        first = next((at for at, answered in ordered if at >= moved_at and answered == version), None)
        lines.append(
            f"production -> v{version} at {moved_at:.1f} s: first answer from v{version} "
            + ("never" if first is None else f"{first - moved_at:+.2f} s after the move")
        )
    return lines


# -- the run ----------------------------------------------------------------------------------


def verdict(holds: bool) -> str:
    return "PASS" if holds else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=200, help="640x480 JPEG photos (the test split)")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests timed for latency")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients in the load test")
    parser.add_argument("--duration", type=float, default=60.0, help="load test seconds")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the runtime comparison")
    parser.add_argument("--workdir", type=Path, default=None, help="keeps the photos between runs")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vl-bench-serving-"))
    scratch = workdir / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    token = secrets.token_urlsafe(24)
    begun = time.perf_counter()
    photos = make_photos(
        workdir / f"photos-{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}-{args.photos}", args.photos, PHOTO_SIZE
    )
    project = build_project(scratch / "project", photos, token)
    payloads = [path.read_bytes() for path in photos]
    images = [decode_rgb(data) for data in payloads[:64]]
    folder = scratch / "project" / "models" / "v1"
    print(
        f"project, 2 versions (exported, evaluated, registered) ready in {time.perf_counter() - begun:.0f} s",
        flush=True,
    )

    speeds = runtimes(folder, images, args.repeats)
    ratio = {batch: speeds["onnx"][batch] / speeds["torch"][batch] for batch in (1, 16)}
    print(
        f"(1) MobileNetV2 at {SIDE} px, {len(images)} images, {len(os.sched_getaffinity(0))} cores: "
        f"ONNX Runtime {speeds['onnx'][1]:.1f} / PyTorch eager {speeds['torch'][1]:.1f} images/s "
        f"one per call = {ratio[1]:.2f}x {verdict(ratio[1] >= ORT_TARGET)} (>= {ORT_TARGET}); batches of 16: "
        f"{speeds['onnx'][16]:.1f} / {speeds['torch'][16]:.1f} = {ratio[16]:.2f}x",
        flush=True,
    )

    timed = (payloads * (args.requests // len(payloads) + 1))[: args.requests]
    with Server(project, token) as server:
        raw, rest = latencies(folder, server.url, token, timed)
        raw_p95, rest_p95 = percentile(raw, 0.95) * 1000, percentile(rest, 0.95) * 1000
        bound = LATENCY_FACTOR * raw_p95 + LATENCY_SLACK_MS
        print(
            f"(2) one {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG per request, {len(timed)} requests: REST p50 "
            f"{statistics.median(rest) * 1000:.1f} ms, p95 {rest_p95:.1f} ms; raw ORT p50 "
            f"{statistics.median(raw) * 1000:.1f} ms, p95 {raw_p95:.1f} ms; bound {LATENCY_FACTOR} x raw "
            f"p95 + {LATENCY_SLACK_MS:.0f} ms = {bound:.1f} ms -> {verdict(rest_p95 <= bound)}",
            flush=True,
        )
        load = asyncio.run(load_test(server.url, token, payloads, args.clients, args.duration))
    served = sum(load.statuses.values())
    errors_5xx = sum(count for status, count in load.statuses.items() if status >= 500)
    ok = load.statuses.get(200, 0)
    p50, p95, p99 = (percentile(load.latencies, share) * 1000 for share in (0.5, 0.95, 0.99))
    print(
        f"(3) {args.clients} clients for {load.seconds:.1f} s: {served} answers "
        f"({served / load.seconds:.1f}/s), statuses {dict(sorted(load.statuses.items()))}, transport "
        f"failures {dict(load.failures) or 0}; latency p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms; "
        f"5xx: {errors_5xx} -> "
        f"{verdict(errors_5xx == 0 and not load.failures and ok == served)}"
    )
    for line in switch_times(load):
        print(f"    {line}")
    if args.json:
        print(
            json.dumps(
                {
                    "images_per_second": speeds,
                    "ort_over_torch": ratio,
                    "rest_p95_ms": rest_p95,
                    "raw_p95_ms": raw_p95,
                    "latency_bound_ms": bound,
                    "load": {
                        "clients": args.clients,
                        "seconds": load.seconds,
                        "statuses": {str(k): v for k, v in load.statuses.items()},
                        "failures": dict(load.failures),
                        "moves": load.moves,
                        "p95_ms": p95,
                    },
                },
                indent=2,
            )
        )
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
