"""What the catalog remembers about a labeling tool: item <-> task, pulled annotations, cursors.

A tool project is named ``"<base url>#<project id>"``, so two Label Studio servers (or two
projects on one) never mix. Writes take the caller's connection where they must commit with
something else (an annotation version and the record of where it came from).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from visionloop.catalog import Catalog
from visionloop.catalog.engine import read_connection, write_transaction
from visionloop.catalog.records import utcnow
from visionloop.catalog.tables import cursors, labeling_annotations, labeling_tasks

__all__ = [
    "PulledAnnotation",
    "delete_tasks",
    "live_annotations_by_task",
    "mark_deleted",
    "pulled_annotations",
    "read_cursor",
    "record_pulled",
    "record_tasks",
    "task_map",
    "update_prediction_versions",
    "write_cursor",
]


def read_cursor(catalog: Catalog, name: str) -> Any:
    with read_connection(catalog.engine) as connection:
        return connection.execute(select(cursors.c.value).where(cursors.c.name == name)).scalar()


def write_cursor(catalog: Catalog, name: str, value: Any, connection: Connection | None = None) -> None:
    def write(conn: Connection) -> None:
        changed = conn.execute(
            update(cursors).where(cursors.c.name == name).values(value=value, updated_at=utcnow())
        )
        if not changed.rowcount:
            conn.execute(insert(cursors).values(name=name, value=value, updated_at=utcnow()))

    if connection is not None:
        write(connection)
        return
    with write_transaction(catalog.engine) as own:
        write(own)


def task_map(catalog: Catalog, tool: str, project: str) -> dict[int, tuple[int, str | None]]:
    """item id -> (task id, model version of the last prediction sent) for one tool project."""
    query = select(
        labeling_tasks.c.item_id, labeling_tasks.c.task_id, labeling_tasks.c.prediction_version
    ).where(labeling_tasks.c.tool == tool, labeling_tasks.c.project == project)
    with read_connection(catalog.engine) as connection:
        return {int(item): (int(task), version) for item, task, version in connection.execute(query)}


def record_tasks(
    catalog: Catalog, tool: str, project: str, rows: Iterable[tuple[int, int, str | None]]
) -> int:
    """Record ``(item, task, prediction version)`` rows; items already recorded are updated."""
    rows = list(rows)
    if not rows:
        return 0
    now = utcnow()
    known = task_map(catalog, tool, project)
    fresh = [row for row in rows if row[0] not in known]
    changed = [row for row in rows if row[0] in known]
    with write_transaction(catalog.engine) as connection:
        if fresh:
            connection.execute(
                insert(labeling_tasks),
                [
                    {"tool": tool, "project": project, "item_id": item, "task_id": task}
                    | {"prediction_version": version, "pushed_at": now}
                    for item, task, version in fresh
                ],
            )
        for item, task, version in changed:
            connection.execute(
                _task_of(tool, project, item).values(task_id=task, prediction_version=version, pushed_at=now)
            )
    return len(rows)


def update_prediction_versions(catalog: Catalog, tool: str, project: str, versions: dict[int, str]) -> None:
    with write_transaction(catalog.engine) as connection:
        for item, version in versions.items():
            connection.execute(
                _task_of(tool, project, item).values(prediction_version=version, pushed_at=utcnow())
            )


def _task_of(tool: str, project: str, item: int) -> Any:
    """An UPDATE of one item's task row."""
    return update(labeling_tasks).where(
        labeling_tasks.c.tool == tool, labeling_tasks.c.project == project, labeling_tasks.c.item_id == item
    )


def delete_tasks(catalog: Catalog, tool: str, project: str, items: Sequence[int]) -> None:
    """Forget tasks the tool no longer has (deleted there), so they can be pushed again."""
    with write_transaction(catalog.engine) as connection:
        connection.execute(
            delete(labeling_tasks).where(
                labeling_tasks.c.tool == tool,
                labeling_tasks.c.project == project,
                labeling_tasks.c.item_id.in_(list(items)),
            )
        )


@dataclass(frozen=True)
class PulledAnnotation:
    external_id: int
    external_updated_at: str
    state: str
    annotation_id: int | None


def pulled_annotations(
    catalog: Catalog, tool: str, project: str, external_ids: Sequence[int]
) -> dict[int, PulledAnnotation]:
    found: dict[int, PulledAnnotation] = {}
    ids = list(external_ids)
    with read_connection(catalog.engine) as connection:
        for start in range(0, len(ids), 500):
            query = select(
                labeling_annotations.c.external_id,
                labeling_annotations.c.external_updated_at,
                labeling_annotations.c.state,
                labeling_annotations.c.annotation_id,
            ).where(
                labeling_annotations.c.tool == tool,
                labeling_annotations.c.project == project,
                labeling_annotations.c.external_id.in_(ids[start : start + 500]),
            )
            for external, updated, state, annotation in connection.execute(query):
                found[int(external)] = PulledAnnotation(int(external), str(updated), str(state), annotation)
    return found


def live_annotations_by_task(
    catalog: Catalog, tool: str, project: str, task_ids: Sequence[int]
) -> dict[int, set[int]]:
    """task id -> the tool annotation ids recorded for it and not yet seen deleted."""
    found: dict[int, set[int]] = {}
    ids = list(task_ids)
    with read_connection(catalog.engine) as connection:
        for start in range(0, len(ids), 500):
            query = select(labeling_annotations.c.task_id, labeling_annotations.c.external_id).where(
                labeling_annotations.c.tool == tool,
                labeling_annotations.c.project == project,
                labeling_annotations.c.state != "deleted",
                labeling_annotations.c.task_id.in_(ids[start : start + 500]),
            )
            for task, external in connection.execute(query):
                found.setdefault(int(task), set()).add(int(external))
    return found


def record_pulled(
    connection: Connection,
    tool: str,
    project: str,
    *,
    external_id: int,
    task_id: int,
    item_id: int,
    external_updated_at: str,
    state: str,
    annotation_id: int | None,
    reason: str | None,
) -> None:
    """Insert or refresh the record of one tool annotation, on the caller's transaction."""
    values = {
        "task_id": task_id,
        "item_id": item_id,
        "external_updated_at": external_updated_at,
        "annotation_id": annotation_id,
        "state": state,
        "reason": reason,
        "pulled_at": utcnow(),
    }
    changed = connection.execute(
        update(labeling_annotations)
        .where(
            labeling_annotations.c.tool == tool,
            labeling_annotations.c.project == project,
            labeling_annotations.c.external_id == external_id,
        )
        .values(**values)
    )
    if not changed.rowcount:
        connection.execute(
            insert(labeling_annotations).values(tool=tool, project=project, external_id=external_id, **values)
        )


def mark_deleted(catalog: Catalog, tool: str, project: str, external_ids: Sequence[int], stamp: str) -> None:
    """Record tool annotations as deleted there; the catalog version each became stays linked."""
    with write_transaction(catalog.engine) as connection:
        connection.execute(
            update(labeling_annotations)
            .where(
                labeling_annotations.c.tool == tool,
                labeling_annotations.c.project == project,
                labeling_annotations.c.external_id.in_(list(external_ids)),
            )
            .values(
                state="deleted",
                reason="deleted in Label Studio",
                external_updated_at=stamp,
                pulled_at=utcnow(),
            )
        )
