"""The durable webhook inbox: verified events, committed before the sender hears 2xx.

One table, `webhook_inbox`, in the hub store (SQLite or PostgreSQL), made by the hub store's
migrations (runtime/migrations; `inbox_table` mirrors it for queries). The unique constraint on
(system, event_id) makes a repeated delivery a no-op. Ids only grow, and a reader that remembers
the last id it saw never skips a row committed later: SQLite has one writer, committing in id
order; on PostgreSQL each insert holds the inbox's advisory lock shared until it commits, and
`pending` takes it exclusively for its read, so no insert is in flight while it reads. (Inserts
holding it exclusively, as they did, made the commits of several receiver processes queue one
behind another; sharing it lets them overlap and share PostgreSQL's WAL flushes.)

    inbox = Inbox(url)
    rows = inbox.pending("billing", after_id=cursor, limit=500)   # oldest first, unprocessed
    ...                                                           # one run for the batch
    inbox.mark_processed([row.id for row in rows])
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa

from integration_project.runtime import schema
from integration_project.settings import database_url
from integration_project.webhooks.signatures import TOLERANCE, Event

DEFAULT_RETENTION = timedelta(days=7)
MIN_RETENTION = timedelta(seconds=2 * TOLERANCE)
_PG_LOCK_KEY = 0x1B0C_5EED  # arbitrary constant naming the inbox's advisory lock
_INSERTED = ("system", "event_id", "event_type", "received_at", "headers", "body")
_ROWS_PER_INSERT = 500  # 3,000 parameters a statement: under SQLite's and PostgreSQL's limits
_ROWS_PER_PURGE = 10_000  # a purge holds SQLite's write lock for one chunk at a time

metadata = sa.MetaData()
inbox_table = sa.Table(
    "webhook_inbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("event_type", sa.String(255), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("headers", sa.JSON(), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("system", "event_id", name="uq_webhook_inbox_event"),
    # AUTOINCREMENT: SQLite must never reuse the id of a purged row, or a reader's cursor skips.
    sqlite_autoincrement=True,
)
sa.Index(
    "ix_webhook_inbox_pending",
    inbox_table.c.system,
    inbox_table.c.id,
    sqlite_where=inbox_table.c.processed_at.is_(None),
    postgresql_where=inbox_table.c.processed_at.is_(None),
)


class Delivery(NamedTuple):
    """One verified request: the system it came from, its events, the headers worth keeping."""

    system: str
    events: Sequence[Event]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class InboxRow:
    """One stored event."""

    id: int
    system: str
    event_id: str
    event_type: str
    received_at: datetime
    headers: dict[str, str]
    body: str
    processed_at: datetime | None

    def payload(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class SystemStats:
    """How far behind one system's events are."""

    system: str
    depth: int  # events not yet processed
    oldest_age_seconds: float | None  # age of the oldest unprocessed event; None when depth is 0
    last_received_at: datetime | None  # latest event stored, processed or not


@dataclass(frozen=True)
class PendingType:
    """Unprocessed events of one type from one system."""

    system: str
    event_type: str
    count: int
    oldest_received_at: datetime


def _utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were written in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _same(value: Any) -> Any:
    """A bind processor that leaves the value as it is."""
    return value


def _bind_processor(column: sa.Column[Any], dialect: sa.Dialect) -> Callable[[Any], Any]:
    """How SQLAlchemy converts a value of this column for the driver (datetimes and JSON differ per dialect)."""
    return column.type.dialect_impl(dialect).bind_processor(dialect) or _same


def _engine(url: str) -> sa.Engine:
    """An engine for the inbox; SQLite in WAL mode with a full fsync on every commit."""
    backend = sa.make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"the webhook inbox needs SQLite or PostgreSQL, not {backend}")
    engine = sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)  # bodies stay out of errors
    if backend == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            schema.sqlite_wal(cursor)
            cursor.execute("PRAGMA synchronous=FULL")  # the commit survives power loss, not just a crash
            cursor.close()

    return engine


