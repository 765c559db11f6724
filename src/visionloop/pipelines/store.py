"""Pipeline steps in the catalog: one ``pipeline_steps`` row per step of a ``pipeline`` run.

A step row goes ``pending -> running -> succeeded`` (or ``failed``/``waiting``, then ``running``
again on resume). While a step runs, its ``outputs`` column holds the progress notes the step
saved (``{"state": ...}``), so the next attempt after a crash can pick them up; once it
succeeds, the column holds the step's result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from visionloop.catalog import Catalog
from visionloop.catalog.engine import read_connection, write_transaction
from visionloop.catalog.records import utcnow
from visionloop.catalog.tables import pipeline_steps, runs

__all__ = [
    "StepRecord",
    "StepStatus",
    "create_steps",
    "mark_failed",
    "mark_running",
    "mark_succeeded",
    "mark_waiting",
    "read_steps",
    "save_state",
    "set_run_status",
]


class StepStatus:
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    WAITING = "waiting"


@dataclass(frozen=True)
class StepRecord:
    position: int
    name: str
    status: str
    attempts: int
    outputs: dict[str, Any] | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "name": self.name,
            "status": self.status,
            "attempts": self.attempts,
            "outputs": self.outputs,
            "error": self.error,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def create_steps(catalog: Catalog, run_id: str, names: list[str]) -> None:
    with write_transaction(catalog.engine) as connection:
        connection.execute(
            insert(pipeline_steps),
            [
                {"run_id": run_id, "position": position, "name": name, "status": StepStatus.PENDING}
                for position, name in enumerate(names)
            ],
        )


def read_steps(catalog: Catalog, run_id: str) -> list[StepRecord]:
    query = (
        select(pipeline_steps).where(pipeline_steps.c.run_id == run_id).order_by(pipeline_steps.c.position)
    )
    with read_connection(catalog.engine) as connection:
        return [
            StepRecord(
                row.position,
                row.name,
                row.status,
                row.attempts,
                row.outputs,
                row.error,
                row.started_at,
                row.finished_at,
            )
            for row in connection.execute(query)
        ]


def _update(catalog: Catalog, run_id: str, position: int, **values: Any) -> None:
    with write_transaction(catalog.engine) as connection:
        connection.execute(
            update(pipeline_steps)
            .where(pipeline_steps.c.run_id == run_id, pipeline_steps.c.position == position)
            .values(**values)
        )


def mark_running(catalog: Catalog, run_id: str, position: int, attempts: int) -> None:
    _update(
        catalog,
        run_id,
        position,
        status=StepStatus.RUNNING,
        attempts=attempts,
        error=None,
        started_at=utcnow(),
        finished_at=None,
    )


def save_state(catalog: Catalog, run_id: str, position: int, state: dict[str, Any]) -> None:
    _update(catalog, run_id, position, outputs={"state": state})


def mark_succeeded(catalog: Catalog, run_id: str, position: int, outputs: dict[str, Any]) -> None:
    _update(catalog, run_id, position, status=StepStatus.SUCCEEDED, outputs=outputs, finished_at=utcnow())


def mark_failed(catalog: Catalog, run_id: str, position: int, error: str) -> None:
    _update(catalog, run_id, position, status=StepStatus.FAILED, error=error, finished_at=utcnow())


def mark_waiting(catalog: Catalog, run_id: str, position: int, reason: str) -> None:
    _update(catalog, run_id, position, status=StepStatus.WAITING, error=reason)


def set_run_status(catalog: Catalog, run_id: str, status: str, error: str | None = None) -> None:
    """For the states ``Catalog.finish_run`` does not know: ``running`` again on resume, ``waiting``."""
    with write_transaction(catalog.engine) as connection:
        connection.execute(
            update(runs).where(runs.c.id == run_id).values(status=status, error=error, finished_at=None)
        )
