"""The edge runtime's command line (argparse: the device may have nothing else).

``python -m visionloop.edge`` and ``visionloop edge`` both land here, so the options, help and
output are defined once. Errors print one line and exit with 1; images that cannot be read are
listed in the summary and do not fail the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from visionloop.core.errors import VisionloopError
from visionloop.edge.runner import STDOUT, EdgeOptions, EdgeReport, SyncReport, run_edge, sync_captures

__all__ = ["build_parser", "main"]

EXIT_ERROR = 1
DESCRIPTION = """\
Run a model exported with 'visionloop export-model MODEL --format onnx' on a folder of images
or a video, with ONNX Runtime alone (no PyTorch), and capture what it is unsure of.

  run    predict every image (or every --every-th video frame); one JSON line per image
  sync   upload the captures an offline run left in its spool
"""
RUN_DESCRIPTION = """\
Predict every image of SOURCE (a folder, searched recursively for .jpg .png .webp .bmp .tif
.gif files; one image; or a video, read with OpenCV) with MODEL and write one JSON line per
image to --output: {"source", "frame" (video), "prediction" (the label as JSON, in the image's
pixels), "score", "model_version", "captured"}. The score is how sure the model is: a
classifier's top-class probability, a pose model's mean keypoint likelihood.

With --capture-to, items scoring below --capture-below, and a seeded random --sample share of
the others, are captured: the image plus a JSON sidecar (prediction, score, model version,
reason, time) go to a local spool first and are uploaded to the destination when it can be
reached (at the start and end of the run and after batches), so nothing is lost offline.
'visionloop ingest PREFIX --capture' takes the captured images in for labeling.
"""
SYNC_DESCRIPTION = """\
Upload the captures waiting in the spool of --capture-to. A file leaves the spool only once it
is uploaded; what fails stays for the next sync or run.
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie within [0, 1], got {value}")
    return value


def _capture_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "--capture-to",
        metavar="PREFIX",
        required=required,
        help="Folder or s3://bucket/prefix for captures (s3 needs s3fs; endpoint and keys from "
        "the AWS_* environment variables).",
    )
    parser.add_argument(
        "--spool",
        type=Path,
        metavar="DIR",
        help="Local folder captures wait in until uploaded. Default: one per destination under "
        "~/.cache/visionloop/edge-spool.",
    )
    parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")


def build_parser(prog: str = "python -m visionloop.edge") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,sync}")
    run = commands.add_parser(
        "run",
        help="predict a folder or video",
        description=RUN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--model", type=Path, help="Model folder (or its model.onnx).")
    run.add_argument("--source", type=Path, help="Folder of images, one image, or a video file.")
    run.add_argument(
        "-o", "--output", default="edge-predictions.jsonl", help="JSON-lines file; '-' for stdout."
    )
    run.add_argument("--batch-size", type=_positive_int, default=16, help="Images per model call.")
    run.add_argument("--every", type=_positive_int, default=1, help="Video: predict every N-th frame.")
    run.add_argument("--limit", type=_positive_int, help="Stop after this many images or frames.")
    run.add_argument(
        "--capture-below",
        type=_share,
        default=0.5,
        help="Capture items whose score is below this (default 0.5).",
    )
    run.add_argument(
        "--sample", type=_share, default=0.0, help="Also capture this random share of the rest (0.01 = 1%%)."
    )
    run.add_argument("--seed", type=int, default=0, help="Seed of the random sample.")
    run.add_argument(
        "--retry-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="After a failed upload, wait this long before trying again between batches.",
    )
    run.add_argument("--threads", type=_positive_int, help="ONNX Runtime threads. Default: all cores.")
    run.add_argument(
        "--workers", type=_count, help="Image decoding threads (0: none). Default: cores, at most 4."
    )
    run.add_argument(
        "--no-draft",
        action="store_true",
        help="Decode JPEGs at full size (slower, same labels within noise).",
    )
    run.add_argument("--sync-only", action="store_true", help="Only upload the spool (as 'sync').")
    _capture_options(run, required=False)
    sync = commands.add_parser("sync", help="upload the capture spool", description=SYNC_DESCRIPTION)
    _capture_options(sync, required=True)
    return parser


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    """A rich progress bar on stderr when rich is installed (it is optional on a device), drawn
    from the first batch on, so a run that fails to start prints only its error."""
    if not enabled:
        yield None
        return
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    except ImportError:
        yield None
        return
    columns = (TextColumn("[bold]Predicting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    bar = Progress(*columns, console=Console(stderr=True))
    task = bar.add_task("predict", total=None)

    def update(done: int, total: int | None) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


def _summary_lines(report: EdgeReport | SyncReport) -> list[str]:
    lines: list[str] = []
    if isinstance(report, EdgeReport):
        lines.append(
            f"{report.predicted} of {report.images} images predicted by {report.model_version} "
            f"({report.family}, {report.precision}) in {report.seconds:.1f} s "
            f"({report.images_per_second:.1f} images/s); predictions in {report.output}"
        )
        if report.skipped_files:
            lines.append(f"{report.skipped_files} files without an image extension left out")
        for failure in report.failed[:20]:
            lines.append(f"unreadable: {failure['source']}: {failure['reason']}")
        if len(report.failed) > 20:
            lines.append(f"... and {len(report.failed) - 20} more unreadable (see --json)")
        if report.capture_to is None:
            return lines
        captured = report.captured
        lines.append(f"captured {captured['uncertain']} uncertain and {captured['sampled']} sampled")
    lines.append(f"uploaded {report.uploaded} files to {report.capture_to}; {report.pending_upload} waiting")
    if report.upload_error:
        lines.append(f"upload failed, kept in {report.spool}: {report.upload_error}")
    return lines


def _print(report: EdgeReport | SyncReport, as_json: bool, stream: IO[str]) -> None:
    if as_json:
        stream.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        stream.write("\n".join(_summary_lines(report)) + "\n")


def _run(args: argparse.Namespace) -> EdgeReport | SyncReport:
    if args.command == "sync" or args.sync_only:
        return sync_captures(args.capture_to, args.spool)
    options: dict[str, Any] = {
        "model": args.model,
        "source": args.source,
        "output": args.output,
        "batch_size": args.batch_size,
        "every": args.every,
        "limit": args.limit,
        "capture_to": args.capture_to,
        "spool": args.spool,
        "capture_below": args.capture_below,
        "sample": args.sample,
        "seed": args.seed,
        "retry_every": args.retry_every,
        "threads": args.threads,
        "draft": not args.no_draft,
    }
    if args.workers is not None:
        options["workers"] = args.workers
    with _progress(not args.json) as progress:
        return run_edge(EdgeOptions(**options), progress)


def main(argv: Sequence[str] | None = None, prog: str = "python -m visionloop.edge") -> int:
    """Parse ``argv``, run the command, print its summary; the process exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.command == "run" and args.sync_only and args.capture_to is None:
        parser.error("--sync-only needs --capture-to")
    if args.command == "run" and not args.sync_only and (args.model is None or args.source is None):
        parser.error(
            "run needs --model (an exported model folder) and --source (a folder, an image or a video)"
        )
    try:
        report = _run(args)
    except VisionloopError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    to_stdout_taken = getattr(args, "output", None) == STDOUT and args.command == "run"
    _print(report, args.json, sys.stderr if to_stdout_taken else sys.stdout)
    return 0
