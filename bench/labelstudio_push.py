"""Pushing tasks with predictions to Label Studio: visionloop's bulk push next to one task per request.

Set-up: a real Label Studio (started here on 127.0.0.1, its own venv, as the tests start it), a
project with ``--tasks`` (default 10,000) small PNGs under Label Studio's local-files root,
ingested into the catalog, each with a stored classification prediction (score, model version;
written directly: this measures the push, not the model).

  (a) ``push_items``: the whole set into a fresh Label Studio project, chunked
      (``labelstudio.chunk_size``, default 500 tasks per request), each task with its prediction,
      the catalog recording item -> task after each chunk.
  (b) the same tasks, one ``POST /api/projects/{id}/import`` per task (the task and its
      prediction), into another fresh project, timed on the first ``--loop-tasks`` (default 500)
      and reported as a rate: at ~10-20 tasks/s, 10,000 one by one would take many minutes.

Both run against the same server in the same run. Target: (a) >= 10x (b) in tasks/s. A second
push of the same items is timed too (reconcile and skip: it must create nothing).

Usage::

    .venv/bin/python bench/labelstudio_push.py [--tasks 10000] [--loop-tasks 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from servers import label_studio_server
from visionloop.core.labels import ClassLabel
from visionloop.core.schema import LabelSchema, TaskType
from visionloop.formats.labelstudio import prediction_result
from visionloop.ingest import ingest
from visionloop.labeling.labelstudio import LabelStudioClient, push_items
from visionloop.labeling.labelstudio.connection import connect
from visionloop.labeling.labelstudio.media import ImageLinks
from visionloop.pipelines.steps import project_ingest_options
from visionloop.project import Project
from visionloop.project.config import ProjectConfig

CLASSES = ["left", "right"]


def _images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = (rng.random((24, 24, 3)) * 255).astype(np.uint8)
    for index in range(count):
        pixels = base.copy()
        pixels[index % 24, :, :] = index % 251  # distinct content, so no two images deduplicate
        pixels[:, (index // 24) % 24, 0] = (index // 576) % 251
        Image.fromarray(pixels).save(folder / f"img_{index:05d}.png")


def _project(root: Path, files: Path, url: str, title: str) -> Project:
    schema = LabelSchema(task=TaskType.CLASSIFICATION, classes=CLASSES)
    project = Project.create(root, ProjectConfig(name=title, labels=schema))
    project.config.labelstudio.url = url
    project.config.labelstudio.project_title = title
    project.config.labelstudio.local_files_root = str(files)
    return project


def _one_by_one(project: Project, items: list[int], token: str) -> float:
    """Tasks/s of one import request per task (task + its prediction)."""
    settings = project.config.labelstudio
    assert settings.url is not None
    with LabelStudioClient(settings.url, token) as client, project.open_catalog() as catalog:
        target = connect(project, catalog, client)
        links = ImageLinks(project, catalog, target)
        records = {item.id: item for item in catalog.iter_items()}
        predictions = catalog.latest_predictions(items)
        schema = catalog.get_schema() or project.config.labels
        started = time.perf_counter()
        for item_id in items:
            item = records[item_id]
            version, label, score = predictions[item_id]
            task = {
                "data": {"image": links.url(item), "visionloop_item": item_id},
                "predictions": [
                    {
                        "model_version": version,
                        "score": score,
                        "result": prediction_result(label, schema, item.width, item.height),
                    }
                ],
            }
            client.post(f"/api/projects/{target.project_id}/import", [task])
        return len(items) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--loop-tasks", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="vl-bench-ls-") as tmp,
        label_studio_server(Path(tmp) / "ls") as server,
    ):
        os.environ["LABEL_STUDIO_API_KEY"] = server.token
        images = server.files / "bench"
        started = time.perf_counter()
        _images(images, args.tasks)
        bulk = _project(Path(tmp) / "bulk", server.files, server.url, "bench bulk")
        with bulk.open_catalog() as catalog:
            ingest(catalog, bulk.filesystem_for(str(images)), project_ingest_options(bulk, split="train"))
            items = sorted(item.id for item in catalog.iter_items())
            rng = np.random.default_rng(1)
            scores = rng.uniform(0.5, 1.0, len(items))
            catalog.add_predictions(
                "bench-v1",
                [
                    (item, ClassLabel(CLASSES[item % 2], score=float(s)), float(s))
                    for item, s in zip(items, scores, strict=True)
                ],
            )
        setup_s = time.perf_counter() - started

        report = push_items(bulk, items)
        again = push_items(bulk, items)
        loop = _project(Path(tmp) / "loop", server.files, server.url, "bench one by one")
        with loop.open_catalog() as catalog:
            ingest(catalog, loop.filesystem_for(str(images)), project_ingest_options(loop, split="train"))
            loop_items = sorted(item.id for item in catalog.iter_items())[: args.loop_tasks]
            catalog.add_predictions(
                "bench-v1", [(item, ClassLabel(CLASSES[item % 2], score=0.8), 0.8) for item in loop_items]
            )
        loop_rate = _one_by_one(loop, loop_items, server.token)

    bulk_rate = report.tasks_per_second
    figures: dict[str, Any] = {
        "tasks": len(items),
        "setup_seconds": round(setup_s, 1),
        "bulk_seconds": round(report.seconds, 2),
        "bulk_tasks_per_second": round(bulk_rate, 1),
        "bulk_created": report.created,
        "repush_seconds": round(again.seconds, 2),
        "repush_created": again.created,
        "loop_tasks_timed": len(loop_items),
        "loop_tasks_per_second": round(loop_rate, 1),
        "ratio": round(bulk_rate / loop_rate, 1) if loop_rate else None,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"Label Studio push, {len(items)} tasks with predictions (set-up {setup_s:.0f} s)")
    print(
        f"  (a) bulk push_items:      {bulk_rate:8.1f} tasks/s "
        f"({report.seconds:.1f} s, {report.created} created)"
    )
    print(f"      again (reconcile):    {again.seconds:8.2f} s, {again.created} created")
    print(f"  (b) one task per request: {loop_rate:8.1f} tasks/s (timed on {len(loop_items)} tasks)")
    ratio = figures["ratio"]
    verdict = "PASS" if ratio is not None and ratio >= 10 else "FAIL"
    print(f"  (a)/(b) = {ratio}x (target >= 10x) {verdict}")


if __name__ == "__main__":
    main()