class Inbox:
    """The webhook inbox in the hub store (default `settings.database_url()`), upgraded to the latest schema."""

    def __init__(self, url: str | None = None) -> None:
        self._engine = _engine(url or database_url())
        self._received_at = _bind_processor(inbox_table.c.received_at, self._engine.dialect)
        self._headers = _bind_processor(inbox_table.c.headers, self._engine.dialect)
        self._insert_cache: dict[int, str] = {}
        self._writer: sa.Connection | None = None  # held between commits; see _committed
        self._writer_lock = threading.Lock()
        schema.upgrade(self._engine)

    def add(self, system: str, events: Sequence[Event], headers: Mapping[str, str] | None = None) -> list[int]:
        """Store one delivery's events; return the ids of those stored (repeats are skipped)."""
        return self.add_many([Delivery(system, events, headers or {})])[0]

    def add_many(self, deliveries: Sequence[Delivery]) -> list[list[int]]:
        """Store several deliveries in one transaction (one commit); per delivery, the ids stored.

        The multi-row INSERT is plain SQL cached per row count, run on the driver with values
        converted as SQLAlchemy would: building and compiling a Core statement per batch cost
        about as much as the commit itself. Commits go through one connection held between
        them (checked out again after a failure): a checkout per commit cost a ping, and on
        PostgreSQL a rollback on return, two round trips of six. A lost database raises the
        driver's own error.
        """
        received_at = self._received_at(datetime.now(UTC))
        rows = [
            (delivery.system, event.event_id, event.event_type, received_at, self._headers(dict(delivery.headers)),
             event.body.decode("utf-8"))
            for delivery in deliveries
            for event in delivery.events
        ]
        if not rows:
            return [[] for _ in deliveries]
        with self._writer_lock:
            new_ids = self._committed(rows)
        stored = []
        for delivery in deliveries:  # a key repeated within the batch counts as stored by its first delivery
            stored.append(
                [new_ids.pop(key) for e in delivery.events if (key := (delivery.system, e.event_id)) in new_ids]
            )
        return stored

    def _committed(self, rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], int]:
        """Insert the rows in one transaction on the held connection; (system, event id) -> id of each stored.

        A held connection the server has ended (a restart, a failover) fails once, and the
        rows go again on a fresh one: the insert skips repeats, so a commit that did land
        before the connection died only makes its events count as already stored.
        """
        while True:
            held, self._writer = self._writer, None
            connection = held or self._engine.connect()
            try:
                new_ids = self._insert(connection.connection.dbapi_connection, rows)
            except self._engine.dialect.loaded_dbapi.Error as error:
                lost = self._engine.dialect.is_disconnect(error, connection.connection.dbapi_connection, None)
                if lost:
                    connection.invalidate()
                connection.close()
                if held is not None and lost:
                    continue
                raise
            except BaseException:
                connection.invalidate()  # interrupted mid-transaction: never reuse it
                connection.close()
                raise
            self._writer = connection
            return new_ids

    def _insert(self, dbapi: Any, rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], int]:
        """Insert the rows and commit, on the driver's own connection; (system, event id) -> id of each stored.

        The driver's cursor, not SQLAlchemy's execution layer: three statements a commit
        through it cost more Python than the rows themselves.
        """
        new_ids = {}
        cursor = dbapi.cursor()
        try:
            if self._engine.dialect.name == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", (_PG_LOCK_KEY,))
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                chunk = rows[start : start + _ROWS_PER_INSERT]
                cursor.execute(self._insert_sql(len(chunk)), tuple(value for row in chunk for value in row))
                for row_id, system, event_id in cursor.fetchall():
                    new_ids[(system, event_id)] = row_id
            dbapi.commit()
        except BaseException:
            with contextlib.suppress(Exception):  # a connection that died cannot roll back; it is dropped
                dbapi.rollback()
            raise
        finally:
            cursor.close()
        return new_ids

    def _insert_sql(self, rows: int) -> str:
        """INSERT of `rows` rows that skips repeats and returns the ids stored (cached per row count)."""
        if rows not in self._insert_cache:
            mark = "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
            row = "(" + ", ".join([mark] * len(_INSERTED)) + ")"
            self._insert_cache[rows] = (
                f"INSERT INTO {inbox_table.name} ({', '.join(_INSERTED)}) VALUES {', '.join([row] * rows)} "
                "ON CONFLICT (system, event_id) DO NOTHING RETURNING id, system, event_id"
            )
        return self._insert_cache[rows]

    def pending(self, system: str, after_id: int = 0, limit: int = 100) -> list[InboxRow]:
        """Unprocessed events of a system with id > after_id, oldest first, at most `limit`.

        Read while no insert is in flight (see the module's docstring), so no row with a lower
        id than those returned can be committed later.
        """
        t = inbox_table
        return self._select(
            sa.select(t)
            .where(t.c.system == system, t.c.id > after_id, t.c.processed_at.is_(None))
            .order_by(t.c.id)
            .limit(limit),
            exclusive=True,
        )

    def get(self, ids: Iterable[int]) -> list[InboxRow]:
        """The events with these ids, processed or not, in id order (for a run handed an id list)."""
        t = inbox_table
        return self._select(sa.select(t).where(t.c.id.in_(list(ids))).order_by(t.c.id))

    def _select(self, query: sa.Select[Any], exclusive: bool = False) -> list[InboxRow]:
        """Run a query over the inbox table (`exclusive`: under the advisory lock inserts share); rows as InboxRow."""
        with self._engine.begin() as connection:
            if exclusive and self._engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
            return [
                InboxRow(
                    id=row.id,
                    system=row.system,
                    event_id=row.event_id,
                    event_type=row.event_type,
                    received_at=_utc(row.received_at),
                    headers=row.headers,
                    body=row.body,
                    processed_at=_utc(row.processed_at) if row.processed_at else None,
                )
                for row in connection.execute(query)
            ]

    def mark_processed(self, ids: Iterable[int]) -> int:
        """Mark events processed; return how many were not already."""
        id_list = list(ids)
        if not id_list:
            return 0
        t = inbox_table
        statement = (
            sa.update(t).where(t.c.id.in_(id_list), t.c.processed_at.is_(None)).values(processed_at=datetime.now(UTC))
        )
        with self._engine.begin() as connection:
            return connection.execute(statement).rowcount

    def stats(self, systems: Iterable[str] = ()) -> dict[str, SystemStats]:
        """Depth and oldest unprocessed age per system (also listing `systems` with no events)."""
        t = inbox_table
        unprocessed = t.c.processed_at.is_(None)
        query = sa.select(
            t.c.system,
            sa.func.count().filter(unprocessed),
            sa.func.min(t.c.received_at).filter(unprocessed),
            sa.func.max(t.c.received_at),
        ).group_by(t.c.system)
        now = datetime.now(UTC)
        stats = {name: SystemStats(name, 0, None, None) for name in systems}
        with self._engine.connect() as connection:
            for system, depth, oldest, last in connection.execute(query):
                age = (now - _utc(oldest)).total_seconds() if oldest is not None else None
                stats[system] = SystemStats(system, depth, age, _utc(last))
        return dict(sorted(stats.items()))

    def pending_by_type(self) -> list[PendingType]:
        """Unprocessed events counted per system and event type, with the oldest one's arrival."""
        t = inbox_table
        query = (
            sa.select(t.c.system, t.c.event_type, sa.func.count(), sa.func.min(t.c.received_at))
            .where(t.c.processed_at.is_(None))
            .group_by(t.c.system, t.c.event_type)
            .order_by(t.c.system, t.c.event_type)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query)
            return [PendingType(system, kind, count, _utc(oldest)) for system, kind, count, oldest in rows]

    def purge(self, retention: Mapping[str, timedelta] | None = None, default: timedelta = DEFAULT_RETENTION,
              dry_run: bool = False) -> dict[str, int]:
        """Delete processed events received longer ago than their system's retention (`default` for
        a system not in `retention`); per system in the inbox, how many (only counted when dry_run).

        Unprocessed events are never deleted. Retention is at least twice the signature window, so
        a delivery replayed after its row is gone is already refused as stale. Schemes without a
        signed timestamp (Shopify, generic HMAC) rely on the row alone to refuse a replay: keep
        the default week or longer.
        """
        retention = dict(retention or {})
        for age in (default, *retention.values()):
            if age < MIN_RETENTION:
                raise ValueError(f"retention must be at least {MIN_RETENTION} (twice the signature window)")
        t = inbox_table
        now = datetime.now(UTC)
        with self._engine.connect() as connection:
            systems = sorted(connection.execute(sa.select(t.c.system).distinct()).scalars())
        purged = {}
        for system in systems:
            old = sa.and_(t.c.system == system, t.c.processed_at.is_not(None),
                          t.c.received_at < now - retention.get(system, default))
            if dry_run:
                with self._engine.connect() as connection:
                    purged[system] = connection.execute(sa.select(sa.func.count()).where(old)).scalar_one()
            else:
                purged[system] = self._delete(old)
        return purged

    def _delete(self, condition: sa.ColumnElement[bool]) -> int:
        """Delete the rows matching `condition`, a chunk a transaction, so the receiver commits in between."""
        t = inbox_table
        deleted = 0
        while True:
            chunk = sa.select(t.c.id).where(condition).limit(_ROWS_PER_PURGE)
            with self._engine.begin() as connection:
                count = connection.execute(sa.delete(t).where(t.c.id.in_(chunk))).rowcount
            deleted += count
            if count < _ROWS_PER_PURGE:
                return deleted

    def close(self) -> None:
        """Release the database connections."""
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self._engine.dispose()
