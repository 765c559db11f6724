"""Pre-labeling: run a trained model over catalog items and store its predictions and embeddings.

A stored run of kind ``prelabel``. Images are read and decoded by data-loader workers while the
model predicts the previous batch; JPEGs decode at a reduced DCT scale when the model shrinks
them anyway, and predictions are moved back to the full image's pixels. Every ``chunk`` items
the embeddings are written (``runs/<run>/embeddings/chunk-NNNNN.npz``) and then the predictions
committed with the run id, so a killed run resumes where it stopped (``resume_run``) and an
item is never predicted twice by one run. Images that cannot be decoded are reported, not fatal.
The model runs on ONNX Runtime when a current ONNX export sits next to it (``runtime="auto"``),
on PyTorch otherwise; the run records which ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import DataLoader, Dataset

from visionloop.active.prelabel_batch import Decoded, Predicted, decode_item, predict_decoded
from visionloop.active.store import (
    PRELABEL_KIND,
    ItemChoice,
    embeddings_dir,
    prelabel_items,
    write_embeddings_chunk,
)
from visionloop.catalog import Catalog
from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label
from visionloop.datasets.records import ImageReader
from visionloop.project import Project
from visionloop.tasks.onnx_runtime import SessionSettings, available_cores
from visionloop.tasks.predictor import Predictor, Runtime, load_project_predictor
from visionloop.tasks.registry import squashed_input_size

__all__ = ["PrelabelOptions", "PrelabelReport", "default_workers", "prelabel"]

Progress = Callable[[int, int], None]
Executor = Literal["local", "ray"]
MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    """One decoding process per core this process may use (at most ``MAX_DEFAULT_WORKERS``)."""
    return min(MAX_DEFAULT_WORKERS, available_cores())


@dataclass(frozen=True)
class PrelabelOptions:
    """``items``: which active items to predict (``unlabeled``: no annotation of any kind yet).
    ``runtime``: ``onnx`` (ONNX Runtime on the model's export), ``torch``, or ``auto`` (ONNX
    Runtime when a current export exists next to the model). ``workers``: decoding processes,
    by default one per core (decoding, not the small model, bounds pre-labeling: on 2 cores two
    workers ran 1.45x to 1.7x faster than one on 1 to 12 MP JPEGs). ``draft``: JPEGs decode at
    a reduced DCT scale, and images the model squashes are resized in the workers."""

    items: ItemChoice = "unlabeled"
    batch_size: int = 32
    workers: int = field(default_factory=default_workers)
    chunk: int = 1024
    limit: int | None = None
    draft: bool = True
    runtime: Runtime = "auto"
    executor: Executor = "local"
    ray_address: str | None = None  # None: the cluster in $RAY_ADDRESS, else a local Ray instance


@dataclass
class PrelabelReport:
    run_id: str
    model: str
    model_version: str
    items: int
    predicted: int = 0
    already_done: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    images_per_second: float = 0.0
    embedding_dim: int = 0
    embeddings: str = ""
    runtime: str = ""
    runtime_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _ItemImages(Dataset[tuple[int, npt.NDArray[np.uint8] | None, tuple[int, int], str]]):
    """(item id, decoded pixels or None, full size, error) per item; decoding (and, for models
    that squash their input, resizing) runs in workers."""

    def __init__(
        self,
        items: Sequence[tuple[int, str]],
        reader: ImageReader,
        at_least: int | None,
        resize_to: tuple[int, int] | None,
    ) -> None:
        self.items = list(items)
        self.reader = reader
        self.at_least = at_least
        self.resize_to = resize_to

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Decoded:
        item_id, uri = self.items[index]
        return decode_item(self.reader, item_id, uri, self.at_least, self.resize_to)


def _as_list(batch: list[Any]) -> list[Any]:
    return batch


def prelabel(
    project: Project,
    model: str,
    options: PrelabelOptions = PrelabelOptions(),
    *,
    resume_run: str | None = None,
    progress: Progress | None = None,
    only: Collection[int] | None = None,
    parent_run: str | None = None,
) -> PrelabelReport:
    """Predict ``options.items`` (restricted to the ids in ``only`` when given) with ``model``
    (run id or folder) as a new or resumed run (``parent_run``: the loop or pipeline run it serves)."""
    with project.open_catalog() as catalog:
        if resume_run is not None:
            record = catalog.get_run(resume_run)
            if record.kind != PRELABEL_KIND or record.status == "succeeded":
                raise ValidationError(f"run {resume_run} is not an unfinished pre-label run")
            options = PrelabelOptions(**{**asdict(options), **record.config})
            run_id = resume_run
            done = set(catalog.run_predictions(run_id))
        else:
            run_id, done = "", set()
        # Decoding workers need cores while the model runs: ONNX Runtime's idle threads sleep.
        session = SessionSettings(busy_wait=options.workers == 0)
        folder, trained, note = load_project_predictor(project, model, "pre-label", options.runtime, session)
        items = prelabel_items(catalog, options.items)
        if only is not None:
            wanted = set(only)
            items = [item for item in items if item[0] in wanted]
        items = items[: options.limit]
        if not run_id:
            run_id = catalog.start_run(
                PRELABEL_KIND,
                asdict(options),
                {
                    "model": str(folder),
                    "model_version": trained.version,
                    "model_sha256": trained.artifact.weights_sha256,
                    "runtime": trained.runtime,
                    "items": len(items),
                },
                parent_id=parent_run,
            )
        report = PrelabelReport(run_id, str(folder), trained.version, len(items))
        report.embeddings = str(embeddings_dir(project, run_id))
        report.runtime, report.runtime_note = trained.runtime, note
        todo = [item for item in items if item[0] not in done]
        report.already_done = len(items) - len(todo)
        try:
            _predict(catalog, trained, todo, options, project, report, progress)
        except BaseException as exc:
            if isinstance(exc, Exception):  # Ctrl-C leaves the run resumable
                catalog.finish_run(run_id, report.to_dict(), error=f"{type(exc).__name__}: {exc}")
            raise
        catalog.finish_run(run_id, report.to_dict())
    return report


def _predict(
    catalog: Catalog,
    trained: Predictor,
    todo: list[tuple[int, str]],
    options: PrelabelOptions,
    project: Project,
    report: PrelabelReport,
    progress: Progress | None,
) -> None:
    at_least = trained.artifact.model.image_size if options.draft else None
    resize_to = squashed_input_size(trained.artifact) if options.draft else None
    reader = ImageReader(project.config.s3.fsspec_options())
    folder = embeddings_dir(project, report.run_id)
    pending: list[tuple[int, Label, float | None]] = []
    pending_rows: list[npt.NDArray[np.float32]] = []
    started = time.perf_counter()
    seen = 0
    for batch in _batches(trained, todo, options, reader, at_least, resize_to, project):
        predicted, rows, failed = batch
        report.failed.extend(failed)
        pending.extend(predicted)
        if rows is not None:
            pending_rows.append(rows)
            report.embedding_dim = int(rows.shape[1])
        seen += len(predicted) + len(failed)
        if len(pending) >= options.chunk:
            _flush(catalog, trained, folder, pending, pending_rows, report)
        if progress is not None:
            progress(seen, len(todo))
    _flush(catalog, trained, folder, pending, pending_rows, report)
    report.seconds = time.perf_counter() - started
    report.images_per_second = report.predicted / report.seconds if report.seconds > 0 else 0.0


Batch = tuple[list[Predicted], npt.NDArray[np.float32] | None, list[dict[str, str]]]


def _batches(
    trained: Predictor,
    todo: list[tuple[int, str]],
    options: PrelabelOptions,
    reader: ImageReader,
    at_least: int | None,
    resize_to: tuple[int, int] | None,
    project: Project,
) -> Iterator[Batch]:
    """Predicted batches: here (data-loader workers decode) or on Ray (actors decode and predict)."""
    if options.executor == "ray":
        from visionloop.active.prelabel_ray import ray_batches

        yield from ray_batches(trained, todo, options, project, at_least, resize_to)
        return
    loader: DataLoader[Any] = DataLoader(
        _ItemImages(todo, reader, at_least, resize_to),
        batch_size=options.batch_size,
        num_workers=options.workers,
        collate_fn=_as_list,
    )
    with torch.inference_mode(), _torch_threads(trained.runtime, options.workers):
        for batch in loader:
            yield predict_decoded(trained, batch)


@contextmanager
def _torch_threads(runtime: str, workers: int) -> Iterator[None]:
    """PyTorch operators on the cores the decoding workers leave free: its threads busy-wait for
    each other, and one waiting for a core a decoder holds stalls the whole operator (a 64 px
    MobileNetV2 ran 5 to 10 times slower on two threads beside one busy worker on two cores)."""
    if runtime != "torch" or workers == 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, available_cores() - workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _flush(
    catalog: Catalog,
    trained: Predictor,
    folder: Path,
    pending: list[tuple[int, Label, float | None]],
    rows: list[npt.NDArray[np.float32]],
    report: PrelabelReport,
) -> None:
    """Embeddings first, then the predictions: a crash in between only repeats work on resume."""
    if not pending:
        return
    write_embeddings_chunk(folder, [item_id for item_id, _, _ in pending], rows)
    catalog.add_predictions(trained.version, pending, run_id=report.run_id)
    report.predicted += len(pending)
    pending.clear()
    rows.clear()
