"""Push items to Label Studio as tasks with the model's predictions: bulk, chunked, idempotent.

Each task carries its catalog item id (``data.visionloop_item``) and the catalog records item ->
task after every chunk, so an interrupted push resumes where it stopped. Before importing, the
push reconciles with Label Studio whenever its task count differs from what the catalog knows:
tasks a crashed push created but never recorded are adopted, not created twice, and tasks
deleted there are forgotten so they can be pushed again. An item that is already a task gets the
newest model's prediction added (in bulk) when its model version changed, never a second task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from visionloop.catalog import Catalog
from visionloop.catalog.records import ItemRecord
from visionloop.core.errors import ValidationError
from visionloop.core.labels import Label
from visionloop.core.schema import LabelSchema
from visionloop.formats.labelstudio import prediction_result
from visionloop.labeling.labelstudio.client import LabelStudioClient
from visionloop.labeling.labelstudio.connection import TOOL, LabelStudioProject, connect
from visionloop.labeling.labelstudio.media import ImageLinks
from visionloop.labeling.store import delete_tasks, record_tasks, task_map, update_prediction_versions
from visionloop.project import Project

__all__ = ["ITEM_FIELD", "PushReport", "push_items"]

ITEM_FIELD = "visionloop_item"
IMAGE_FIELD = "image"

Progress = Callable[[int, int], None]


@dataclass
class PushReport:
    labelstudio_project: int
    requested: int = 0
    created: int = 0
    predictions_added: int = 0
    already_there: int = 0
    adopted: int = 0  # tasks an interrupted push had created without recording them
    without_prediction: int = 0
    seconds: float = 0.0
    tasks_per_second: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def push_items(
    project: Project,
    item_ids: Sequence[int],
    *,
    progress: Progress | None = None,
    client: LabelStudioClient | None = None,
) -> PushReport:
    """Create a Label Studio task (with the newest prediction) for each item that has none yet."""
    started = time.perf_counter()
    with project.open_catalog() as catalog:
        target = connect(project, catalog, client)
        try:
            report = _push(project, catalog, target, list(dict.fromkeys(int(i) for i in item_ids)), progress)
        finally:
            if client is None:
                target.close()
    report.seconds = time.perf_counter() - started
    report.tasks_per_second = report.created / report.seconds if report.seconds > 0 else 0.0
    return report


def _push(
    project: Project,
    catalog: Catalog,
    target: LabelStudioProject,
    wanted: list[int],
    progress: Progress | None,
) -> PushReport:
    report = PushReport(target.project_id, requested=len(wanted))
    report.adopted = _reconcile(catalog, target)
    known = task_map(catalog, TOOL, target.key)
    items = _items(catalog, wanted)
    predictions = catalog.latest_predictions(wanted)
    schema = catalog.get_schema() or project.config.labels
    links = ImageLinks(project, catalog, target)
    new = [item for item in items if item.id not in known]
    stale = [
        item
        for item in items
        if item.id in known and item.id in predictions and predictions[item.id][0] != known[item.id][1]
    ]
    report.already_there = len(items) - len(new) - len(stale)
    total, done = len(new) + len(stale), 0
    chunk = target.settings.chunk_size
    for start in range(0, len(new), chunk):
        batch = new[start : start + chunk]
        tasks = [_task(item, predictions.get(item.id), schema, links) for item in batch]
        report.without_prediction += sum(1 for task in tasks if not task.get("predictions"))
        answer = target.client.post(
            f"/api/projects/{target.project_id}/import", tasks, params={"return_task_ids": "true"}
        )
        task_ids = [int(task_id) for task_id in (answer or {}).get("task_ids", [])]
        if len(task_ids) != len(batch):
            raise ValidationError(
                f"Label Studio created {len(task_ids)} tasks for a chunk of {len(batch)}; "
                "run the push again: it reconciles before creating anything"
            )
        record_tasks(
            catalog,
            TOOL,
            target.key,
            [
                (item.id, task_id, _version(predictions.get(item.id)))
                for item, task_id in zip(batch, task_ids, strict=True)
            ],
        )
        report.created += len(batch)
        done += len(batch)
        if progress:
            progress(done, total)
    for start in range(0, len(stale), chunk):
        batch = stale[start : start + chunk]
        body = [
            {"task": known[item.id][0], **_prediction(predictions[item.id], item, schema)} for item in batch
        ]
        target.client.post(f"/api/projects/{target.project_id}/import/predictions", body)
        update_prediction_versions(
            catalog, TOOL, target.key, {item.id: predictions[item.id][0] for item in batch}
        )
        report.predictions_added += len(batch)
        done += len(batch)
        if progress:
            progress(done, total)
    return report


def _reconcile(catalog: Catalog, target: LabelStudioProject) -> int:
    """Adopt tasks Label Studio has but the catalog did not record; forget deleted ones."""
    known = task_map(catalog, TOOL, target.key)
    counted = target.client.get(f"/api/projects/{target.project_id}")
    if int(counted.get("task_number") or 0) == len(known):
        return 0
    found: dict[int, tuple[int, str | None]] = {}
    for task in target.client.tasks(target.project_id):
        item = (task.get("data") or {}).get(ITEM_FIELD)
        if isinstance(item, int) and item not in found:
            versions = [p.get("model_version") for p in task.get("predictions") or [] if isinstance(p, dict)]
            found[item] = (int(task["id"]), versions[-1] if versions else None)
    adopted = [(item, task, version) for item, (task, version) in found.items() if item not in known]
    record_tasks(catalog, TOOL, target.key, adopted)
    gone = [item for item in known if item not in found]
    if gone:
        delete_tasks(catalog, TOOL, target.key, gone)
    return len(adopted)


def _items(catalog: Catalog, wanted: list[int]) -> list[ItemRecord]:
    wanted_ids = set(wanted)
    by_id = {item.id: item for item in catalog.iter_items() if item.id in wanted_ids}
    missing = [item for item in wanted if item not in by_id]
    if missing:
        raise ValidationError(
            f"{len(missing)} items to push are not active catalog items, e.g. {missing[:5]}"
        )
    return [by_id[item] for item in wanted]


def _task(
    item: ItemRecord,
    prediction: tuple[str, Label, float | None] | None,
    schema: LabelSchema,
    links: ImageLinks,
) -> dict[str, Any]:
    task: dict[str, Any] = {"data": {IMAGE_FIELD: links.url(item), ITEM_FIELD: item.id}}
    if prediction is not None:
        task["predictions"] = [_prediction(prediction, item, schema)]
    return task


def _prediction(
    prediction: tuple[str, Label, float | None], item: ItemRecord, schema: LabelSchema
) -> dict[str, Any]:
    version, label, score = prediction
    body: dict[str, Any] = {
        "model_version": version,
        "result": prediction_result(label, schema, item.width, item.height),
    }
    if score is not None:
        body["score"] = float(score)
    return body


def _version(prediction: tuple[str, Label, float | None] | None) -> str | None:
    return None if prediction is None else prediction[0]
