"""Soak: the server under 50 concurrent clients for 10 minutes while the loop pushes, pulls and retrains.

Set-up (all real, on 127.0.0.1): a Label Studio server (its own venv, as the tests start it); a
classification project on real Fashion-MNIST images under Label Studio's local-files root
(``--labelled-per-class`` human labels to start from, a pool of ``--pool-per-class`` per class,
a test split for the gate); v1 trained, evaluated, registered, approved and made production by
the ``build`` pipeline and the ``models`` commands; ``visionloop serve``'s app under uvicorn in
its own process.

While ``--clients`` clients send requests back to back for ``--duration`` seconds (predictions on
JPEG photos 60%, gallery pages with and without filters 15%, the overview 10%, thumbnails 10%,
the model list 5%; every request with the token), the loop runs in other processes, round after
round, as an operator's cron would: push the next ``--round-items`` pool items to Label Studio,
annotate them there (simulated annotators: Label Studio's API, the true class), pull the
annotations back, run the ``build`` pipeline (snapshot, train, evaluate, gate, register), approve
the new version as another user and promote it to production; the server swaps to it.

Printed: requests by route and status, transport failures, p50/p95/p99 latency per route, the
loop's rounds, and the server's resident memory (sampled each second from /proc): its median over
the 30 s after warm-up (``--warmup``, default 10% of the run) against its median over the last
30 s. Targets: zero 5xx and memory growth under 10%, printed as PASS/FAIL; nothing asserts.

Usage::

    .venv/bin/python bench/soak.py [--clients 50] [--duration 600] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import yaml
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _photos import make_photos
from _server import Server
from servers import LabelStudio, label_studio_server
from visionloop.datasets import fashion_mnist
from visionloop.project import Project

MAX_GROWTH = 0.10
WINDOW_SECONDS = 30.0
TRAIN = {  # small and quick: the soak is about the server, not the model
    "model": {"backbone": "mobilenet_v2", "weights": "imagenet", "image_size": 32},
    "optim": {"batch_size": 32, "epochs": 1, "lr": 0.05},
    "early_stopping": {"patience": None},
    "data": {"val_fraction": 0},
    "threads": 1,
}
MIX = (("predict", 60), ("gallery", 15), ("overview", 10), ("thumbnail", 10), ("models", 5))


def visionloop(project: Path, *args: str, user: str = "operator") -> str:
    """One CLI command in its own process, as an operator or a cron job runs it."""
    environment = {**os.environ, "VISIONLOOP_USER": user}
    command = [sys.executable, "-m", "visionloop.cli", "-p", str(project), *args]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=1800, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"visionloop {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


# -- the project ----------------------------------------------------------------------------------


def _write_pngs(folder: Path, images: npt.NDArray[np.uint8], indices: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in indices:
        path = folder / f"{index:05d}.png"
        Image.fromarray(images[index]).save(path)
        paths.append(path)
    return paths


def build_project(root: Path, server: LabelStudio, labelled: int, pool: int) -> tuple[Path, dict[str, str]]:
    """The project, its data ingested; returns it and each pool file's true class (by file name)."""
    images, labels = fashion_mnist.load("test")
    classes = list(fashion_mnist.CLASSES)
    rng = np.random.default_rng(0)
    media = server.files / "soak"
    shutil.rmtree(media, ignore_errors=True)
    truth: dict[str, str] = {}
    for class_index, name in enumerate(classes):
        chosen = rng.permutation(np.flatnonzero(labels == class_index))[: labelled + pool + 5].tolist()
        _write_pngs(media / "labelled" / name, images, chosen[:labelled])
        _write_pngs(media / "test" / name, images, chosen[labelled : labelled + 5])
        for path in _write_pngs(media / "pool", images, chosen[labelled + 5 :]):
            truth[path.name] = name
    shutil.rmtree(root, ignore_errors=True)
    visionloop(root, "init", str(root), "--task", "classification", "--classes", ",".join(classes))
    config_path = root / "visionloop.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["labelstudio"] = {
        **(config.get("labelstudio") or {}),
        "url": server.url,
        "project_title": f"soak {secrets.token_hex(4)}",  # a fresh Label Studio project each run
        "local_files_root": str(server.files),
    }
    config_path.write_text(yaml.safe_dump(config))
    visionloop(root, "import", str(media / "labelled"), "--format", "imagefolder", "--as", "human")
    visionloop(root, "ingest", str(media / "test"), "--split", "test")
    visionloop(root, "import", str(media / "test"), "--format", "imagefolder", "--as", "human")
    visionloop(root, "ingest", str(media / "pool"), "--split", "train")
    return root, truth


