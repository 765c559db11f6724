"""Pre-labeling on Ray Data: batched actors that load the model once, decode and predict.

Each actor runs exactly the local executor's decode and predict code (:mod:`prelabel_batch`), so
the labels are the same; this process only writes what comes back, in the same chunks, to the
catalog and the embedding files, so resuming a killed run works as it does locally. Labels
travel as core JSON, embeddings as float32 rows. ``options.workers`` actors (at least one) run
on the cluster at ``options.ray_address`` (else the project's ``executor.address``, else
``$RAY_ADDRESS``); with none and no Ray running in this process, a local Ray instance is
started. Each actor gets the project's ``executor.cpus_per_worker`` CPUs (its model's thread
count) and ``executor.gpus_per_worker`` GPUs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from visionloop.active.prelabel_batch import Predicted, decode_item, predict_decoded
from visionloop.core.labels import label_from_dict
from visionloop.datasets.records import ImageReader
from visionloop.project import Project
from visionloop.project.executor import ray_module
from visionloop.tasks.onnx_runtime import SessionSettings
from visionloop.tasks.predictor import Predictor, load_predictor

__all__ = ["ray_batches"]

Batch = tuple[list[Predicted], npt.NDArray[np.float32] | None, list[dict[str, str]]]


class _PredictActor:
    """One model per actor, loaded once; a batch in, its predictions (as columns) out."""

    def __init__(
        self,
        folder: str,
        runtime: str,
        s3_options: dict[str, Any],
        at_least: int | None,
        resize_to: tuple[int, int] | None,
        threads: int,
    ) -> None:
        session = SessionSettings(threads=threads, busy_wait=False)
        self.trained, _ = load_predictor(Path(folder), runtime, session)
        self.reader = ImageReader(s3_options)
        self.at_least, self.resize_to, self.threads = at_least, resize_to, threads

    def __call__(self, batch: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        import torch

        torch.set_num_threads(self.threads)
        decoded = [
            decode_item(self.reader, int(item), str(uri), self.at_least, self.resize_to)
            for item, uri in zip(batch["item"], batch["uri"], strict=True)
        ]
        with torch.inference_mode():
            predicted, rows, failed = predict_decoded(self.trained, decoded)
        width = 0 if rows is None else int(rows.shape[1])
        embeddings = {item: rows[i] for i, (item, _, _) in enumerate(predicted)} if rows is not None else {}
        reasons = {int(f["item"]): f["reason"] for f in failed}
        labels = {item: (label, score) for item, label, score in predicted}
        ids = [int(item) for item in batch["item"]]
        return {
            "item": np.array(ids, dtype=np.int64),
            "label": np.array(
                [orjson.dumps(labels[i][0].to_dict()).decode() if i in labels else "" for i in ids]
            ),
            "score": np.array(
                [_score(labels[i][1]) if i in labels else np.nan for i in ids], dtype=np.float64
            ),
            "embedding": np.stack(
                [embeddings[i] if i in embeddings else np.zeros(width, np.float32) for i in ids]
            ).astype(np.float32),
            "error": np.array([reasons.get(i, "") for i in ids]),
        }


def _score(score: float | None) -> float:
    return np.nan if score is None else float(score)


def ray_batches(
    trained: Predictor,
    todo: list[tuple[int, str]],
    options: Any,
    project: Project,
    at_least: int | None,
    resize_to: tuple[int, int] | None,
) -> Iterator[Batch]:
    """The local executor's batches, computed by ``options.workers`` Ray actors."""
    if not todo:
        return
    settings = project.config.executor
    if options.ray_address:
        settings = settings.model_copy(update={"address": options.ray_address})
    ray = ray_module(settings, "Pre-labeling with --executor ray")
    # The command draws its own progress bar; Ray Data's plan and progress logs would interleave
    # (set after importing ray.data, which configures its loggers).
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # One block per batch: the actors get whole batches without Ray Data re-bundling small blocks.
    dataset = ray.data.from_items(
        [{"item": item, "uri": uri} for item, uri in todo],
        override_num_blocks=math.ceil(len(todo) / options.batch_size),
    )
    predicted = dataset.map_batches(
        _PredictActor,
        fn_constructor_args=(
            str(trained.artifact.folder),
            trained.runtime,
            project.config.s3.fsspec_options(),
            at_least,
            resize_to,
            max(1, math.ceil(settings.cpus_per_worker)),
        ),
        batch_size=options.batch_size,
        batch_format="numpy",
        concurrency=max(1, options.workers),
        num_cpus=settings.cpus_per_worker,
        num_gpus=settings.gpus_per_worker,
    )
    for batch in predicted.iter_batches(batch_size=options.batch_size, batch_format="numpy"):
        yield _unpack(batch)


def _unpack(batch: dict[str, npt.NDArray[Any]]) -> Batch:
    results: list[Predicted] = []
    rows: list[npt.NDArray[np.float32]] = []
    failed: list[dict[str, str]] = []
    for item, label, score, row, error in zip(
        batch["item"], batch["label"], batch["score"], batch["embedding"], batch["error"], strict=True
    ):
        if error:
            failed.append({"item": str(int(item)), "reason": str(error)})
            continue
        value = None if np.isnan(score) else float(score)
        results.append((int(item), label_from_dict(orjson.loads(str(label))), value))
        rows.append(np.asarray(row, dtype=np.float32))
    return results, (np.stack(rows) if rows else None), failed
