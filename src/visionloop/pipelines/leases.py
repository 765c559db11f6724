"""Named leases in the catalog: "one at a time" across processes and machines that share it.

A lease has a holder (``host:pid:nonce``) and an expiry that a live holder keeps pushing forward
(:class:`LeaseKeeper` renews it from a background thread). Whoever finds a lease expired may take
it. A holder killed with ``kill -9`` cannot release its lease; when it ran on this machine and its
process is gone, the lease is taken at once instead of after the expiry, so ``pipeline resume``
right after a crash does not wait.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.catalog import Catalog
from visionloop.catalog.engine import write_transaction
from visionloop.catalog.records import as_utc, utcnow
from visionloop.catalog.tables import leases
from visionloop.core.errors import ConflictError
from visionloop.core.processes import process_alive

__all__ = [
    "DEFAULT_TTL_S",
    "LeaseHeld",
    "LeaseKeeper",
    "acquire",
    "current_holder",
    "holder_id",
    "lease",
    "release",
    "renew",
]

DEFAULT_TTL_S = 60.0
logger = logging.getLogger(__name__)
_HOST = socket.gethostname()[:64]


class LeaseHeld(ConflictError):
    """Someone else holds the lease and it has not expired."""


def holder_id() -> str:
    """This process's identity as a lease holder: host, pid and a nonce (pids get reused)."""
    return f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def acquire(catalog: Catalog, name: str, holder: str, ttl_s: float = DEFAULT_TTL_S) -> bool:
    """Take lease ``name`` for ``holder`` if it is free, expired, already ours or its holder died here."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl_s)
    with write_transaction(catalog.engine) as connection:
        row = connection.execute(select(leases).where(leases.c.name == name).with_for_update()).first()
        if row is None:
            return _insert(connection, name, holder, now, expires)
        if row.holder != holder and as_utc(row.expires_at) > now and _holder_alive(row.holder):
            return False
        connection.execute(
            update(leases)
            .where(leases.c.name == name)
            .values(holder=holder, acquired_at=now, expires_at=expires)
        )
        return True


def renew(catalog: Catalog, name: str, holder: str, ttl_s: float = DEFAULT_TTL_S) -> bool:
    """Push the expiry forward; False when the lease was lost (expired and taken by someone else)."""
    with write_transaction(catalog.engine) as connection:
        result = connection.execute(
            update(leases)
            .where(leases.c.name == name, leases.c.holder == holder)
            .values(expires_at=utcnow() + timedelta(seconds=ttl_s))
        )
        return bool(result.rowcount)


def release(catalog: Catalog, name: str, holder: str) -> None:
    with write_transaction(catalog.engine) as connection:
        connection.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


def current_holder(catalog: Catalog, name: str) -> str | None:
    """Who holds ``name`` now (None when free or expired)."""
    with catalog.engine.connect() as connection:
        row = connection.execute(select(leases).where(leases.c.name == name)).first()
    if row is None or as_utc(row.expires_at) <= utcnow() or not _holder_alive(row.holder):
        return None
    return str(row.holder)


class LeaseKeeper:
    """Holds a lease and renews it every third of its TTL until :meth:`stop`."""

    def __init__(self, catalog: Catalog, name: str, holder: str, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.catalog, self.name, self.holder, self.ttl_s = catalog, name, holder, ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease:{name}", daemon=True)
        self.lost = False

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                kept = renew(self.catalog, self.name, self.holder, self.ttl_s)
            except Exception as exc:  # noqa: BLE001 - a busy database: try again at the next tick
                logger.warning("could not renew lease %s: %s", self.name, exc)
                continue
            if not kept:
                self.lost = True
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            release(self.catalog, self.name, self.holder)


@contextlib.contextmanager
def lease(
    catalog: Catalog, name: str, ttl_s: float = DEFAULT_TTL_S, what: str | None = None
) -> Iterator[str]:
    """Hold lease ``name`` for the block (renewed in the background); :class:`LeaseHeld` if taken."""
    holder = holder_id()
    if not acquire(catalog, name, holder, ttl_s):
        holder_now = current_holder(catalog, name) or "another process"
        raise LeaseHeld(f"{what or name} is already running (held by {holder_now}); wait for it to finish")
    keeper = LeaseKeeper(catalog, name, holder, ttl_s).start()
    try:
        yield holder
    finally:
        keeper.stop()


def _insert(connection: Connection, name: str, holder: str, now: datetime, expires: datetime) -> bool:
    try:
        with connection.begin_nested():
            connection.execute(
                insert(leases).values(name=name, holder=holder, acquired_at=now, expires_at=expires)
            )
    except IntegrityError:  # another process inserted it first (PostgreSQL: no row lock to wait on)
        return False
    return True


def _holder_alive(holder: str) -> bool:
    """False only when we can tell: the holder ran on this host and its process is gone."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return True
    return process_alive(int(pid_text))