def release(project: Path, params: Path) -> int:
    """Build a new version (snapshot, train, evaluate, gate, register), approve it as a reviewer
    and make it production; returns its number."""
    built = json.loads(visionloop(project, "pipeline", "run", "build", "--params", str(params), "--json"))
    register = next(step for step in built["steps"] if step["name"] == "register")
    version = int(register["outputs"]["version"])
    visionloop(project, "models", "approve", f"v{version}", "--reason", "soak round", user="reviewer")
    visionloop(project, "models", "promote", f"v{version}", "--to", "production", "--reason", "soak round")
    return version


# -- the loop beside the load ----------------------------------------------------------------------


@dataclass
class LoopLog:
    rounds: int = 0
    pushed: int = 0
    annotated: int = 0
    pulled: int = 0
    versions: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def labelstudio_http(server: LabelStudio) -> httpx.Client:
    headers = {"Authorization": f"Token {server.token}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60, trust_env=False)


def loop_rounds(
    project: Path,
    server: LabelStudio,
    truth: dict[str, str],
    per_round: int,
    params: Path,
    stop: threading.Event,
    log: LoopLog,
) -> None:
    """Push, annotate, pull, build, approve, promote; again until told to stop."""
    opened = Project.load(project)
    with opened.open_catalog() as catalog:
        pool = sorted(
            (item.id, Path(item.uri).name) for item in catalog.iter_items() if Path(item.uri).name in truth
        )
    names = dict(pool)
    queue = [item for item, _ in pool]
    random.Random(0).shuffle(queue)
    while not stop.is_set() and queue:
        begun = time.perf_counter()
        chosen, queue = queue[:per_round], queue[per_round:]
        try:
            items_file = project / "soak-items.txt"
            items_file.write_text("".join(f"{item}\n" for item in chosen))
            pushed = json.loads(
                visionloop(project, "labelstudio", "push", "--items-file", str(items_file), "--json")
            )
            log.pushed += len(chosen)
            with labelstudio_http(server) as client:
                tasks = client.get(
                    "/api/tasks",
                    params={"project": pushed["labelstudio_project"], "fields": "all", "page_size": 10_000},
                ).json()["tasks"]
                for task in tasks:
                    item = int(task["data"]["visionloop_item"])
                    if item not in chosen or task.get("total_annotations"):
                        continue
                    result = [
                        {
                            "from_name": "choice",
                            "to_name": "image",
                            "type": "choices",
                            "value": {"choices": [truth[names[item]]]},
                        }
                    ]
                    client.post(
                        f"/api/tasks/{task['id']}/annotations/", json={"result": result}
                    ).raise_for_status()
                    log.annotated += 1
            pulled = json.loads(visionloop(project, "labelstudio", "pull", "--json"))
            log.pulled += int(pulled.get("imported", 0)) + int(pulled.get("updated", 0))
            log.versions.append(release(project, params))
            log.rounds += 1
        except (RuntimeError, httpx.HTTPError, KeyError, ValueError) as exc:  # reported; the load goes on
            log.errors.append(f"{type(exc).__name__}: ...{str(exc)[-600:]}")  # the tail names the error
        log.seconds.append(time.perf_counter() - begun)


# -- the load ---------------------------------------------------------------------------------------


@dataclass
class Load:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: Counter[str] = field(default_factory=Counter)
    examples_5xx: list[str] = field(default_factory=list)
    served_versions: Counter[int] = field(default_factory=Counter)  # which version answered predictions


async def load(
    url: str, token: str, clients: int, duration: float, photos: list[bytes], items: list[int]
) -> Load:
    result = Load()
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    auth = {"Authorization": f"Bearer {token}"}
    filters: list[dict[str, Any]] = [
        {},
        {"provenance": "human"},
        {"max_confidence": 0.6},
        {"disagreement": "true"},
        {"class": "Sneaker"},
    ]
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, headers=auth) as http:
        stop_at = time.perf_counter() + duration

        async def request(kind: str, rng: random.Random) -> httpx.Response:
            if kind == "predict":
                data = photos[rng.randrange(len(photos))]
                return await http.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"})
            if kind == "gallery":
                return await http.get("/api/gallery", params={"limit": 60, **rng.choice(filters)})
            if kind == "overview":
                return await http.get("/api/overview")
            if kind == "thumbnail":
                return await http.get(f"/api/items/{rng.choice(items)}/thumbnail", params={"size": 256})
            return await http.get("/v1/models")

        async def client(index: int) -> None:
            rng = random.Random(index)
            while time.perf_counter() < stop_at:
                kind = rng.choice(kinds)
                begun = time.perf_counter()
                try:
                    answer = await request(kind, rng)
                except httpx.HTTPError as exc:
                    result.failures[f"{kind}: {type(exc).__name__}"] += 1
                    continue
                result.latencies[kind].append(time.perf_counter() - begun)
                result.statuses[(kind, answer.status_code)] += 1
                if kind == "predict" and answer.status_code == 200:
                    result.served_versions[int(answer.json()["model"]["version"])] += 1
                if answer.status_code >= 500 and len(result.examples_5xx) < 5:
                    result.examples_5xx.append(f"{kind} {answer.status_code}: {answer.text[:300]}")

        await asyncio.gather(*(client(index) for index in range(clients)))
    return result


