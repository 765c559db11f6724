"""Pre-labeling throughput: ``visionloop prelabel`` against a raw ONNX Runtime loop and against a
labeling-tool ML backend that answers one image per request, on the same photos in one run, at
several camera sizes (default 1024x768, 1920x1080 video frames and 4032x3024 12 MP phone photos).

The photos are real Fashion-MNIST test items (Debian's ``dataset-fashion-mnist``), tinted and
upscaled onto camera-sized canvases with a smooth colour field and sensor-like noise as
background, saved as JPEG (quality 90, 4:2:0, as cameras do): the decode cost of real photos, with
real objects in them. Each size is ingested into its own fresh project (SQLite catalog) as
unlabelled items. The model is torchvision's ImageNet MobileNetV2 (offline weights) with a new
10-class head, untrained (throughput does not depend on the head), exported to ONNX once by
``export_onnx``. Larger sizes use fewer images (``--images``, ``--backend-items``: one number per
size, or one for all); every figure is a rate.

Measured per size in the same run, interleaved, each figure the fastest of ``--repeats`` rounds,
end to end, with the CPU time per image of every process involved (decoding workers, the backend
server): wall-clock rates depend on what else runs on the machine, CPU time much less.

  (a) ``prelabel`` (the library call, default options, so ONNX Runtime): items from the catalog,
      decoding in a worker, predictions and embeddings stored, run recorded; with ``--torch``
      also with ``runtime="torch"`` for comparison.
  (b) a raw loop over the same files: open, JPEG draft decode (the same DCT scaling prelabel
      uses), resize, normalise, ``InferenceSession.run`` in batches of the same size. One process,
      no catalog, nothing stored; a default ``InferenceSession`` on the CPU provider.
  (c) an ML backend as labeling tools call it (Label Studio's ``/predict``): a stdlib HTTP server
      in its own process on 127.0.0.1 receives one task with one image path per request, reads
      and fully decodes the image, runs the PyTorch model eagerly on it and answers JSON; the
      client sends the items one request at a time over a kept-alive connection. Timed over
      ``--backend-items`` items. One PyTorch thread: faster than two for one small image here,
      and immune to the stalls two threads suffer when another process holds a core.

Targets: (a)/(b) >= 0.8 and (a)/(c) >= 10. Printed as PASS/FAIL per size; nothing asserts.
The backend works one request at a time on one core while prelabel keeps every core busy, so
(a)/(c) cannot exceed cores x (c)'s CPU per image / (a)'s; the run prints that bound per size
(decoding is most of (a)'s CPU: on 2 cores small photos stay under 10x however lean the rest).

Usage::

    .venv/bin/python bench/prelabel.py [--sizes 1024x768,1920x1080,4032x3024]
        [--images 1000,400,150] [--backend-items 300,150,60] [--side 64] [--batch-size 32]
        [--workers N] [--repeats 3] [--torch] [--workdir DIR] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from _photos import make_photos
from _prelabel_setup import make_model, make_project
from visionloop.active.prelabel import PrelabelOptions, PrelabelReport, prelabel
from visionloop.core.labels import ClassLabel
from visionloop.datasets import fashion_mnist
from visionloop.imaging.decode import decode_rgb
from visionloop.imaging.model_input import IMAGENET_MEAN, IMAGENET_STD
from visionloop.tasks.onnx_export import export_onnx
from visionloop.tasks.registry import load_trained_model

RAW_TARGET = 0.8
BACKEND_TARGET = 10.0
MEAN = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)  # the statistics the model was trained with
STD = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)


# -- measuring --------------------------------------------------------------------------------


@dataclass
class Figure:
    """Wall seconds and CPU seconds (this process, finished children, and any server) for
    ``items`` images; the best round counts."""

    items: int
    seconds: float = float("inf")
    cpu_seconds: float = float("inf")

    def keep(self, seconds: float, cpu_seconds: float) -> None:
        if seconds < self.seconds:
            self.seconds, self.cpu_seconds = seconds, cpu_seconds

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.items


def cpu_time() -> float:
    """CPU seconds of this process and of its children that have finished (decoding workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# -- (b) the raw loop -------------------------------------------------------------------------


def raw_loop(paths: list[Path], model: Path, side: int, batch_size: int) -> list[int]:
    """Top classes: decode (JPEG draft), resize, normalise, ORT, in batches; nothing else."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model / "model.onnx"), providers=["CPUExecutionProvider"])
    classes: list[int] = []
    for start in range(0, len(paths), batch_size):
        pixels = []
        for path in paths[start : start + batch_size]:
            with Image.open(path) as image:
                image.draft("RGB", (side, side))
                resized = image.convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
                pixels.append(np.asarray(resized))
        batch = np.stack(pixels).transpose(0, 3, 1, 2).astype(np.float32)
        batch = (batch / 255.0 - MEAN) / STD
        (logits,) = session.run(["logits"], {"images": batch})
        classes.extend(np.asarray(logits).argmax(axis=1).tolist())
    return classes


# -- (c) the one-image-per-request backend ----------------------------------------------------


def serve_backend(model: Path, port_file: Path, threads: int) -> None:
    """A Label Studio-style ML backend: POST /predict with tasks, one prediction per task
    (GET /cpu reports the server's CPU seconds, for the figures)."""
    import torch

    trained = load_trained_model(model)
    torch.set_grad_enabled(False)
    torch.set_num_threads(threads)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            results = []
            for task in request["tasks"]:
                image = decode_rgb(Path(task["data"]["image"]).read_bytes())
                (label,) = trained.predict([image])
                assert isinstance(label, ClassLabel)
                choice = {"choices": [label.class_name]}
                result = {"from_name": "label", "to_name": "image", "type": "choices", "value": choice}
                results.append({"result": [result], "score": label.score, "model_version": trained.version})
            self.answer({"results": results})

        def do_GET(self) -> None:
            self.answer({"cpu_seconds": time.process_time()})

        def answer(self, content: dict[str, Any]) -> None:
            body = json.dumps(content).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # quiet
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


class Backend:
    """The ML backend process, started once for the whole run; :meth:`measure` labels photos
    through it one request per image."""

    def __init__(self, model: Path, workdir: Path, threads: int) -> None:
        self.port_file = workdir / "backend.port"
        self.port_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            __file__,
            "--serve-backend",
            str(model),
            "--port-file",
            str(self.port_file),
        ]
        command += ["--backend-threads", str(threads)]
        self.process = subprocess.Popen(command, start_new_session=True)  # noqa: S603  # our own script

    def __enter__(self) -> Backend:
        deadline = time.monotonic() + 120
        while not self.port_file.is_file() or not self.port_file.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("the ML backend did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def measure(self, paths: list[Path], figure: Figure, repeats: int) -> list[str]:
        """Predicted classes, one request per image; the fastest of ``repeats`` rounds counts."""
        connection = http.client.HTTPConnection("127.0.0.1", int(self.port_file.read_text()), timeout=120)

        def call(method: str, body: str | None = None) -> Any:
            connection.request(
                method, "/predict" if body else "/cpu", body, {"Content-Type": "application/json"}
            )
            return json.loads(connection.getresponse().read())

        def ask(path: Path) -> str:
            answer = call("POST", json.dumps({"tasks": [{"id": 1, "data": {"image": str(path)}}]}))
            return str(answer["results"][0]["result"][0]["value"]["choices"][0])

        ask(paths[0])  # warm: the first request at a new size is not part of labeling
        classes: list[str] = []
        for _ in range(repeats):
            server_cpu, client_cpu = float(call("GET")["cpu_seconds"]), time.process_time()
            started = time.perf_counter()
            classes = [ask(path) for path in paths]
            seconds = time.perf_counter() - started
            cpu = float(call("GET")["cpu_seconds"]) - server_cpu + time.process_time() - client_cpu
            figure.keep(seconds, cpu)
        connection.close()
        return classes


# -- the run ----------------------------------------------------------------------------------


@dataclass
class SizeResult:
    """Everything measured at one photo size."""

    size: tuple[int, int]
    figures: dict[str, Figure]
    jpeg_mb: float
    load: tuple[float, float]
    loop_rate: float
    agree_raw: float
    agree_backend: float

    @property
    def raw_ratio(self) -> float:
        return self.figures["onnx"].rate / self.figures["raw"].rate

    @property
    def backend_ratio(self) -> float:
        return self.figures["onnx"].rate / self.figures["backend"].rate

    @property
    def name(self) -> str:
        return f"{self.size[0]}x{self.size[1]}"


def parse_size(text: str) -> tuple[int, int]:
    """``"WIDTHxHEIGHT"`` as ``(width, height)``."""
    try:
        width, height = (int(value) for value in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--sizes: expected WIDTHxHEIGHT[,WIDTHxHEIGHT...], got {text!r}") from None
    if min(width, height) < 32:
        raise SystemExit(f"--sizes: {text} is too small for a photo")
    return width, height


def per_size(text: str, count: int, what: str) -> list[int]:
    """One integer per size from ``"N"`` (all sizes) or ``"N1,N2,..."``."""
    values = [int(value) for value in text.split(",")]
    if len(values) == 1:
        values *= count
    if len(values) != count or min(values) < 1:
        raise SystemExit(f"{what}: give one positive number, or one per size ({count})")
    return values


def measure_size(
    size: tuple[int, int],
    paths: list[Path],
    scratch: Path,
    model: Path,
    backend: Backend,
    backend_items: int,
    args: argparse.Namespace,
    options: PrelabelOptions,
) -> SizeResult:
    width, height = size
    project = make_project(scratch / f"project-{width}x{height}", paths[0].parent)
    load_before = os.getloadavg()[0]
    names = ("onnx", "raw", "torch") if args.torch else ("onnx", "raw")
    figures = {name: Figure(len(paths)) for name in names}
    reports: dict[str, PrelabelReport] = {}
    raw_classes: list[int] = []

    def measure(name: str) -> None:
        cpu, begun = cpu_time(), time.perf_counter()
        if name == "raw":
            raw_classes[:] = raw_loop(paths, model, args.side, args.batch_size)
        else:
            report = prelabel(project, str(model), replace(options, runtime=name))  # type: ignore[arg-type]
            if report.predicted != len(paths) or report.failed or report.runtime != name:
                raise RuntimeError(
                    f"prelabel on {report.runtime} predicted {report.predicted}: {report.failed[:3]}"
                )
            reports[name] = report
        figures[name].keep(time.perf_counter() - begun, cpu_time() - cpu)

    for _ in range(args.repeats):  # interleaved, so a change in the machine's load hits all alike
        for name in names:
            measure(name)
    subset = paths[:backend_items]
    figures["backend"] = Figure(len(subset))
    backend_classes = backend.measure(subset, figures["backend"], args.repeats)
    load_after = os.getloadavg()[0]

    with project.open_catalog() as catalog:
        stored = catalog.run_predictions(reports["onnx"].run_id)
        uri_by_id = {item.id: item.uri for item in catalog.iter_items()}
    ours = {
        uri_by_id[item]: label.class_name
        for item, (label, _) in stored.items()
        if isinstance(label, ClassLabel)
    }
    raw_names = [fashion_mnist.CLASSES[index] for index in raw_classes]
    agree_raw = np.mean([ours.get(str(path)) == name for path, name in zip(paths, raw_names, strict=True)])
    agree_backend = np.mean(
        [ours.get(str(path)) == name for path, name in zip(subset, backend_classes, strict=True)]
    )
    return SizeResult(
        size=size,
        figures=figures,
        jpeg_mb=float(np.mean([path.stat().st_size for path in paths])) / 1e6,
        load=(load_before, load_after),
        loop_rate=reports["onnx"].images_per_second,
        agree_raw=float(agree_raw),
        agree_backend=float(agree_backend),
    )


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio >= target else "FAIL"


def print_table(results: list[SizeResult], args: argparse.Namespace, options: PrelabelOptions) -> None:
    print()
    print(
        f"MobileNetV2 (ImageNet, new 10-class head) at {args.side} px; JPEG quality 90; "
        f"{len(os.sched_getaffinity(0))} cores; prelabel workers={options.workers}; "
        f"fastest of {args.repeats} rounds"
    )
    print(
        "(a) visionloop prelabel, ONNX Runtime   (b) raw loop: draft decode + resize + ORT, batched   "
        "(c) ML backend, one image per request (full decode, PyTorch eager, 1 image/request)"
    )
    header = (
        f"{'size':>9} {'MB/jpg':>6} {'images':>6} {'(c) n':>5} | {'(a) img/s':>9} {'(b) img/s':>9} "
        f"{'(c) img/s':>9} | {'(a) CPU ms':>10} {'(b) CPU ms':>10} {'(c) CPU ms':>10} | "
        f"{'(a)/(b) >= ' + str(RAW_TARGET):>16} | {'(a)/(c) >= ' + f'{BACKEND_TARGET:.0f}x':>16} | "
        f"{'load':>9}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        onnx, raw, backend = (result.figures[name] for name in ("onnx", "raw", "backend"))
        raw_cell = f"{result.raw_ratio:.2f} {verdict(result.raw_ratio, RAW_TARGET)}"
        backend_cell = f"{result.backend_ratio:.1f}x {verdict(result.backend_ratio, BACKEND_TARGET)}"
        print(
            f"{result.name:>9} {result.jpeg_mb:6.2f} {onnx.items:6d} {backend.items:5d} | "
            f"{onnx.rate:9.1f} {raw.rate:9.1f} {backend.rate:9.2f} | "
            f"{onnx.cpu_ms:10.2f} {raw.cpu_ms:10.2f} {backend.cpu_ms:10.2f} | "
            f"{raw_cell:>16} | {backend_cell:>16} | {result.load[0]:4.1f}-{result.load[1]:.1f}"
        )
    print("-" * len(header))
    for result in results:
        extra = ""
        if "torch" in result.figures:
            torch_run = result.figures["torch"]
            extra = (
                f"; prelabel on PyTorch {torch_run.rate:.1f} images/s, {torch_run.cpu_ms:.2f} CPU ms/image "
                f"(ONNX Runtime {result.figures['onnx'].rate / torch_run.rate:.2f}x)"
            )
        print(
            f"{result.name}: prelabel's own loop rate (report) {result.loop_rate:.1f} images/s; same top "
            f"class as (a): raw loop {result.agree_raw:.1%}, ML backend {result.agree_backend:.1%}{extra}"
        )
    print("load: the 1-minute load average before and after the size's measurements (above ~1, other")
    print("processes share the cores)")
    cores = len(os.sched_getaffinity(0))
    print(
        f"CPU bound on (a)/(c) here: {cores} cores x (c) CPU ms / (a) CPU ms (the backend answers one "
        "request at a time on one core; prelabel keeps every core busy) = "
        + ", ".join(
            f"{cores * r.figures['backend'].cpu_ms / r.figures['onnx'].cpu_ms:.1f}x at {r.name}"
            for r in results
        )
    )

    raw_holds = [r.name for r in results if r.raw_ratio >= RAW_TARGET]
    backend_holds = [r.name for r in results if r.backend_ratio >= BACKEND_TARGET]
    raw_fails = [r.name for r in results if r.name not in raw_holds]
    backend_fails = [r.name for r in results if r.name not in backend_holds]
    print(
        f"Summary: (a)/(b) >= {RAW_TARGET} holds at {', '.join(raw_holds) or 'no size'}"
        + (f" (fails at {', '.join(raw_fails)})" if raw_fails else "")
        + f"; (a)/(c) >= {BACKEND_TARGET:.0f}x holds at {', '.join(backend_holds) or 'no size'}"
        + (f" (fails at {', '.join(backend_fails)})" if backend_fails else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1024x768,1920x1080,4032x3024", help="photo sizes, width x height, comma-separated"
    )
    parser.add_argument("--images", default="1000,400,150", help="photos per size (one number: all sizes)")
    parser.add_argument("--side", type=int, default=64, help="the model's input side")
    parser.add_argument("--batch-size", type=int, default=32, help="for the raw loop (prelabel's default)")
    parser.add_argument("--workers", type=int, default=None, help="prelabel workers (default: its own)")
    parser.add_argument(
        "--backend-items", default="300,150,60", help="items sent to the ML backend per size (one: all sizes)"
    )
    parser.add_argument(
        "--backend-threads",
        type=int,
        default=1,
        help="PyTorch threads in the ML backend (one image at a time runs fastest on one here)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds per figure; the fastest counts")
    parser.add_argument("--torch", action="store_true", help="also time prelabel with runtime='torch'")
    parser.add_argument("--workdir", type=Path, default=None, help="keeps the photos between runs")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--serve-backend", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_backend is not None:
        serve_backend(args.serve_backend, args.port_file, args.backend_threads)
        return 0

    sizes = [parse_size(size) for size in args.sizes.split(",")]
    counts = per_size(args.images, len(sizes), "--images")
    backend_counts = [
        min(count, items)
        for count, items in zip(
            counts, per_size(args.backend_items, len(sizes), "--backend-items"), strict=True
        )
    ]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vl-bench-prelabel-"))
    workdir.mkdir(parents=True, exist_ok=True)
    scratch = workdir / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)

    started = time.perf_counter()
    photos: list[list[Path]] = []
    for (width, height), count in zip(sizes, counts, strict=True):
        photos.append(make_photos(workdir / f"photos-{width}x{height}-{count}", count, (width, height)))
    model = make_model(scratch / "model", args.side)
    export = export_onnx(model, [decode_rgb(path.read_bytes()) for path in photos[0][:64]])
    print(
        f"photos {', '.join(f'{len(p)} at {w}x{h}' for p, (w, h) in zip(photos, sizes, strict=True))}; "
        f"model and ONNX export ready in {time.perf_counter() - started:.0f} s (parity: "
        f"{export.parity.agreement:.1%} agreement, "
        f"max logit diff {export.parity.max_abs_diff['logits']:.1e})",
        flush=True,
    )

    options = PrelabelOptions(items="all")
    if args.workers is not None:
        options = replace(options, workers=args.workers)
    results: list[SizeResult] = []
    with Backend(model, scratch, args.backend_threads) as backend:
        for size, paths, backend_items in zip(sizes, photos, backend_counts, strict=True):
            begun = time.perf_counter()
            result = measure_size(size, paths, scratch, model, backend, backend_items, args, options)
            results.append(result)
            print(
                f"{result.name}: measured in {time.perf_counter() - begun:.0f} s "
                f"(a/b {result.raw_ratio:.2f}, a/c {result.backend_ratio:.1f}x)",
                flush=True,
            )

    print_table(results, args, options)
    if args.json:
        document = [
            {
                "size": list(result.size),
                "images": result.figures["onnx"].items,
                "backend_items": result.figures["backend"].items,
                "jpeg_mb": result.jpeg_mb,
                "side": args.side,
                "workers": options.workers,
                "load_average": list(result.load),
                **{
                    f"{name}_{key}": value
                    for name, figure in result.figures.items()
                    for key, value in (
                        ("images_per_second", figure.rate),
                        ("cpu_ms_per_image", figure.cpu_ms),
                    )
                },
                "ratio_prelabel_to_raw": result.raw_ratio,
                "ratio_prelabel_to_backend": result.backend_ratio,
                "agreement_raw": result.agree_raw,
                "agreement_backend": result.agree_backend,
            }
            for result in results
        ]
        print(json.dumps(document, indent=2))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
