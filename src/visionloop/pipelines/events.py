"""Trigger events, each stored once: a redelivered event is recognised and dropped.

Queues deliver at least once and pollers see the same object many times, so every event is
keyed by its trigger and a hash of its identity (object URI and fingerprint, queue message's
object and sequencer, schedule slot). Recording is an insert that the unique key turns into a
no-op the second time. An event moves ``new -> running -> done | failed``; one left ``running``
by a crash is picked up again, and its pipeline run resumes rather than restarts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.catalog import Catalog
from visionloop.catalog.engine import read_connection, write_transaction
from visionloop.catalog.records import utcnow
from visionloop.catalog.tables import trigger_events

__all__ = ["Event", "finish_event", "pending_events", "record_event", "start_event"]


@dataclass(frozen=True)
class Event:
    id: int
    trigger: str
    description: str
    payload: dict[str, Any]
    status: str
    run_id: str | None


def event_key(identity: str) -> str:
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def record_event(
    catalog: Catalog, trigger: str, identity: str, description: str, payload: dict[str, Any]
) -> bool:
    """Store an event; False when this (trigger, identity) was already stored (a redelivery)."""
    values = {
        "trigger": trigger,
        "key": event_key(identity),
        "description": description,
        "payload": payload,
        "status": "new",
        "received_at": utcnow(),
    }
    try:
        with write_transaction(catalog.engine) as connection:
            connection.execute(insert(trigger_events).values(**values))
    except IntegrityError:
        return False
    return True


def pending_events(catalog: Catalog, trigger: str) -> list[Event]:
    """Events of ``trigger`` not finished yet, oldest first (``running`` ones a crash left behind)."""
    query = (
        select(trigger_events)
        .where(trigger_events.c.trigger == trigger, trigger_events.c.status.in_(("new", "running")))
        .order_by(trigger_events.c.id)
    )
    with read_connection(catalog.engine) as connection:
        return [
            Event(row.id, row.trigger, row.description, dict(row.payload), row.status, row.run_id)
            for row in connection.execute(query)
        ]


def start_event(catalog: Catalog, event_id: int, run_id: str) -> None:
    _set(catalog, event_id, status="running", run_id=run_id)


def finish_event(catalog: Catalog, event_id: int, error: str | None = None) -> None:
    _set(catalog, event_id, status="failed" if error else "done", error=error, finished_at=utcnow())


def _set(catalog: Catalog, event_id: int, **values: Any) -> None:
    with write_transaction(catalog.engine) as connection:
        connection.execute(update(trigger_events).where(trigger_events.c.id == event_id).values(**values))