class MemorySampler(threading.Thread):
    """The server process's resident memory (VmRSS, bytes) once a second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.started_at = time.perf_counter()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.samples.append((time.perf_counter() - self.started_at, int(line.split()[1]) * 1024))

    def median_between(self, start: float, end: float) -> float:
        values = [rss for at, rss in self.samples if start <= at <= end]
        return float(statistics.median(values)) if values else float("nan")


def _percentile(values: list[float], share: float) -> float:
    return float(np.percentile(np.asarray(values), share * 100)) * 1000 if values else float("nan")


def _jpegs(workdir: Path) -> list[bytes]:
    out = []
    for path in make_photos(workdir / "photos-640x480-40", 40, (640, 480)):
        buffer = io.BytesIO(path.read_bytes())
        out.append(buffer.getvalue())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the memory baseline")
    parser.add_argument("--labelled-per-class", type=int, default=8, help="human labels to start from")
    parser.add_argument("--pool-per-class", type=int, default=40, help="unlabelled items per class")
    parser.add_argument("--round-items", type=int, default=20, help="items pushed and annotated per round")
    parser.add_argument("--workdir", type=Path, default=None, help="keeps the photos between runs")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(60.0, args.duration * 0.1)

    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="vl-soak-"))).resolve()
    photos = _jpegs(workdir)
    params = workdir / "build-params.yaml"
    params.write_text(
        yaml.safe_dump({"train": TRAIN, "robustness": False, "eval_split": "test", "actor": "soak"})
    )
    token = secrets.token_urlsafe(24)
    with label_studio_server(workdir / "labelstudio") as labelstudio:
        os.environ["LABEL_STUDIO_API_KEY"] = labelstudio.token  # the commands read it from there only
        begun = time.perf_counter()
        root, truth = build_project(
            workdir / "project", labelstudio, args.labelled_per_class, args.pool_per_class
        )
        first = release(root, params)
        print(
            f"project ready in {time.perf_counter() - begun:.0f} s: "
            f"v{first} in production, {len(truth)} pool items"
        )
        with Project.load(root).open_catalog() as catalog:
            items = [item.id for item in catalog.iter_items()]
        with Server(Project.load(root), token) as server:
            sampler = MemorySampler(server.process.pid)
            sampler.start()
            stop, log = threading.Event(), LoopLog()
            looping = threading.Thread(
                target=loop_rounds,
                args=(root, labelstudio, truth, args.round_items, params, stop, log),
                daemon=True,
            )
            looping.start()
            result = asyncio.run(load(server.url, token, args.clients, args.duration, photos, items))
            stop.set()
            looping.join(timeout=1800)
            sampler.stop.set()
            sampler.join()

    end = sampler.samples[-1][0] if sampler.samples else 0.0
    baseline = sampler.median_between(warmup, warmup + WINDOW_SECONDS)
    final = sampler.median_between(end - WINDOW_SECONDS, end)
    growth = final / baseline - 1
    peak = max((rss for _, rss in sampler.samples), default=0)
    total = sum(result.statuses.values())
    server_errors = sum(count for (_, status), count in result.statuses.items() if status >= 500)

    print(
        f"\n{args.clients} clients for {args.duration:.0f} s: {total} answers ({total / args.duration:.1f}/s)"
    )
    print(f"{'route':<12}{'answers':>9}{'statuses':>28}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for kind, _ in MIX:
        statuses = {status: count for (k, status), count in sorted(result.statuses.items()) if k == kind}
        times = result.latencies[kind]
        shown = ", ".join(f"{status}: {count}" for status, count in statuses.items())
        print(
            f"{kind:<12}{len(times):>9}{shown:>28}{_percentile(times, 0.5):>9.1f}"
            f"{_percentile(times, 0.95):>9.1f}{_percentile(times, 0.99):>9.1f}"
        )
    every = [value for values in result.latencies.values() for value in values]
    print(f"all routes: p50 {_percentile(every, 0.5):.1f} ms, p99 {_percentile(every, 0.99):.1f} ms")
    if result.failures:
        print("transport failures:", dict(result.failures))
    for example in result.examples_5xx:
        print("5xx:", example)
    print(
        f"loop: {log.rounds} rounds ({log.pushed} pushed, {log.annotated} annotated, {log.pulled} pulled), "
        f"versions {log.versions}, round times {[round(s) for s in log.seconds]} s"
    )
    for error in log.errors:
        print("loop round failed:", error)
    served = ", ".join(f"v{version}: {count}" for version, count in sorted(result.served_versions.items()))
    print(f"predictions answered by: {served}")
    print(
        f"server memory: {baseline / 2**20:.0f} MiB after warm-up "
        f"({warmup:.0f}-{warmup + WINDOW_SECONDS:.0f} s), "
        f"{final / 2**20:.0f} MiB over the last {WINDOW_SECONDS:.0f} s, peak {peak / 2**20:.0f} MiB: "
        f"growth {growth:+.1%}"
    )
    minutes = range(0, int(end // 60) + 1)
    trend = [sampler.median_between(60 * m, 60 * m + 60) / 2**20 for m in minutes]
    print("server memory by minute (MiB):", " ".join(f"{value:.0f}" for value in trend))
    print(f"5xx answers: {server_errors} (target 0) {'PASS' if server_errors == 0 else 'FAIL'}")
    print(
        f"memory growth {growth:+.1%} (target < {MAX_GROWTH:.0%}) {'PASS' if growth < MAX_GROWTH else 'FAIL'}"
    )
    print(
        f"loop rounds completed while serving: {log.rounds} "
        + ("PASS" if log.rounds > 0 and not log.errors else "FAIL")
    )
    if args.json:
        figures = {
            "answers": total,
            "server_errors": server_errors,
            "transport_failures": sum(result.failures.values()),
            "p99_ms": _percentile(every, 0.99),
            "memory_growth": growth,
            "loop_rounds": log.rounds,
            "loop_errors": log.errors,
        }
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
