"""Pull annotations from Label Studio into the catalog as human labels, incrementally.

Label Studio bumps a task's ``updated_at`` whenever one of its annotations is saved, so a pull
asks only for tasks updated since its cursor (minus an overlap window: clocks and transactions
race). It polls, so webhooks Label Studio never delivered lose nothing. Each annotation is
recorded under its Label Studio id with its ``updated_at``: an unchanged one is never imported
again, an edited one becomes a new label version (the history stays), a cancelled one is
recorded as skipped, and one whose regions cannot become a label is recorded as invalid with
the reason. The label version and that record commit in one transaction. Deleting an annotation
also bumps its task's ``updated_at``: a pulled annotation missing from its changed task is
recorded as deleted (the catalog keeps the label history; nothing is retracted silently).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from visionloop.catalog import Catalog
from visionloop.catalog.engine import write_transaction
from visionloop.catalog.records import AnnotationRecord
from visionloop.core.provenance import Provenance
from visionloop.core.schema import LabelSchema
from visionloop.formats.labelstudio import annotation_label
from visionloop.labeling.labelstudio.client import LabelStudioClient
from visionloop.labeling.labelstudio.connection import TOOL, LabelStudioProject, connect
from visionloop.labeling.labelstudio.push import ITEM_FIELD
from visionloop.labeling.store import (
    PulledAnnotation,
    live_annotations_by_task,
    mark_deleted,
    pulled_annotations,
    read_cursor,
    record_pulled,
    task_map,
    write_cursor,
)
from visionloop.project import Project

__all__ = ["OVERLAP_S", "PullReport", "pull_annotations"]

OVERLAP_S = 120.0
Progress = Callable[[int, int], None]


@dataclass
class PullReport:
    labelstudio_project: int
    tasks: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    invalid: int = 0
    deleted: int = 0  # pulled before, since deleted in Label Studio (recorded, label history kept)
    unknown_tasks: int = 0  # tasks visionloop did not push and that name no catalog item
    seconds: float = 0.0
    problems: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pull_annotations(
    project: Project, *, progress: Progress | None = None, client: LabelStudioClient | None = None
) -> PullReport:
    """Bring new and changed Label Studio annotations into the catalog as human labels."""
    started = time.perf_counter()
    with project.open_catalog() as catalog:
        target = connect(project, catalog, client)
        try:
            report = _pull(project, catalog, target, progress)
        finally:
            if client is None:
                target.close()
    report.seconds = time.perf_counter() - started
    return report


def _pull(
    project: Project, catalog: Catalog, target: LabelStudioProject, progress: Progress | None
) -> PullReport:
    report = PullReport(target.project_id, problems=[])
    cursor_name = f"{TOOL}:pull:{target.key}"
    since = read_cursor(catalog, cursor_name)
    query = None
    if since:
        # Label Studio parses this filter value with exactly this format, in UTC
        after = (
            (_time(str(since)) - timedelta(seconds=OVERLAP_S))
            .astimezone(UTC)
            .strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        )
        query = {
            "filters": {
                "conjunction": "and",
                "items": [
                    {
                        "filter": "filter:tasks:updated_at",
                        "operator": "greater",
                        "type": "Datetime",
                        "value": after,
                    }
                ],
            }
        }
    changed = list(target.client.tasks(target.project_id, query=query))
    # a task whose last annotation was deleted has none left, yet must be looked at
    live = live_annotations_by_task(catalog, TOOL, target.key, [int(task["id"]) for task in changed])
    tasks = [task for task in changed if task.get("annotations") or int(task["id"]) in live]
    report.tasks = len(tasks)
    schema = catalog.get_schema() or project.config.labels
    items_by_task = {task: item for item, (task, _version) in task_map(catalog, TOOL, target.key).items()}
    seen = pulled_annotations(
        catalog, TOOL, target.key, [int(a["id"]) for task in tasks for a in task["annotations"] if "id" in a]
    )
    users = _Users(target.client)
    newest = since
    for done, task in enumerate(tasks, start=1):
        item = _item(task, items_by_task)
        if item is None:
            report.unknown_tasks += 1
            continue
        for annotation in task.get("annotations") or []:
            _one(catalog, target, schema, users, int(task["id"]), item, annotation, seen, report)
        present = {int(a["id"]) for a in task.get("annotations") or [] if "id" in a}
        gone = live.get(int(task["id"]), set()) - present
        if gone:
            mark_deleted(catalog, TOOL, target.key, sorted(gone), str(task.get("updated_at") or ""))
            report.deleted += len(gone)
        stamp = task.get("updated_at")
        if isinstance(stamp, str) and (newest is None or _time(stamp) > _time(str(newest))):
            newest = stamp
        if progress:
            progress(done, len(tasks))
    if newest != since:
        write_cursor(catalog, cursor_name, newest)
    return report


def _one(
    catalog: Catalog,
    target: LabelStudioProject,
    schema: LabelSchema,
    users: _Users,
    task_id: int,
    item_id: int,
    annotation: dict[str, Any],
    seen: dict[int, PulledAnnotation],
    report: PullReport,
) -> None:
    external = int(annotation["id"])
    updated = str(annotation.get("updated_at") or annotation.get("created_at") or "")
    before = seen.get(external)
    if before is not None and before.external_updated_at == updated:
        report.unchanged += 1
        return

    def record(connection: Connection, state: str, annotation_id: int | None, reason: str | None) -> None:
        record_pulled(
            connection,
            TOOL,
            target.key,
            external_id=external,
            task_id=task_id,
            item_id=item_id,
            external_updated_at=updated,
            state=state,
            annotation_id=annotation_id,
            reason=reason,
        )

    if annotation.get("was_cancelled"):
        _record_only(catalog, record, "skipped", "cancelled (skipped) in Label Studio")
        report.skipped += 1
        return
    label, problems = annotation_label(annotation, schema)
    if label is None or problems:
        reason = "; ".join(problems) or "the annotation holds no label"
        _record_only(catalog, record, "invalid", reason)
        report.invalid += 1
        if report.problems is not None and len(report.problems) < 20:
            report.problems.append(f"task {task_id} annotation {external}: {reason}")
        return

    def also(connection: Connection, version: AnnotationRecord) -> None:
        record(connection, "imported", version.id, None)

    catalog.add_annotation_and(
        item_id, label, Provenance.human(users.name(annotation.get("completed_by"))), also
    )
    if before is None:
        report.imported += 1
    else:
        report.updated += 1


def _record_only(
    catalog: Catalog,
    record: Callable[[Connection, str, int | None, str | None], None],
    state: str,
    reason: str,
) -> None:
    with write_transaction(catalog.engine) as connection:
        record(connection, state, None, reason)


def _item(task: dict[str, Any], items_by_task: dict[int, int]) -> int | None:
    item = (task.get("data") or {}).get(ITEM_FIELD)
    if isinstance(item, int) and not isinstance(item, bool):
        return item
    return items_by_task.get(int(task["id"]))


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class _Users:
    """Annotators by email: Label Studio lists annotations' ``completed_by`` as user ids."""

    def __init__(self, client: LabelStudioClient) -> None:
        self.client = client
        self._emails: dict[int, str] | None = None

    def name(self, completed_by: Any) -> str:
        if isinstance(completed_by, dict):
            completed_by = completed_by.get("email") or completed_by.get("id")
        if isinstance(completed_by, str) and completed_by:
            return completed_by
        if isinstance(completed_by, int):
            if self._emails is None:
                listed = self.client.get("/api/users", page_size=1000) or []
                users = listed.get("results", []) if isinstance(listed, dict) else listed
                self._emails = {int(u["id"]): str(u.get("email") or u["id"]) for u in users if "id" in u}
            return self._emails.get(completed_by, f"labelstudio:{completed_by}")
        return "labelstudio:unknown"
