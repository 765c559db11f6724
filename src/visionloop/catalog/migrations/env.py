"""Alembic environment: migrations always run on a connection handed in by ``engine.migrate``."""

from alembic import context

from visionloop.catalog.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable by calling alembic directly
    raise RuntimeError("run migrations through visionloop.catalog.engine.migrate()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
)
context.run_migrations()
