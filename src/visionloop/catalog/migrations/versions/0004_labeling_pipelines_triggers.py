"""labeling-tool task and annotation maps, cursors, durable pipeline steps, trigger events, leases

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "labeling_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=255), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("prediction_version", sa.String(length=128), nullable=True),
        sa.Column("pushed_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["media_items.id"], name=op.f("fk_labeling_tasks_item_id_media_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labeling_tasks")),
        sa.UniqueConstraint("tool", "project", "item_id", name="uq_labeling_tasks_item"),
    )
    with op.batch_alter_table("labeling_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_labeling_tasks_task", ["tool", "project", "task_id"], unique=False)
    op.create_table(
        "labeling_annotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=255), nullable=False),
        sa.Column("external_id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("external_updated_at", sa.String(length=64), nullable=False),
        sa.Column("annotation_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("pulled_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["annotation_id"],
            ["annotations.id"],
            name=op.f("fk_labeling_annotations_annotation_id_annotations"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["media_items.id"], name=op.f("fk_labeling_annotations_item_id_media_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labeling_annotations")),
        sa.UniqueConstraint("tool", "project", "external_id", name="uq_labeling_annotations_external"),
    )
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cursors")),
    )
    op.create_table(
        "pipeline_steps",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("outputs", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", STAMP, nullable=True),
        sa.Column("finished_at", STAMP, nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_pipeline_steps_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "position", name=op.f("pk_pipeline_steps")),
    )
    op.create_table(
        "trigger_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", STAMP, nullable=False),
        sa.Column("finished_at", STAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_events")),
        sa.UniqueConstraint("trigger", "key", name="uq_trigger_events_key"),
    )
    with op.batch_alter_table("trigger_events", schema=None) as batch_op:
        batch_op.create_index("ix_trigger_events_status", ["status", "id"], unique=False)
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("acquired_at", STAMP, nullable=False),
        sa.Column("expires_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
    with op.batch_alter_table("trigger_events", schema=None) as batch_op:
        batch_op.drop_index("ix_trigger_events_status")
    op.drop_table("trigger_events")
    op.drop_table("pipeline_steps")
    op.drop_table("cursors")
    op.drop_table("labeling_annotations")
    with op.batch_alter_table("labeling_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_labeling_tasks_task")
    op.drop_table("labeling_tasks")
