"""The dashboard's gallery on a 100,000-item project: how fast its pages come over HTTP.

A detection project (SQLite catalog) with ``--items`` items: the first 60 are real JPEG photos
(``_photos``), the rest catalog rows only (the gallery's JSON never opens an image). About 30%
carry human box labels, 10% auto labels, 20% model labels, and 60% a newer model prediction
with a score, over 5 classes. ``visionloop serve``'s app runs under uvicorn in its own process
(``_server``); requests go over HTTP on 127.0.0.1.

Timed, each the median of ``--repeats`` requests after the first:
  - the first gallery page (60 items, no filter): the figure the target is about;
  - its first request after the server started (cold: nothing cached);
  - filtered first pages (human labels of one class; uncertain predictions; disagreement):
    the server starts building the gallery index in the background as it starts; the first
    filtered request waits for whatever is left of that, later ones reuse it;
  - the first page's 60 thumbnails, made on the first request and then read from the cache.

Target: the first page in under 300 ms. Printed as PASS/FAIL; nothing asserts.

Usage::

    .venv/bin/python bench/dashboard.py [--items 100000] [--repeats 20] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from _photos import make_photos
from _server import Server
from visionloop.catalog import Catalog, ProbedFile
from visionloop.core.labels import ObjectLabels
from visionloop.core.media import ImageInfo
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.project import Project
from visionloop.project.config import ProjectConfig

TARGET_MS = 300.0
CLASSES = ["car", "person", "bike", "dog", "sign"]
CHUNK = 10_000


def _boxes(rng: np.random.Generator, width: int, height: int) -> ObjectLabels:
    count = int(rng.integers(1, 6))
    corners = rng.uniform(0, 1, (count, 2)) * [width * 0.7, height * 0.7]
    sizes = rng.uniform(0.1, 0.3, (count, 2)) * [width, height]
    names = tuple(str(name) for name in rng.choice(CLASSES, count))
    return ObjectLabels(np.hstack([corners, corners + sizes]), names)


def build_project(root: Path, items: int, photos: list[Path]) -> Project:
    schema = LabelSchema(task=TaskType.DETECTION, classes=CLASSES)
    project = Project.create(root, ProjectConfig(name="bench-dashboard", labels=schema))
    rng = np.random.default_rng(0)
    with project.open_catalog() as catalog:
        _add_items(catalog, items, photos)
        ids = [item.id for item in catalog.iter_items()]
        run = catalog.start_run("autolabel", {}, {})
        catalog.finish_run(run, {})
        for start in range(0, len(ids), CHUNK):
            annotations, predictions = [], []
            for item in ids[start : start + CHUNK]:
                draw = rng.uniform()
                label = _boxes(rng, 640, 480)
                if draw < 0.3:
                    annotations.append((item, label, Provenance.human("annotator")))
                elif draw < 0.4:
                    annotations.append((item, label, Provenance.auto("m1", run, 0.97)))
                elif draw < 0.6:
                    annotations.append((item, label, Provenance.model("m1", 0.6)))
                if rng.uniform() < 0.6:
                    predictions.append((item, "m2", _boxes(rng, 640, 480), float(rng.uniform())))
            catalog.add_labels(annotations, predictions)
    return project


def _add_items(catalog: Catalog, items: int, photos: list[Path]) -> None:
    info = ImageInfo(width=640, height=480, format="JPEG", mode="RGB")
    for start in range(0, items, CHUNK):
        probed = []
        for index in range(start, min(items, start + CHUNK)):
            real = photos[index] if index < len(photos) else None
            uri = str(real) if real else f"/bench/images/{index:07d}.jpg"
            size = real.stat().st_size if real else 50_000
            probed.append(ProbedFile(uri, size, f"{index}", f"{index:064x}", info))
        catalog.record_files(probed, split_for=lambda _sha: "train", source="ingest", run_id=None)


def timed(client: httpx.Client, path: str, params: dict[str, Any], repeats: int) -> tuple[float, float, Any]:
    """Milliseconds of the first request and the median of ``repeats`` more; the last answer."""
    times = []
    answer = None
    for _ in range(repeats + 1):
        begun = time.perf_counter()
        answer = client.get(path, params=params)
        times.append((time.perf_counter() - begun) * 1000)
        answer.raise_for_status()
    return times[0], statistics.median(times[1:]), answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000, help="items in the project")
    parser.add_argument("--repeats", type=int, default=20, help="requests per figure after the first")
    parser.add_argument("--workdir", type=Path, default=None, help="keeps the photos between runs")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vl-bench-dashboard-"))
    scratch = workdir / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    photos = make_photos(workdir / "photos-640x480-60", 60, (640, 480))
    begun = time.perf_counter()
    project = build_project(scratch / "project", args.items, photos)
    print(
        f"{args.items} items with labels and predictions in {time.perf_counter() - begun:.0f} s", flush=True
    )

    figures: dict[str, tuple[float, float]] = {}
    token = secrets.token_urlsafe(24)
    auth = {"Authorization": f"Bearer {token}"}
    with Server(project, token) as server, httpx.Client(base_url=server.url, headers=auth) as client:
        cold, warm, answer = timed(client, "/api/gallery", {"limit": 60}, args.repeats)
        figures["first page"] = (cold, warm)
        page = answer.json()
        for name, params in {
            "human 'dog' labels": {"provenance": "human", "class": "dog"},
            "uncertain (score <= 0.3)": {"max_confidence": 0.3},
            "human vs model disagree": {"disagreement": "true"},
        }.items():
            cold, warm, _ = timed(client, "/api/gallery", {"limit": 60, **params}, args.repeats)
            figures[name] = (cold, warm)
        thumbnails = [entry["thumbnail"] for entry in page["items"]]
        rounds = []
        for _ in range(2):
            started = time.perf_counter()
            for path in thumbnails:
                client.get(path).raise_for_status()
            rounds.append((time.perf_counter() - started) * 1000)
        figures["60 thumbnails"] = (rounds[0], rounds[1])

    print(f"\ngallery of {page['total']} items over HTTP (milliseconds)")
    print(f"{'request':<28}{'first':>10}{'median after':>14}")
    for name, (cold, warm) in figures.items():
        print(f"{name:<28}{cold:>10.1f}{warm:>14.1f}")
    first = figures["first page"][1]
    print(
        f"first page {first:.1f} ms (target < {TARGET_MS:.0f} ms) {'PASS' if first < TARGET_MS else 'FAIL'}"
    )
    if args.json:
        print(json.dumps({name: {"first_ms": c, "median_ms": w} for name, (c, w) in figures.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
