"""The catalog: items, files, label schema, append-only annotations, predictions, runs, snapshots."""

from visionloop.catalog.catalog import Catalog
from visionloop.catalog.engine import HEAD_REVISION, redacted_url, sqlite_url_for
from visionloop.catalog.ingest_store import FileIndex, FileOutcome, ProbedFile
from visionloop.catalog.records import (
    AnnotationRecord,
    ItemRecord,
    RunRecord,
    SnapshotRecord,
)

__all__ = [
    "HEAD_REVISION",
    "AnnotationRecord",
    "Catalog",
    "FileIndex",
    "FileOutcome",
    "ItemRecord",
    "ProbedFile",
    "RunRecord",
    "SnapshotRecord",
    "redacted_url",
    "sqlite_url_for",
]
