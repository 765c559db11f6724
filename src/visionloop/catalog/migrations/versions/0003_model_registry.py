"""model registry: versions, aliases and the append-only registry events (approvals included)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("weights_sha256", sa.String(length=64), nullable=False),
        sa.Column("model_path", sa.Text(), nullable=False),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("snapshot_id", sa.String(length=32), nullable=True),
        sa.Column("config", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("gate", JSON, nullable=True),
        sa.Column("artifacts", JSON, nullable=False),
        sa.Column("parent_version", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_version"],
            ["model_versions.version"],
            name=op.f("fk_model_versions_parent_version_model_versions"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_model_versions_run_id_runs")),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("weights_sha256", name=op.f("uq_model_versions_weights_sha256")),
    )
    op.create_table(
        "model_aliases",
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"], ["model_versions.version"], name=op.f("fk_model_aliases_version_model_versions")
        ),
        sa.PrimaryKeyConstraint("alias", name=op.f("pk_model_aliases")),
    )
    op.create_table(
        "registry_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=True),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"], ["model_versions.version"], name=op.f("fk_registry_events_version_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_events")),
    )
    with op.batch_alter_table("registry_events", schema=None) as batch_op:
        batch_op.create_index("ix_registry_events_alias", ["alias", "id"], unique=False)
        batch_op.create_index("ix_registry_events_version", ["version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("registry_events", schema=None) as batch_op:
        batch_op.drop_index("ix_registry_events_version")
        batch_op.drop_index("ix_registry_events_alias")
    op.drop_table("registry_events")
    op.drop_table("model_aliases")
    op.drop_table("model_versions")
