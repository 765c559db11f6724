"""Engines for the catalog: SQLite (WAL, busy timeout, immediate write transactions) or PostgreSQL.

SQLite in WAL mode lets readers run beside one writer. Write transactions start with
``BEGIN IMMEDIATE`` so a writer takes the lock up front and waits (busy timeout) instead of
failing when another process committed between its read and its write.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from visionloop.core.errors import CatalogError, MissingDependencyError

#: The newest migration; ``tests/catalog`` checks it equals alembic's head.
HEAD_REVISION = "0004"
SQLITE_BUSY_TIMEOUT_S = 60.0
_MIGRATIONS = Path(__file__).with_name("migrations")


def redacted_url(url: str) -> str:
    """``url`` fit to print: a password in it (say, from an expanded ``$VAR``) shows as ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL SQLAlchemy parses: blank any user:password@ part anyway
        return re.sub(r"(://[^/:@]*):[^/@]*@", r"\1:***@", url)


def create_catalog_engine(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql://...``), configured for safe concurrency."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise CatalogError(f"invalid catalog URL {redacted_url(url)!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except ImportError as exc:
            raise MissingDependencyError("psycopg", "postgres", "A PostgreSQL catalog") from exc
    raise CatalogError(
        f"unsupported catalog URL {redacted_url(url)!r}: use sqlite:///PATH or postgresql://..."
    )


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # Pooled: closing the last connection to a WAL database checkpoints it (milliseconds), so
    # connections are kept open between transactions. visionloop starts worker processes with
    # "spawn", never "fork", so no pooled connection crosses a process boundary.
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: immediate lock on SQLite, plain BEGIN on PostgreSQL."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.execution_options(sqlite_begin="IMMEDIATE")  # applies in place
        with connection.begin():
            yield connection


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection, connection.begin():
        yield connection


def current_revision(engine: Engine) -> str | None:
    try:
        with read_connection(engine) as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        return None


def migrate(engine: Engine) -> None:
    """Bring the catalog schema to :data:`HEAD_REVISION` (fast no-op when already there).

    Migrations run inside one write transaction (SQLite) or under an advisory lock
    (PostgreSQL), so processes that open a new catalog at the same moment do not race.
    """
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with write_transaction(engine) as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(7306461157)"))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise CatalogError(f"cannot migrate catalog {engine.url!r}: {exc.orig}") from exc


def sqlite_url_for(path: str | os.PathLike[str]) -> str:
    return f"sqlite:///{Path(path).resolve()}"
