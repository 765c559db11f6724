"""Plain records returned by the catalog (no ORM objects leak out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from visionloop.core.labels import Label
from visionloop.core.provenance import Provenance


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(stamp: datetime) -> datetime:
    """A stored time made timezone-aware: SQLite hands back naive datetimes, written in UTC."""
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp


@dataclass(frozen=True, slots=True)
class ItemRecord:
    id: int
    sha256: str
    uri: str
    size_bytes: int
    width: int
    height: int
    format: str
    mode: str
    exif_orientation: int
    split: str | None
    source: str
    status: str


@dataclass(frozen=True, slots=True)
class AnnotationRecord:
    id: int
    item_id: int
    version: int
    label: Label
    provenance: Provenance
    run_id: str | None
    supersedes_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    kind: str
    status: str
    config: dict[str, Any]
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    parent_id: str | None = None  # e.g. the tuning run of a trial, the training run of an evaluation


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    id: str
    name: str | None
    item_count: int
    annotation_count: int
    created_at: datetime
