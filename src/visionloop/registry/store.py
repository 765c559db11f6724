"""The registry's persistence: rows in the catalog database, read and written on a connection the
caller holds, so a rule check and the change it allows commit in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Row

from visionloop.catalog.records import utcnow
from visionloop.catalog.tables import model_aliases, model_versions, registry_events
from visionloop.registry.records import EventAction, GateStatus, ModelVersion, RegistryEvent

__all__ = [
    "add_event",
    "alias_events",
    "alias_map",
    "find_version_by_sha",
    "insert_version",
    "list_events",
    "read_version",
    "read_versions",
    "set_alias",
    "update_version",
]


def insert_version(connection: Connection, values: dict[str, Any]) -> int:
    """Add a version row; returns its number (1, 2, ... in registration order)."""
    result = connection.execute(insert(model_versions).values(**values, created_at=utcnow()))
    (version,) = result.inserted_primary_key or (None,)
    if version is None:
        raise RuntimeError("the database did not return the new version number")
    return int(version)


def update_version(connection: Connection, version: int, **values: Any) -> None:
    connection.execute(update(model_versions).where(model_versions.c.version == version).values(**values))


def read_version(connection: Connection, version: int) -> ModelVersion | None:
    row = connection.execute(select(model_versions).where(model_versions.c.version == version)).first()
    return None if row is None else _version(row, _aliases_of(connection, version))


def read_versions(connection: Connection) -> list[ModelVersion]:
    """Every version, newest first, with the aliases pointing at it."""
    aliases: dict[int, list[str]] = {}
    for alias, version in alias_map(connection).items():
        aliases.setdefault(version, []).append(alias)
    rows = connection.execute(select(model_versions).order_by(model_versions.c.version.desc()))
    return [_version(row, sorted(aliases.get(int(row.version), []))) for row in rows]


def find_version_by_sha(connection: Connection, weights_sha256: str) -> int | None:
    found = connection.execute(
        select(model_versions.c.version).where(model_versions.c.weights_sha256 == weights_sha256)
    ).scalar()
    return None if found is None else int(found)


def alias_map(connection: Connection) -> dict[str, int]:
    query = select(model_aliases.c.alias, model_aliases.c.version)
    return {str(alias): int(version) for alias, version in connection.execute(query)}


def set_alias(connection: Connection, alias: str, version: int, actor: str) -> None:
    values = {"version": version, "updated_by": actor, "updated_at": utcnow()}
    changed = connection.execute(update(model_aliases).where(model_aliases.c.alias == alias).values(**values))
    if not changed.rowcount:
        connection.execute(insert(model_aliases).values(alias=alias, **values))


def add_event(
    connection: Connection,
    action: EventAction,
    version: int,
    actor: str,
    *,
    alias: str | None = None,
    previous_version: int | None = None,
    reason: str | None = None,
) -> None:
    connection.execute(
        insert(registry_events).values(
            action=action,
            version=version,
            alias=alias,
            previous_version=previous_version,
            actor=actor,
            reason=reason,
            created_at=utcnow(),
        )
    )


def list_events(
    connection: Connection, *, version: int | None = None, alias: str | None = None, limit: int | None = None
) -> list[RegistryEvent]:
    """Events oldest first (the newest ``limit`` of them when given)."""
    query = select(registry_events).order_by(registry_events.c.id.desc())
    if version is not None:
        query = query.where(registry_events.c.version == version)
    if alias is not None:
        query = query.where(registry_events.c.alias == alias)
    if limit is not None:
        query = query.limit(limit)
    events = [RegistryEvent(**row._asdict()) for row in connection.execute(query)]
    return events[::-1]


def alias_events(connection: Connection, alias: str) -> list[RegistryEvent]:
    """The moves of one alias (promotions and rollbacks), oldest first."""
    return [
        event for event in list_events(connection, alias=alias) if event.action in ("promote", "rollback")
    ]


def _aliases_of(connection: Connection, version: int) -> list[str]:
    return sorted(
        str(alias)
        for (alias,) in connection.execute(
            select(model_aliases.c.alias).where(model_aliases.c.version == version)
        )
    )


def _version(row: Row[Any], aliases: list[str]) -> ModelVersion:
    data = row._asdict()
    gate = data.pop("gate")
    return ModelVersion(**data, gate=None if gate is None else GateStatus.from_dict(gate), aliases=aliases)
