"""The catalog schema (SQLAlchemy Core). Migrations in ``migrations/`` must match it.

Annotations are append-only versions; snapshots are immutable lists of exact item and
annotation versions; every derived computation is a row in ``runs``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

SPLIT_MAX_LENGTH = 8  # split names (train, val, test, calib...) fit the catalog's column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)
Json = JSON().with_variant(JSONB(), "postgresql")

media_items = Table(
    "media_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("uri", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("format", String(16), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("exif_orientation", Integer, nullable=False, server_default="1"),
    Column("frames", Integer, nullable=False, server_default="1"),
    Column("split", String(SPLIT_MAX_LENGTH), nullable=True),
    Column("source", String(16), nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("run_id", String(32), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_media_items_split", media_items.c.split)

# Every file ever listed by ingest, so a re-scan only stats files and compares fingerprints.
files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uri", Text, nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("fingerprint", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # item | duplicate | rejected | missing
    Column("item_id", Integer, ForeignKey("media_items.id"), nullable=True),
    Column("reason", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Covers the re-scan query (range on uri, filter on status, read fingerprint) without table reads.
Index("ix_files_scan", files.c.uri, files.c.status, files.c.fingerprint)

label_schemas = Table(
    "label_schemas",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task", String(32), nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("config", Json, nullable=False),
    Column("inputs", Json, nullable=False),
    Column("outputs", Json, nullable=True),
    Column("error", Text, nullable=True),
    Column("parent_id", String(32), ForeignKey("runs.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)
Index("ix_runs_kind_created", runs.c.kind, runs.c.created_at)

# Time series a run logs while it works (per-epoch training and validation metrics).
run_metrics = Table(
    "run_metrics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("step", Integer, nullable=False),
    Column("epoch", Integer, nullable=True),
    Column("name", String(128), nullable=False),
    Column("value", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_run_metrics_run_step", run_metrics.c.run_id, run_metrics.c.step)

annotation_versions = Table(
    "annotations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, ForeignKey("media_items.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("payload", Json, nullable=False),
    Column("provenance", String(8), nullable=False),  # human | model | auto
    Column("annotator", String(128), nullable=True),
    Column("model_version", String(128), nullable=True),
    Column("score", Float, nullable=True),
    Column("calibration_run", String(32), nullable=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=True),
    Column("supersedes_id", Integer, ForeignKey("annotations.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("item_id", "version", name="uq_annotations_item_version"),
)

# Denormalised class counts per annotation version: status and dashboards group by SQL.
annotation_classes = Table(
    "annotation_classes",
    metadata,
    Column("annotation_id", Integer, ForeignKey("annotations.id"), primary_key=True),
    Column("class_name", String(128), primary_key=True),
    Column("count", Integer, nullable=False),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, ForeignKey("media_items.id"), nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=True),
    Column("model_version", String(128), nullable=False),
    Column("payload", Json, nullable=False),
    Column("score", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_predictions_item", predictions.c.item_id)
Index("ix_predictions_run", predictions.c.run_id)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=True),
    Column("item_count", Integer, nullable=False),
    Column("annotation_count", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

snapshot_entries = Table(
    "snapshot_entries",
    metadata,
    Column("snapshot_id", String(32), ForeignKey("snapshots.id"), primary_key=True),
    Column("item_id", Integer, ForeignKey("media_items.id"), primary_key=True),
    Column("annotation_id", Integer, ForeignKey("annotations.id"), nullable=True),
    Column("split", String(SPLIT_MAX_LENGTH), nullable=True),
)

# -- model registry: versions with lineage, aliases, an audit trail of every change, approvals --

ALIAS_MAX_LENGTH = 64

model_versions = Table(
    "model_versions",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("weights_sha256", String(64), nullable=False, unique=True),
    Column("model_path", Text, nullable=False),
    Column("task", String(32), nullable=False),
    Column("family", String(64), nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=True),
    Column("snapshot_id", String(32), nullable=True),
    Column("config", Json, nullable=False),
    Column("metrics", Json, nullable=False),
    Column("gate", Json, nullable=True),  # {"passed", "reasons", "evaluation_run"} once evaluated
    Column("artifacts", Json, nullable=False),  # e.g. {"onnx": {"path", "run_id", ...}}
    Column("parent_version", Integer, ForeignKey("model_versions.version"), nullable=True),
    Column("description", Text, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("alias", String(ALIAS_MAX_LENGTH), primary_key=True),
    Column("version", Integer, ForeignKey("model_versions.version"), nullable=False),
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Append-only: register, promote, rollback, approve and reject each add one row.
registry_events = Table(
    "registry_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("action", String(16), nullable=False),
    Column("version", Integer, ForeignKey("model_versions.version"), nullable=False),
    Column("alias", String(ALIAS_MAX_LENGTH), nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_registry_events_alias", registry_events.c.alias, registry_events.c.id)
Index("ix_registry_events_version", registry_events.c.version)

# -- labeling tools (Label Studio): which item is which task there, which annotation was pulled --

# ``project`` names one project in one tool: the tool's base URL and its project id (``url#id``).
labeling_tasks = Table(
    "labeling_tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tool", String(32), nullable=False),
    Column("project", String(255), nullable=False),
    Column("item_id", Integer, ForeignKey("media_items.id"), nullable=False),
    Column("task_id", BigInteger, nullable=False),
    Column("prediction_version", String(128), nullable=True),  # model version of the last prediction sent
    Column("pushed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tool", "project", "item_id", name="uq_labeling_tasks_item"),
)
Index("ix_labeling_tasks_task", labeling_tasks.c.tool, labeling_tasks.c.project, labeling_tasks.c.task_id)

# One row per annotation seen in the tool; ``annotation_id`` is the catalog version it became (none
# when it was skipped, cancelled or empty), so a changed annotation is pulled again, an unchanged never.
labeling_annotations = Table(
    "labeling_annotations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tool", String(32), nullable=False),
    Column("project", String(255), nullable=False),
    Column("external_id", BigInteger, nullable=False),
    Column("task_id", BigInteger, nullable=False),
    Column("item_id", Integer, ForeignKey("media_items.id"), nullable=False),
    Column("external_updated_at", String(64), nullable=False),
    Column("annotation_id", Integer, ForeignKey("annotations.id"), nullable=True),
    Column("state", String(16), nullable=False),  # imported | skipped | deleted | invalid
    Column("reason", Text, nullable=True),
    Column("pulled_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tool", "project", "external_id", name="uq_labeling_annotations_external"),
)

# Small named state that must survive restarts: sync cursors, a watcher's last listing.
cursors = Table(
    "cursors",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("value", Json, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# -- durable pipelines: a pipeline run is a ``runs`` row (kind "pipeline"); these are its steps --

pipeline_steps = Table(
    "pipeline_steps",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # pending | running | succeeded | failed | waiting
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("outputs", Json, nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)

# Events that trigger pipelines, each stored once under (trigger, key) so a redelivery is a no-op.
trigger_events = Table(
    "trigger_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("trigger", String(64), nullable=False),
    Column("key", String(64), nullable=False),  # sha256 of the event's identity (object + etag, slot...)
    Column("description", Text, nullable=False),
    Column("payload", Json, nullable=False),
    Column("status", String(16), nullable=False),  # new | running | done | failed
    Column("run_id", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("trigger", "key", name="uq_trigger_events_key"),
)
Index("ix_trigger_events_status", trigger_events.c.status, trigger_events.c.id)

# Named leases: "one training at a time" across processes and machines sharing the catalog.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
