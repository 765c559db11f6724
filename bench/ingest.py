"""Benchmark ingest against the plainest loops that do the same work, and print the figures.

Two questions, answered side by side in one run:

1. Throughput: how fast does ``ingest`` add new JPEGs compared with a bare single-threaded loop
   that reads, hashes and draft-decodes the same files without any database? (target: >= 0.7x)
2. Incremental re-scan: how long does re-running ``ingest`` over an unchanged tree take compared
   with simply walking the tree and stat-ing every file? (target: <= 3x)

Nothing here asserts: every figure is printed with PASS/FAIL next to its target, so a miss is
visible rather than hidden behind a traceback. The exit code is 0 unless something crashes.

Usage::

    .venv/bin/python bench/ingest.py [--files 10000] [--rescan-files 100000] [--workdir DIR]
                                     [--keep] [--json] [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import PIL
from PIL import Image

from visionloop.catalog import Catalog, sqlite_url_for
from visionloop.ingest import IngestOptions, IngestReport, ingest
from visionloop.storage import Filesystem

THROUGHPUT_TARGET = 0.7  # ingest files/s divided by raw-loop files/s must be at least this
RESCAN_TARGET = 3.0  # re-scan seconds divided by walk-and-stat seconds must be at most this
FILES_PER_JPEG_FOLDER = 1000
TINY_FOLDERS = 100
JPEG_SIZE = (320, 240)
TINY_SIZE = 8
T = TypeVar("T")

HEADER = """\
visionloop ingest benchmark
===========================
What each timed loop does (judge the fairness yourself):

  raw loop      One thread, no database, over a pre-built list of the N paths (it does NOT list or
                stat the tree, ingest does). Per file: data = open(p, 'rb').read();
                hashlib.sha256(data).hexdigest(); img = Image.open(io.BytesIO(data));
                img.draft(img.mode, (w // 8, h // 8)); img.load().
                No format restriction, no pixel-limit or EXIF check, no rows written.
  ingest wK     visionloop.ingest.ingest(catalog, Filesystem(folder), IngestOptions(workers=K)) into
                a fresh SQLite catalog file. Catalog.open (create + migrate) happens before the timer
                starts and close() after it stops. Timed: listing (os.scandir + stat), reading,
                sha256, probe_image (restricted formats, pixel limit, EXIF orientation, draft decode),
                recording items and the file index in batches, run bookkeeping.
                K = 2 is the default (IngestOptions().workers); K = 1 is the single-thread
                apples-to-apples comparison with the raw loop.
  walk scandir  Recursive os.scandir, entry.stat() on every file, counting them. Nothing else.
  walk os.walk  os.walk, then os.stat(os.path.join(dirpath, name)) on every file.
                The faster of the two walks is the re-scan baseline.
  rescan        ingest() again over the unchanged tree, same catalog: lists and stats every file
                (entries sorted per folder), loads the catalog's file index, compares
                (size, mtime_ns) fingerprints, records a run. It reads no file content.

Page cache: every file was written moments before, so all timings are warm-cache figures (not
cold-disk ones); an untimed warm-up pass of the raw loop and of each walk runs first anyway.
After generating, os.sync() (untimed) flushes dirty pages so writeback does not skew timings.
Timed runs are interleaved (raw, ingest w2, ingest w1, raw, ...) and the median is used.
CPU seconds are process-wide (all threads), from time.process_time.
"""


# -- small records ---------------------------------------------------------------------------


@dataclass
class Series:
    """Repeated measurements of one loop, so the median and the spread can both be printed."""

    name: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)

    def to_dict(self, files: int) -> dict[str, Any]:
        return {
            "seconds": self.wall,
            "cpu_seconds": self.cpu,
            "median_seconds": self.median,
            "files_per_second": files / self.median if self.median > 0 else None,
        }


def timed(run: Callable[[], T]) -> tuple[float, float, T]:
    """Wall and process CPU seconds of one call; CPU shows how much of the box a loop used."""
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    result = run()
    wall = time.perf_counter() - wall0
    return wall, time.process_time() - cpu0, result


def fmt_values(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


def print_results(repeats: int, count: int, series_list: list[Series]) -> None:
    """One line per timed loop: median wall time, files/s, CPU time and every repeat."""
    print(f"\n  Results (median of {repeats}):")
    for series in series_list:
        print(
            f"    {series.name:<22} {series.median:7.3f} s  {count / series.median:9.0f} files/s  "
            f"cpu {series.median_cpu:6.2f} s   all: {fmt_values(series.wall)}"
        )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# -- data generation -------------------------------------------------------------------------


def make_jpegs(root: Path, count: int, seed: int) -> list[str]:
    """Write ``count`` distinct 320x240 JPEGs (gradients + noise, q85), ~1000 per subfolder.

    Smooth gradients plus mild noise compress like photos rather than like pure noise (which
    would inflate file sizes and make decoding unrepresentatively slow). Each image has its own
    gradient parameters from one seeded generator, so every file has distinct bytes and the set
    is the same on every run. Generation must stay cheap next to the timed loops, hence the
    separable gradient (sin(a+b) = sin a cos b + cos a sin b, from 1-D rows and columns) and
    noise cut at a random offset from a small precomputed bank.
    """
    width, height = JPEG_SIZE
    rng = np.random.default_rng(seed)
    xs = (np.arange(width, dtype=np.float32) / width)[:, None]  # (w, 1)
    ys = (np.arange(height, dtype=np.float32) / height)[:, None]  # (h, 1)
    margin = 32
    bank = rng.normal(0.0, 6.0, size=(4, height + margin, width + margin, 3)).astype(np.float32)
    paths: list[str] = []
    for index in range(count):
        folder = root / f"d{index // FILES_PER_JPEG_FOLDER:03d}"
        if index % FILES_PER_JPEG_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        ax, ay, phase = rng.uniform(-3.0, 3.0, size=(3, 3)).astype(np.float32)
        base = rng.uniform(40.0, 215.0, size=3).astype(np.float32)
        along_x = ax * xs + phase  # (w, 3)
        along_y = ay * ys  # (h, 3)
        wave = (np.sin(along_x)[None] * np.cos(along_y)[:, None]) + (
            np.cos(along_x)[None] * np.sin(along_y)[:, None]
        )
        k, dy, dx = rng.integers(0, (len(bank), margin, margin))
        noise = bank[k, dy : dy + height, dx : dx + width]
        pixels = np.clip(base + 60.0 * wave + noise, 0, 255).astype(np.uint8)
        path = folder / f"img{index:06d}.jpg"
        Image.fromarray(pixels, "RGB").save(path, format="JPEG", quality=85)
        paths.append(str(path))
        if (index + 1) % 2000 == 0 or index + 1 == count:
            print(f"  generated {index + 1}/{count} JPEGs", flush=True)
    return paths


def make_tiny_pngs(root: Path, count: int) -> list[str]:
    """Write ``count`` distinct 8x8 RGB PNGs across 100 subfolders, as fast as Pillow allows.

    The file index embeds its own number in the pixels, so no two files share content (shared
    content would turn adds into duplicates and change what the first ingest does).
    """
    folders = [root / f"t{n:03d}" for n in range(TINY_FOLDERS)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    pattern = bytes(range(TINY_SIZE * TINY_SIZE * 3 - 4))
    paths: list[str] = []
    buffer = io.BytesIO()
    for index in range(count):
        payload = index.to_bytes(4, "little") + pattern
        image = Image.frombytes("RGB", (TINY_SIZE, TINY_SIZE), payload)
        buffer.seek(0)
        buffer.truncate()
        image.save(buffer, format="PNG")
        path = folders[index % TINY_FOLDERS] / f"p{index:07d}.png"
        path.write_bytes(buffer.getvalue())
        paths.append(str(path))
        if (index + 1) % 20000 == 0 or index + 1 == count:
            print(f"  generated {index + 1}/{count} tiny PNGs", flush=True)
    return paths


def settle_writes() -> None:
    """Flush freshly written files to disk (untimed) before anything is timed.

    Background writeback of their dirty pages would otherwise steal CPU and I/O from whichever
    loop happens to run next. The pages stay in the page cache, so timed loops still read memory.
    """
    wall, _cpu, _ = timed(os.sync)
    print(f"  os.sync() after generation (untimed): {wall:.2f} s")


# -- the loops being compared ----------------------------------------------------------------


def raw_loop(paths: list[str]) -> int:
    """The baseline ingest must approach: read, sha256 and draft-decode each file, nothing else."""
    decoded = 0
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        hashlib.sha256(data).hexdigest()
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            img.draft(img.mode, (width // 8, height // 8))
            img.load()
        decoded += 1
    return decoded


def walk_scandir(root: str) -> int:
    """The cheapest stdlib listing: recursive scandir with one stat per file (no sorting)."""
    count = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    entry.stat(follow_symlinks=False)
                    count += 1
    return count


def walk_os(root: str) -> int:
    """The textbook listing: os.walk plus os.stat on every file name."""
    count = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            os.stat(os.path.join(dirpath, name))
            count += 1
    return count


def ingest_fresh(folder: Path, db_path: Path, workers: int) -> tuple[float, float, IngestReport]:
    """Ingest into a brand-new catalog; only the ingest() call itself is timed."""
    if db_path.exists():
        remove_catalog(db_path)
    catalog = Catalog.open(sqlite_url_for(db_path))
    try:
        wall, cpu, report = timed(
            lambda: ingest(catalog, Filesystem(str(folder)), IngestOptions(workers=workers))
        )
    finally:
        catalog.close()
    return wall, cpu, report


def remove_catalog(db_path: Path) -> None:
    """Delete a SQLite catalog and its WAL side files so the next run starts truly fresh."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def check_report(label: str, report: IngestReport, *, added: int, unchanged: int) -> bool:
    """Print a warning (not an assertion) when a run did not do what the benchmark assumes."""
    ok = report.added == added and report.unchanged == unchanged and report.rejected == 0
    if not ok:
        print(
            f"  WARNING {label}: seen={report.seen} added={report.added} unchanged={report.unchanged} "
            f"rejected={report.rejected} (expected added={added} unchanged={unchanged} rejected=0)"
        )
        for rejection in report.rejections[:3]:
            print(f"    rejected {rejection.path}: {rejection.reason}")
    return ok


# -- the two experiments ---------------------------------------------------------------------


def throughput_experiment(workdir: Path, count: int, repeats: int, seed: int) -> dict[str, Any]:
    """Part 1: ingest files/s against the raw loop, default workers and one worker."""
    print(f"\n[1] Throughput: {count} new JPEGs {JPEG_SIZE[0]}x{JPEG_SIZE[1]} q85")
    folder = workdir / "jpegs"
    wall, _cpu, _ = timed(lambda: make_jpegs(folder, count, seed))
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))
    total_bytes = sum(os.path.getsize(p) for p in paths)
    print(
        f"  generated in {wall:.1f} s; {len(paths)} files, {total_bytes / 1e6:.1f} MB, "
        f"mean {total_bytes / max(1, len(paths)) / 1024:.1f} KiB"
    )
    settle_writes()
    default_workers = IngestOptions().workers
    warm_wall, _cpu, _ = timed(lambda: raw_loop(paths))
    print(f"  warm-up raw loop (untimed for results): {warm_wall:.3f} s")

    raw = Series("raw loop")
    ingest_default = Series(f"ingest w{default_workers} (default)")
    ingest_one = Series("ingest w1")
    reports_ok = True
    for rep in range(1, repeats + 1):
        wall, cpu, _ = timed(lambda: raw_loop(paths))
        raw.add(wall, cpu)
        print(
            f"  rep {rep}: raw loop            {wall:7.3f} s  ({count / wall:8.0f} files/s, cpu {cpu:.2f} s)"
        )
        for series, workers in ((ingest_default, default_workers), (ingest_one, 1)):
            wall, cpu, report = ingest_fresh(folder, workdir / f"throughput-w{workers}.db", workers)
            series.add(wall, cpu)
            reports_ok &= check_report(series.name, report, added=count, unchanged=0)
            print(
                f"  rep {rep}: {series.name:<19} {wall:7.3f} s  ({count / wall:8.0f} files/s, "
                f"cpu {cpu:.2f} s, report.seconds {report.seconds:.3f}, added {report.added})"
            )
    for workers in (default_workers, 1):
        remove_catalog(workdir / f"throughput-w{workers}.db")

    ratio_default = raw.median / ingest_default.median
    ratio_one = raw.median / ingest_one.median
    print_results(repeats, count, [raw, ingest_default, ingest_one])
    print(
        f"    ratio ingest/raw, w{default_workers} (default): {ratio_default:.3f}  "
        f"target >= {THROUGHPUT_TARGET}  {verdict(ratio_default >= THROUGHPUT_TARGET)}"
    )
    print(
        f"    ratio ingest/raw, w1 (single thread): {ratio_one:.3f}  "
        f"(informational; target applies to the default) "
        f"{verdict(ratio_one >= THROUGHPUT_TARGET)}"
    )
    return {
        "files": count,
        "bytes": total_bytes,
        "default_workers": default_workers,
        "raw_loop": raw.to_dict(count),
        "ingest_default": ingest_default.to_dict(count),
        "ingest_w1": ingest_one.to_dict(count),
        "ratio_default": ratio_default,
        "ratio_w1": ratio_one,
        "target": THROUGHPUT_TARGET,
        "pass": ratio_default >= THROUGHPUT_TARGET,
        "reports_ok": reports_ok,
    }


