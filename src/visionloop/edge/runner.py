"""``edge run``: predict every image of a folder or frame of a video with an exported model,
write one JSON line per image, and capture what the model is unsure of.

Each line holds the source (and frame index), the prediction as the core label JSON (in the
full image's pixels), the item's score (the family's: a classifier's top-class probability, a
pose model's mean keypoint likelihood, a detector's least decisive object, see
:func:`~visionloop.edge.decoders.object_score`), the model version and whether it was captured.
Detector graphs run one image at a time (the export's ``images_per_run``) on images decoded with
their aspect ratio. Images that cannot be decoded are listed in the report and skipped.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

from visionloop.core.errors import StorageError, ValidationError
from visionloop.edge.capture import CapturePolicy, Capturer, PushResult, Spool, open_destination
from visionloop.edge.model import EdgeModel
from visionloop.edge.sources import Frame, Listing, list_images, read_frames
from visionloop.tasks.onnx_session import SessionSettings, available_cores
from visionloop.tasks.rescale import rescale_label

__all__ = ["EdgeOptions", "EdgeReport", "SyncReport", "run_edge", "sync_captures"]

Progress = Callable[[int, int | None], None]
STDOUT = "-"


@dataclass(frozen=True)
class EdgeOptions:
    """``output``: the JSON-lines file (``-``: standard output). ``every``: video frames to
    step (1: all). ``capture_to``: folder or ``s3://bucket/prefix`` for captures (None: capture
    nothing), spooled in ``spool`` first. ``draft``: JPEGs decode at a reduced scale (both sides
    at least the model's side, so a detector's resize target survives) and images the model
    squashes are resized while decoding. ``workers``: decoding threads."""

    model: Path
    source: Path
    output: str = "edge-predictions.jsonl"
    batch_size: int = 16
    every: int = 1
    limit: int | None = None
    capture_to: str | None = None
    spool: Path | None = None
    capture_below: float = 0.5
    sample: float = 0.0
    seed: int = 0
    retry_every: float = 10.0
    threads: int | None = None
    workers: int = field(default_factory=lambda: min(4, available_cores()))
    draft: bool = True


@dataclass
class EdgeReport:
    model: str
    model_version: str
    family: str
    precision: str
    source: str
    output: str
    images: int = 0
    predicted: int = 0
    skipped_files: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    captured: dict[str, int] = field(default_factory=lambda: {"uncertain": 0, "sampled": 0})
    capture_to: str | None = None
    spool: str | None = None
    uploaded: int = 0
    pending_upload: int = 0
    upload_error: str = ""
    seconds: float = 0.0
    images_per_second: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SyncReport:
    capture_to: str
    spool: str
    uploaded: int
    pending_upload: int
    upload_error: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _batches(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    while batch := list(islice(frames, size)):
        yield batch


@contextmanager
def _lines(output: str) -> Iterator[IO[str]]:
    if output == STDOUT:
        yield sys.stdout
        return
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w", encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"{path}: cannot write the predictions: {exc.strerror or exc}") from exc
    with handle:
        yield handle


def _open_capturer(options: EdgeOptions, model_version: str) -> Capturer | None:
    if options.capture_to is None:
        return None
    target = open_destination(options.capture_to)
    spool = Spool.open(target.url, options.spool)
    return Capturer(spool, target, model_version, options.retry_every)


def _record_push(report: EdgeReport, result: PushResult) -> None:
    report.pending_upload, report.upload_error = result.pending, result.error


def run_edge(options: EdgeOptions, progress: Progress | None = None) -> EdgeReport:
    """Run ``options.model`` over ``options.source``; see the module docstring."""
    if options.batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if not options.source.exists():
        raise ValidationError(f"{options.source}: no such folder, image or video")
    model = EdgeModel.open(options.model, SessionSettings(threads=options.threads))
    policy = CapturePolicy(options.capture_below, options.sample, options.seed)
    capturer = _open_capturer(options, model.version)
    report = EdgeReport(
        str(model.description.folder),
        model.version,
        model.family,
        model.precision,
        str(options.source),
        options.output,
    )
    listing: Listing | None = None
    total: int | None = None
    if options.source.is_dir():
        listing = list_images(options.source)
        report.skipped_files = listing.skipped
        total = len(listing.files) if options.limit is None else min(options.limit, len(listing.files))
    if capturer is not None:
        report.capture_to, report.spool = capturer.target.url, str(capturer.spool.root)
        _record_push(report, capturer.push(force=True))  # what an earlier, offline run left
    frames = read_frames(
        options.source,
        at_least=model.side if options.draft else None,
        squash_to=model.squashed_size if options.draft else None,
        every=options.every,
        workers=options.workers,
        ahead=max(2 * options.batch_size, options.workers),
        listing=listing,
    )
    if options.limit is not None:
        frames = islice(frames, options.limit)
    started = time.perf_counter()
    with _lines(options.output) as out:
        for batch in _batches(frames, options.batch_size):
            captured = _predict_batch(model, batch, policy, capturer, out, report)
            out.flush()
            if capturer is not None and (captured or report.upload_error):
                _record_push(report, capturer.push())
            if progress is not None:
                progress(report.images, total)
    report.seconds = time.perf_counter() - started
    report.images_per_second = report.predicted / report.seconds if report.seconds > 0 else 0.0
    if capturer is not None:
        _record_push(report, capturer.push(force=True))
        report.uploaded = capturer.uploaded
    return report


def _predict_batch(
    model: EdgeModel,
    batch: list[Frame],
    policy: CapturePolicy,
    capturer: Capturer | None,
    out: IO[str],
    report: EdgeReport,
) -> int:
    """Predict, write and capture one batch; returns how many items it captured."""
    report.images += len(batch)
    good = [(frame, frame.pixels) for frame in batch if frame.pixels is not None]
    report.failed.extend({"source": f.source, "reason": f.error} for f in batch if f.pixels is None)
    labels = model.predict([pixels for _, pixels in good])
    captured = 0
    for (frame, pixels), predicted in zip(good, labels, strict=True):
        label = rescale_label(predicted, (int(pixels.shape[0]), int(pixels.shape[1])), frame.size)
        score = model.decoder.score(label)
        reason = policy.reason(score) if capturer is not None else None
        line: dict[str, Any] = {"source": frame.source}
        if frame.frame is not None:
            line["frame"] = frame.frame
        line.update(prediction=label.to_dict(), score=score, model_version=model.version, captured=reason)
        if capturer is not None and reason is not None:
            image, extension = frame.capture_image()
            extra = {
                "model_family": model.family,
                "image_height": frame.size[0],
                "image_width": frame.size[1],
            }
            capturer.capture(image, extension, frame.source, frame.frame, label, score, reason, extra)
            report.captured[reason] += 1
            captured += 1
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        report.predicted += 1
    return captured


def sync_captures(capture_to: str, spool: Path | None = None) -> SyncReport:
    """Push what the spool of ``capture_to`` holds (``edge sync``)."""
    target = open_destination(capture_to)
    opened = Spool.open(target.url, spool)
    result = opened.push(target)
    return SyncReport(target.url, str(opened.root), result.uploaded, result.pending, result.error)
