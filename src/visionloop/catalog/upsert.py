"""Dialect-aware INSERT ... ON CONFLICT, the one primitive that makes concurrent writers safe."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_on_conflict(connection: Connection, table: Table) -> Any:
    """An INSERT for ``table`` with ``on_conflict_do_nothing``/``_do_update`` available."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