def rescan_experiment(workdir: Path, count: int, repeats: int) -> dict[str, Any]:
    """Part 2: re-running ingest over an unchanged tree against a bare walk-and-stat."""
    print(f"\n[2] Incremental re-scan: {count} tiny {TINY_SIZE}x{TINY_SIZE} PNGs in {TINY_FOLDERS} folders")
    folder = workdir / "tiny"
    wall, _cpu, _ = timed(lambda: make_tiny_pngs(folder, count))
    print(f"  generated in {wall:.1f} s")
    settle_writes()

    db_path = workdir / "rescan.db"
    remove_catalog(db_path)
    catalog = Catalog.open(sqlite_url_for(db_path))
    try:
        step = max(1, count // 10)
        marks = {"next": step}

        def progress(done: int, total: int) -> None:
            if done >= marks["next"] or done == total:
                print(f"    first ingest: {done}/{total}", flush=True)
                marks["next"] = (done // step + 1) * step

        options = IngestOptions()
        first_wall, first_cpu, first = timed(
            lambda: ingest(catalog, Filesystem(str(folder)), options, progress)
        )
        first_ok = check_report("first ingest", first, added=count, unchanged=0)
        print(
            f"  first ingest (w{options.workers}): {first_wall:.3f} s ({count / first_wall:.0f} files/s, "
            f"cpu {first_cpu:.2f} s), added {first.added}, rejected {first.rejected}"
        )

        root = str(folder)
        for name, walk in (("scandir", walk_scandir), ("os.walk", walk_os)):
            warm_wall, _cpu, found = timed(lambda walk=walk: walk(root))
            print(f"  warm-up walk {name} (untimed for results): {warm_wall:.3f} s, {found} files")

        scandir = Series("walk scandir+stat")
        oswalk = Series("walk os.walk+os.stat")
        rescan = Series("rescan ingest")
        unchanged_ok = True
        for rep in range(1, repeats + 1):
            for series, walk in ((scandir, walk_scandir), (oswalk, walk_os)):
                wall, cpu, found = timed(lambda walk=walk: walk(root))
                series.add(wall, cpu)
                print(f"  rep {rep}: {series.name:<21} {wall:7.3f} s  (cpu {cpu:.2f} s, {found} files)")
            wall, cpu, report = timed(lambda: ingest(catalog, Filesystem(root), options))
            rescan.add(wall, cpu)
            ok = report.unchanged == count
            unchanged_ok &= ok and check_report("rescan", report, added=0, unchanged=count)
            print(
                f"  rep {rep}: {rescan.name:<21} {wall:7.3f} s  (cpu {cpu:.2f} s, report.seconds "
                f"{report.seconds:.3f}, unchanged {report.unchanged} == {count}: {ok})"
            )
    finally:
        catalog.close()
    remove_catalog(db_path)

    baseline = min((scandir, oswalk), key=lambda s: s.median)
    ratio = rescan.median / baseline.median
    print_results(repeats, count, [scandir, oswalk, rescan])
    print(f"    baseline = {baseline.name} (the faster walk)")
    print(f"    unchanged == {count} on every re-scan: {unchanged_ok}")
    print(f"    ratio rescan/walk: {ratio:.3f}  target <= {RESCAN_TARGET}  {verdict(ratio <= RESCAN_TARGET)}")
    return {
        "files": count,
        "first_ingest": {
            "seconds": first_wall,
            "cpu_seconds": first_cpu,
            "files_per_second": count / first_wall,
            "added": first.added,
            "ok": first_ok,
        },
        "walk_scandir": scandir.to_dict(count),
        "walk_os": oswalk.to_dict(count),
        "rescan": rescan.to_dict(count),
        "baseline": baseline.name,
        "unchanged_ok": unchanged_ok,
        "ratio": ratio,
        "target": RESCAN_TARGET,
        "pass": ratio <= RESCAN_TARGET,
    }


# -- driver ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=10_000, help="JPEGs for the throughput test")
    parser.add_argument("--rescan-files", type=int, default=100_000, help="tiny PNGs for the re-scan test")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="parent folder for the benchmark's own temporary folder (default: system temp)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files and folder")
    parser.add_argument("--json", action="store_true", help="also print one final JSON line of all figures")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per loop; the median is used")
    parser.add_argument("--seed", type=int, default=0, help="seed for the generated JPEG content")
    args = parser.parse_args(argv)
    if args.files < 1 or args.rescan_files < 1 or args.repeats < 1:
        parser.error("--files, --rescan-files and --repeats must be at least 1")
    return args


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(HEADER)
    env = environment()
    print("Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    # Always a folder of our own, even inside --workdir, so cleanup never touches anything else.
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="visionloop-bench-", dir=args.workdir))
    print(f"Work folder: {workdir}{' (kept)' if args.keep else ' (removed at the end)'}")
    started = time.perf_counter()
    try:
        throughput = throughput_experiment(workdir, args.files, args.repeats, args.seed)
        rescan = rescan_experiment(workdir, args.rescan_files, args.repeats)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.perf_counter() - started

    print("\nSummary")
    print(
        f"  throughput ingest/raw (w{throughput['default_workers']}, default): "
        f"{throughput['ratio_default']:.3f} (>= {THROUGHPUT_TARGET})  {verdict(throughput['pass'])}"
    )
    print(f"  throughput ingest/raw (w1):            {throughput['ratio_w1']:.3f}  (informational)")
    print(
        f"  rescan/walk:                           {rescan['ratio']:.3f} (<= {RESCAN_TARGET})  "
        f"{verdict(rescan['pass'])}"
    )
    print(f"  whole benchmark: {total:.1f} s")
    if args.json:
        figures = {
            "environment": env,
            "throughput": throughput,
            "rescan": rescan,
            "total_seconds": total,
        }
        print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
