"""Catalog writes for ingest: the file index and media items, batched and race-safe."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, and_, select, update

from visionloop.catalog.records import utcnow
from visionloop.catalog.tables import files, media_items
from visionloop.catalog.upsert import insert_on_conflict
from visionloop.core.media import ImageInfo


class FileOutcome(StrEnum):
    ADDED = "added"
    UNCHANGED = "unchanged"  # same content as the item this path already had
    DUPLICATE = "duplicate"  # content already in the catalog under another path
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ProbedFile:
    """One listed file after reading: an image (``sha256`` + ``info``) or a rejection (``reason``)."""

    uri: str
    size: int
    fingerprint: str
    sha256: str | None = None
    info: ImageInfo | None = None
    reason: str | None = None
    item_uri: str | None = None  # where the item's bytes live, when copied into storage


def prefix_bounds(prefix: str) -> tuple[str, str]:
    """Half-open key range of every URI strictly under ``prefix`` (index-friendly, unlike LIKE)."""
    base = prefix.rstrip("/") + "/"
    return base, base[:-1] + chr(ord("/") + 1)


@dataclass(frozen=True)
class FileIndex:
    """What the catalog knows about the paths under one root, shaped for fast re-scans.

    ``items`` maps each path that holds an item to its fingerprint (nearly every path, in a
    plain ``str -> str`` dict); ``others`` maps duplicate, rejected and missing paths to
    ``(fingerprint, status)``.
    """

    items: dict[str, str]
    others: dict[str, tuple[str, str]]

    def __len__(self) -> int:
        return len(self.items) + len(self.others)

    def present(self) -> list[str]:
        """Indexed paths not already known to be missing."""
        return [*self.items, *(uri for uri, (_fp, status) in self.others.items() if status != "missing")]


def load_file_index(connection: Connection, root: str) -> FileIndex:
    """Load the index under ``root`` (or of ``root`` itself, a single file).

    One row per file on every re-scan makes this the hot query of ingest, so it runs on the
    driver's cursor, which builds the ``items`` dict straight from row tuples, several times
    faster than SQLAlchemy rows.
    """
    low, high = prefix_bounds(root)
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    in_range = f"(uri >= {mark} AND uri < {mark} OR uri = {mark})"
    cursor = connection.connection.cursor()
    try:
        cursor.execute(
            f"SELECT uri, fingerprint FROM files WHERE {in_range} AND status = 'item'", (low, high, root)
        )
        items: dict[str, str] = dict(cursor.fetchall())
        cursor.execute(
            f"SELECT uri, fingerprint, status FROM files WHERE {in_range} AND status <> 'item'",
            (low, high, root),
        )
        others = {uri: (fingerprint, status) for uri, fingerprint, status in cursor.fetchall()}
    finally:
        cursor.close()
    return FileIndex(items, others)


def load_rejection_reasons(connection: Connection, uris: Sequence[str]) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for start in range(0, len(uris), 500):
        query = select(files.c.uri, files.c.reason).where(files.c.uri.in_(list(uris[start : start + 500])))
        reasons.update({uri: reason or "rejected" for uri, reason in connection.execute(query)})
    return reasons


def record_probed_files(
    connection: Connection,
    probed: Sequence[ProbedFile],
    *,
    split_for: Callable[[str], str | None],
    source: str,
    run_id: str | None,
) -> list[FileOutcome]:
    """Insert new items and index every file of the batch; returns one outcome per file.

    Safe against concurrent writers: items are inserted with ON CONFLICT DO NOTHING on the
    content hash and ``RETURNING`` tells which rows this transaction created.
    """
    now = utcnow()
    new_rows: dict[str, dict[str, object]] = {}
    for p in probed:
        if p.sha256 is None or p.info is None:
            continue
        info = p.info
        new_rows.setdefault(
            p.sha256,
            {
                "sha256": p.sha256,
                "uri": p.item_uri or p.uri,
                "size_bytes": p.size,
                "width": info.width,
                "height": info.height,
                "format": info.format,
                "mode": info.mode,
                "exif_orientation": info.exif_orientation,
                "frames": info.frames,
                "split": split_for(p.sha256),
                "source": source,
                "status": "active",
                "run_id": run_id,
                "created_at": now,
            },
        )
    inserted: set[str] = set()
    if new_rows:
        statement = (
            insert_on_conflict(connection, media_items)
            .on_conflict_do_nothing(index_elements=["sha256"])
            .returning(media_items.c.sha256)
        )
        # Sorted keys give concurrent PostgreSQL writers one lock order, so they cannot deadlock.
        rows = [new_rows[sha] for sha in sorted(new_rows)]
        inserted = set(connection.execute(statement, rows).scalars())
    ids = _item_ids(connection, list(new_rows))
    previous = _previous_items(connection, [p.uri for p in probed])

    outcomes: list[FileOutcome] = []
    index_rows: list[dict[str, object]] = []
    replaced: list[tuple[int, str]] = []
    claimed: set[str] = set()
    for p in probed:
        row: dict[str, object] = {
            "uri": p.uri,
            "size": p.size,
            "fingerprint": p.fingerprint,
            "updated_at": now,
        }
        if p.sha256 is None:
            outcomes.append(FileOutcome.REJECTED)
            row.update(status="rejected", item_id=None, reason=p.reason)
        else:
            item_id = ids[p.sha256]
            old_item = previous.get(p.uri)
            if old_item == item_id:
                outcome = FileOutcome.UNCHANGED
            elif p.sha256 in inserted and p.sha256 not in claimed:
                outcome = FileOutcome.ADDED
                claimed.add(p.sha256)
            else:
                outcome = FileOutcome.DUPLICATE
            if old_item is not None and old_item != item_id:
                replaced.append((old_item, p.uri))  # the file at this path now holds other bytes
            outcomes.append(outcome)
            row.update(
                status="item" if outcome is not FileOutcome.DUPLICATE else "duplicate",
                item_id=item_id,
                reason=None,
            )
        index_rows.append(row)
    _upsert_index(connection, sorted(index_rows, key=lambda row: str(row["uri"])))
    for item_id, uri in replaced:
        connection.execute(
            update(media_items)
            .where(and_(media_items.c.id == item_id, media_items.c.uri == uri))
            .values(status="replaced")
        )
    return outcomes


def mark_missing(connection: Connection, uris: Sequence[str]) -> None:
    """Files that disappeared from a fully listed tree: keep history, flag the path and its item."""
    now = utcnow()
    for start in range(0, len(uris), 500):
        chunk = list(uris[start : start + 500])
        connection.execute(
            update(files).where(files.c.uri.in_(chunk)).values(status="missing", updated_at=now)
        )
        orphaned = connection.execute(
            select(media_items.c.id, media_items.c.uri).where(
                media_items.c.uri.in_(chunk) & (media_items.c.status == "active")
            )
        ).all()
        for item_id, uri in orphaned:
            _repoint_or_mark_missing(connection, item_id, uri)


def _repoint_or_mark_missing(connection: Connection, item_id: int, uri: str) -> None:
    """An item whose file vanished lives on at a duplicate path if one exists; else it is missing."""
    alternative = connection.execute(
        select(files.c.uri)
        .where((files.c.item_id == item_id) & (files.c.status == "duplicate") & (files.c.uri != uri))
        .order_by(files.c.uri)
        .limit(1)
    ).scalar()
    if alternative is None:
        connection.execute(update(media_items).where(media_items.c.id == item_id).values(status="missing"))
        return
    connection.execute(update(media_items).where(media_items.c.id == item_id).values(uri=alternative))
    connection.execute(update(files).where(files.c.uri == alternative).values(status="item"))


def _item_ids(connection: Connection, shas: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for start in range(0, len(shas), 500):
        chunk = shas[start : start + 500]
        query = select(media_items.c.sha256, media_items.c.id).where(media_items.c.sha256.in_(chunk))
        ids.update({sha: item_id for sha, item_id in connection.execute(query)})
    return ids


def _previous_items(connection: Connection, uris: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(uris), 500):
        chunk = uris[start : start + 500]
        query = select(files.c.uri, files.c.item_id).where(
            files.c.uri.in_(chunk) & files.c.item_id.is_not(None)
        )
        found.update({uri: item_id for uri, item_id in connection.execute(query)})
    return found


def _upsert_index(connection: Connection, rows: list[dict[str, object]]) -> None:
    if not rows:
        return
    statement = insert_on_conflict(connection, files)
    statement = statement.on_conflict_do_update(
        index_elements=["uri"],
        set_={
            "size": statement.excluded.size,
            "fingerprint": statement.excluded.fingerprint,
            "status": statement.excluded.status,
            "item_id": statement.excluded.item_id,
            "reason": statement.excluded.reason,
            "updated_at": statement.excluded.updated_at,
        },
    )
    connection.execute(statement, rows)
