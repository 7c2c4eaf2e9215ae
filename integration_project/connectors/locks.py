"""Locks that every process takes while it calls a vendor: the slots of a request budget and the
keys of a check-then-act write (an order's SKUs).

When the hub store is on PostgreSQL (`INTEGRATIONS_DATABASE_URL`), a lock is an advisory lock on a
64-bit hash of its name, so every process on every machine waits in PostgreSQL's one queue for it,
and a process that dies releases its locks with its session. They are transaction-level locks on a
connection of their own: closing it ends the transaction and frees them, so no lock outlives its
holder in the connection pool. Without PostgreSQL the hub is one machine's, and so are the locks:
thread locks here, and a locked file for the budget (`connectors/budget.py`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from collections.abc import Iterable, Iterator

import sqlalchemy as sa

from integration_project.settings import database_url

_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")


@functools.cache
def _engine(url: str) -> sa.Engine:
    # a session per lock held or awaited (up to a flow's `concurrency` at once): the pool does not
    # cap them, PostgreSQL's max_connections does
    return sa.create_engine(url, pool_pre_ping=True, max_overflow=-1)


def shared_engine() -> sa.Engine | None:
    """The hub's PostgreSQL, where every machine's processes meet; None when the hub is elsewhere."""
    url = database_url()
    return _engine(url) if sa.make_url(url).get_backend_name() == "postgresql" else None


def lock_key(*parts: str) -> int:
    """The advisory lock key of a name: a signed 64-bit hash (another name's key is a collision in
    2**-64, which only makes two holders wait for each other)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def hold_for(engine: sa.Engine, key: int, seconds: float) -> None:
    """Wait for the lock of `key`, then keep it for `seconds` from now while the caller goes on."""
    connection = engine.connect()
    try:
        connection.execute(_LOCK, {"key": key})
    except BaseException:
        connection.close()
        raise
    timer = threading.Timer(seconds, _release, (connection,))
    timer.daemon = True  # a process that exits frees the lock with its session
    timer.start()


def _release(connection: sa.Connection) -> None:
    # a failed rollback means a lost session, whose locks PostgreSQL has already freed
    with contextlib.suppress(sa.exc.DBAPIError):
        connection.close()


class KeyLocks:
    """Locks by name within a scope (a vendor's URL), held together: across every process on the
    hub's PostgreSQL, else across this process's threads."""

    def __init__(self, scope: str):
        self.scope = scope
        self.engine = shared_engine()
        self._threads: dict[str, threading.Lock] = {}

    @contextlib.contextmanager
    def held(self, names: Iterable[str]) -> Iterator[None]:
        """Hold the lock of every name until exit. Every holder takes them in one order (by key, or
        by name), so two holders never deadlock."""
        if self.engine is not None:
            with self.engine.connect() as connection:  # closing it frees the locks
                for key in sorted({lock_key(self.scope, name) for name in names}):
                    connection.execute(_LOCK, {"key": key})
                yield
            return
        with contextlib.ExitStack() as stack:
            for name in sorted(set(names)):
                stack.enter_context(self._threads.setdefault(name, threading.Lock()))
            yield
