"""The hub store: canonical records, cursors, deliveries, ledger and dead-letter queue in one database.

SQLAlchemy Core over any URL: a SQLite file by default, PostgreSQL in production.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from integration_project.connectors.locks import lock_key
from integration_project.model.mapping import canonical_json, text_hash
from integration_project.runtime import schema
from integration_project.settings import database_url

metadata = sa.MetaData()

hub_records = sa.Table(
    "hub_records", metadata,
    sa.Column("object", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(255), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),  # a tombstone: deleted at its source of truth
)
hub_keys = sa.Table(
    "hub_keys", metadata,
    sa.Column("object", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(512), primary_key=True),
    sa.Column("record_id", sa.String(255), nullable=False),
    sa.Index("ix_hub_keys_record", "object", "record_id"),
)
cursors = sa.Table(
    "cursors", metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("system", sa.String(64), primary_key=True),
    sa.Column("object", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(255), primary_key=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("external_id", sa.String(255)),
    sa.Column("payload_hash", sa.String(64)),  # of the consumer's payload last sent
    # pending (sent, answer unknown) | done | skipped (outside the binding's filter)
    # | held (found in the consumer at its first sync, content unknown)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_deliveries_external", "system", "object", "external_id"),
)
ledger = sa.Table(
    "ledger", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("flow", sa.String(255), nullable=False),
    sa.Column("object", sa.String(64), nullable=False),
    sa.Column("record_id", sa.String(255)),
    sa.Column("from_system", sa.String(64), nullable=False),
    sa.Column("to_system", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
dlq = sa.Table(
    "dlq", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(255), nullable=False),
    sa.Column("object", sa.String(64), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),  # extract | validate | map | load
    sa.Column("record_id", sa.String(255)),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),  # open | resolved (went through later) | discarded
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_dlq_open", "flow", "status", "record_id"),
)
ingest_tally = sa.Table(  # per leg into the hub: records read and newly rejected so far
    "ingest_tally", metadata,
    sa.Column("leg", sa.String(255), primary_key=True),
    sa.Column("read", sa.BigInteger, nullable=False),
    sa.Column("rejected", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
validity_judged = sa.Table(  # per flow: its leg's tally when the flow's validity was last judged
    "validity_judged", metadata,
    sa.Column("flow", sa.String(255), primary_key=True),
    sa.Column("read", sa.BigInteger, nullable=False),
    sa.Column("rejected", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


_IDS: sa.BindParameter[Any] = sa.bindparam("ids", expanding=True)  # a list of values bound as one parameter, not one literal each


def tombstone_hash(content_hash: str) -> str:
    """The hash of a record's tombstone: new to every consumer, the same however often it is made."""
    return text_hash(f"deleted:{content_hash}")


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


@dataclass
class HubRecord:
    """One canonical record as the hub holds it."""

    record_id: str
    data: dict[str, Any]
    content_hash: str
    text: str | None = field(default=None, repr=False, compare=False)  # `data` as stored, when known
    deleted: bool = False  # a tombstone: the source of truth deleted it; `data` is its last version


@functools.cache
def _insert_sql(dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...]
                ) -> tuple[str, Callable[[tuple[Any, ...]], tuple[Any, ...]] | None]:
    """A table's INSERT of these columns, compiled once for the dialect: the SQL text and, for a
    positional paramstyle, what takes its parameters from a row of `columns` (None: in order)."""
    compiled = sa.insert(table).compile(dialect=dialect, column_keys=list(columns))
    if not dialect.positional:
        return str(compiled), None
    order = tuple(columns.index(name) for name in compiled.positiontup or ())
    if order == tuple(range(len(columns))):
        return str(compiled), None
    return str(compiled), operator.itemgetter(*order) if len(order) > 1 else lambda row: (row[order[0]],)


def insert_rows(conn: Connection, table: sa.Table, columns: tuple[str, ...], rows: list[tuple],
                **same: Any) -> None:
    """Insert rows (tuples of `columns`' values) and the values `same` for all of them, as one
    `executemany` of the driver: SQLAlchemy's per-row parameter processing for a page of rows costs
    more than the database's own work. Values go to the driver as they are, except the `same` ones,
    processed once by their column's type (a datetime in SQLite, say)."""
    if not rows:
        return
    for name, value in same.items():
        process = table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        same[name] = process(value) if process else value
    columns = (*columns, *same)
    if same:
        tail = tuple(same.values())
        rows = [(*row, *tail) for row in rows]
    sql, order = _insert_sql(conn.dialect, table, columns)
    if not conn.dialect.positional:
        conn.exec_driver_sql(sql, [dict(zip(columns, row)) for row in rows])
    else:
        conn.exec_driver_sql(sql, rows if order is None else list(map(order, rows)))


_IN_CHUNK = 512  # values of one IN list at most (SQLite's oldest limit is 999 parameters a statement)


@functools.cache
def _in_sql(dialect: sa.Dialect, columns: tuple[sa.Column, ...], equal: tuple[sa.Column, ...],
            among: sa.Column, n: int) -> tuple[str, tuple[int, ...] | None, tuple[str, ...]]:
    """SELECT `columns` WHERE each of `equal` = a value AND `among` IN (n values), compiled once."""
    q = sa.select(*columns).where(*(c == sa.bindparam(f"e{i}") for i, c in enumerate(equal)),
                                  among.in_([sa.bindparam(f"v{i}") for i in range(n)]))
    compiled = q.compile(dialect=dialect)
    names = (*(f"e{i}" for i in range(len(equal))), *(f"v{i}" for i in range(n)))
    if not dialect.positional:
        return str(compiled), None, names
    return str(compiled), tuple(names.index(name) for name in compiled.positiontup or ()), names


def select_in(conn: Connection, columns: tuple[sa.Column, ...], equal: dict[sa.Column, Any], among: sa.Column,
              values: Iterable[Any]) -> list[tuple]:
    """The rows (tuples of `columns`) whose columns `equal` their values and whose `among` is one of
    `values`, through the driver: one statement per 512 values, its text compiled once per list
    length rounded up to a power of two (the list is padded with its last value), so a page's
    lookups skip SQLAlchemy's per-execution expansion of the IN list. The columns must need no
    result processing (strings, numbers)."""
    values = list(values)
    rows: list[tuple] = []
    for start in range(0, len(values), _IN_CHUNK):
        chunk = values[start:start + _IN_CHUNK]
        n = 1 << (len(chunk) - 1).bit_length()
        params = (*equal.values(), *chunk, *[chunk[-1]] * (n - len(chunk)))
        sql, order, names = _in_sql(conn.dialect, columns, tuple(equal), among, n)
        if order is not None:
            rows += conn.exec_driver_sql(sql, tuple(params[i] for i in order)).all()
        else:
            rows += conn.exec_driver_sql(sql, dict(zip(names, params))).all()
    return [tuple(row) for row in rows]


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    schema.sqlite_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@functools.cache
def _engine(url: str) -> sa.Engine:
    """One engine per database per process, migrated to the latest schema on first use."""
    engine = sa.create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        # WAL with synchronous=NORMAL keeps every commit atomic and survives a killed process; a
        # power cut may lose the last commits, and with them their cursor: they are read again.
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    schema.upgrade(engine)
    return engine


class Store:
    """Access to the hub store (schema managed by the Alembic migrations beside this module)."""

    def __init__(self, url: str | None = None):
        self.url = url or database_url()
        self.engine = _engine(self.url)

    @contextmanager
    def transaction(self, conn: Connection | None = None) -> Iterator[Connection]:
        """One committed unit of work: on a connection of its own, or on `conn` (one a caller holds
        for many units, as an ingest does for its pages, sparing a pool checkout and ping each)."""
        if conn is None:
            with self.engine.begin() as conn:
                yield conn
        else:
            with conn.begin():
                yield conn

    @staticmethod
    def serialize(conn: Connection, *name: str) -> None:
        """Wait, at the start of a transaction, until no other transaction holds `name`; hold it to
        the end, so that what this one reads stays true until it writes (two runs ingesting one
        object read the same records as new, and both claim their keys).

        PostgreSQL: a transaction-level advisory lock on the name's hash. SQLite: the database's one
        write lock, taken by a write that changes nothing (the driver begins its transaction at the
        first write; reads before it would see no later commit's rows)."""
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key("hub", *name)})
        else:
            conn.execute(sa.update(cursors).where(sa.false()).values(key=cursors.c.key))

    def cursor(self, key: str) -> str | None:
        """The committed cursor of an extraction, if any."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(cursors.c.value).where(cursors.c.key == key)).scalar()

    @staticmethod
    def set_cursor(conn: Connection, key: str, value: str) -> None:
        """Advance a cursor inside the transaction that commits the records it covers."""
        row = {"value": value, "updated_at": now()}
        if conn.execute(sa.update(cursors).where(cursors.c.key == key).values(**row)).rowcount == 0:
            conn.execute(sa.insert(cursors).values(key=key, **row))

    @staticmethod
    def add_tally(conn: Connection, leg: str, read: int, rejected: int) -> None:
        """Count a page of a leg into the hub (records read, new rejects) inside its commit."""
        grow = {"read": ingest_tally.c.read + read, "rejected": ingest_tally.c.rejected + rejected,
                "updated_at": now()}
        if conn.execute(sa.update(ingest_tally).where(ingest_tally.c.leg == leg).values(**grow)).rowcount:
            return
        try:  # the leg's first page; a concurrent first page of the same leg may insert it first
            with conn.begin_nested():
                conn.execute(sa.insert(ingest_tally).values(leg=leg, read=read, rejected=rejected, updated_at=now()))
        except sa.exc.IntegrityError:
            conn.execute(sa.update(ingest_tally).where(ingest_tally.c.leg == leg).values(**grow))

    def judge(self, leg: str, flows: Iterable[str]) -> dict[str, tuple[int, int]]:
        """Per flow, the records read and newly rejected by the leg since the flow was last judged
        (ever, the first time); each flow is marked judged at the leg's tally."""
        with self.transaction() as conn:
            row = conn.execute(sa.select(ingest_tally.c.read, ingest_tally.c.rejected)
                               .where(ingest_tally.c.leg == leg)).first()
            read, rejected = (row.read, row.rejected) if row else (0, 0)
            out: dict[str, tuple[int, int]] = {}
            for flow in flows:
                seen = conn.execute(sa.select(validity_judged.c.read, validity_judged.c.rejected)
                                    .where(validity_judged.c.flow == flow)).first()
                out[flow] = (read - seen.read, rejected - seen.rejected) if seen else (read, rejected)
                mark = {"read": read, "rejected": rejected, "updated_at": now()}
                if seen:
                    conn.execute(sa.update(validity_judged).where(validity_judged.c.flow == flow).values(**mark))
                else:
                    conn.execute(sa.insert(validity_judged).values(flow=flow, **mark))
            return out

    @staticmethod
    def hashes(conn: Connection, obj: str, ids: Iterable[str]) -> dict[str, str]:
        """The stored content hash of each of these hub records that exists."""
        return dict(select_in(conn, (hub_records.c.record_id, hub_records.c.content_hash),
                              {hub_records.c.object: obj}, hub_records.c.record_id, ids))

    @staticmethod
    def hub_data(conn: Connection, obj: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored canonical data of each of these hub records that exists."""
        q = sa.select(hub_records.c.record_id, hub_records.c.data).where(
            hub_records.c.object == obj, hub_records.c.record_id.in_(_IDS))
        return {rid: json.loads(data) for rid, data in conn.execute(q, {"ids": list(ids)}).all()}

    @staticmethod
    def key_owners(conn: Connection, obj: str, key: str, values: Iterable[str]) -> dict[str, str]:
        """Which hub record holds each of these match-key values."""
        return dict(select_in(conn, (hub_keys.c.value, hub_keys.c.record_id),
                              {hub_keys.c.object: obj, hub_keys.c.key: key}, hub_keys.c.value, values))

    @staticmethod
    def claim_keys(conn: Connection, obj: str, key: str, claims: dict[str, str],
                   holders: Iterable[str] | None = None) -> None:
        """Record each record's current match-key value (record id -> value), replacing its old one.

        `holders`: the records of `claims` that may hold a value already (those in the hub: a value
        is claimed only in the transaction that commits its record); None when unknown (all)."""
        if claims:
            held = list(claims) if holders is None else [rid for rid in holders if rid in claims]
            if held:
                conn.execute(sa.delete(hub_keys).where((hub_keys.c.object == obj) & (hub_keys.c.key == key)
                                                       & hub_keys.c.record_id.in_(_IDS)), {"ids": held})
            insert_rows(conn, hub_keys, ("value", "record_id"), [(v, rid) for rid, v in claims.items()],
                        object=obj, key=key)

    @staticmethod
    def upsert_hub(conn: Connection, obj: str, source: str, new: list[HubRecord],
                   changed: list[HubRecord]) -> None:
        """Insert new hub records and update changed ones (bumping their version), in bulk."""
        at = now()

        def row(rec: HubRecord) -> dict[str, Any]:
            return {"rid": rec.record_id, "data": rec.text or canonical_json(rec.data),
                    "content_hash": rec.content_hash, "source": source, "updated_at": at}

        insert_rows(conn, hub_records, ("record_id", "data", "content_hash"),
                    [(r.record_id, r.text or canonical_json(r.data), r.content_hash) for r in new],
                    object=obj, source=source, version=1, updated_at=at)
        if changed:
            conn.execute(sa.update(hub_records).where(
                (hub_records.c.object == obj) & (hub_records.c.record_id == sa.bindparam("rid"))
            ).values(version=hub_records.c.version + 1, data=sa.bindparam("data"),
                     content_hash=sa.bindparam("content_hash"), source=sa.bindparam("source"),
                     updated_at=sa.bindparam("updated_at"), deleted_at=None),  # a restored record lives again
                [row(r) for r in changed])

    @staticmethod
    def tombstone(conn: Connection, obj: str, source: str, ids: Iterable[str]) -> list[HubRecord]:
        """Mark these records deleted at `source` (only records it holds, not yet deleted): a new
        version whose hash tells every consumer, their match-key values released. Returns them."""
        q = sa.select(hub_records.c.record_id, hub_records.c.data, hub_records.c.content_hash).where(
            (hub_records.c.object == obj) & (hub_records.c.source == source)
            & hub_records.c.deleted_at.is_(None) & hub_records.c.record_id.in_(_IDS))
        found = [HubRecord(rid, json.loads(data), tombstone_hash(old), data, deleted=True)
                 for rid, data, old in conn.execute(q, {"ids": sorted(set(ids))}).all()]
        if found:
            conn.execute(sa.update(hub_records).where(
                (hub_records.c.object == obj) & (hub_records.c.record_id == sa.bindparam("rid"))
            ).values(version=hub_records.c.version + 1, content_hash=sa.bindparam("hash"),
                     deleted_at=sa.bindparam("at"), updated_at=sa.bindparam("at")),
                [{"rid": r.record_id, "hash": r.content_hash, "at": now()} for r in found])
            conn.execute(sa.delete(hub_keys).where((hub_keys.c.object == obj) & hub_keys.c.record_id.in_(_IDS)),
                         {"ids": [r.record_id for r in found]})
        return found

    def undelivered(self, system: str, obj: str, batch: int = 500
                    ) -> Iterator[tuple[HubRecord, dict | None]]:
        """Hub records whose current version the system has not confirmed, with any delivery row.

        Streamed in batches by record id, so memory stays flat however many records there are.
        """
        d = deliveries.alias()
        q = (
            sa.select(hub_records.c.record_id, hub_records.c.data, hub_records.c.content_hash,
                      hub_records.c.deleted_at, d.c.external_id, d.c.status, d.c.payload_hash)
            .select_from(hub_records.outerjoin(d, (d.c.system == system) & (d.c.object == obj)
                                               & (d.c.record_id == hub_records.c.record_id)))
            .where(hub_records.c.object == obj)
            .where((d.c.record_id.is_(None)) | (d.c.status == "pending")
                   | (d.c.content_hash != hub_records.c.content_hash))
            .order_by(hub_records.c.record_id).limit(batch)
        )
        after = None
        while True:
            with self.engine.connect() as conn:
                page = conn.execute(q if after is None else q.where(hub_records.c.record_id > after)
                                    ).mappings().all()
            for r in page:
                yield (HubRecord(r["record_id"], json.loads(r["data"]), r["content_hash"],
                                 deleted=r["deleted_at"] is not None),
                       None if r["status"] is None else dict(r))
            if len(page) < batch:
                return
            after = page[-1]["record_id"]

    def count(self, obj: str) -> int:
        """How many records of an object the hub holds (its tombstones too)."""
        q = sa.select(sa.func.count()).select_from(hub_records).where(hub_records.c.object == obj)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one()

    def external_id(self, system: str, obj: str, record_id: str) -> str | None:
        """The system's own id of a record we delivered to it, if it is there."""
        q = sa.select(deliveries.c.external_id).where(
            (deliveries.c.system == system) & (deliveries.c.object == obj)
            & (deliveries.c.record_id == record_id) & (deliveries.c.status == "done"))
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def record_ids(self, system: str, obj: str, external_ids: set[str]) -> dict[str, str]:
        """A system's own ids -> our record ids, for records we delivered to it."""
        if not external_ids:
            return {}
        q = sa.select(deliveries.c.external_id, deliveries.c.record_id).where(
            (deliveries.c.system == system) & (deliveries.c.object == obj)
            & deliveries.c.external_id.in_(sorted(external_ids)))
        with self.engine.connect() as conn:
            return dict(conn.execute(q).all())

    def has_deliveries(self, system: str, obj: str) -> bool:
        """Whether anything of this object was ever sent to this system."""
        q = sa.select(deliveries.c.record_id).where(
            (deliveries.c.system == system) & (deliveries.c.object == obj)).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None

    def hold(self, system: str, obj: str, found: dict[str, str]) -> None:
        """Record records a consumer already held before its first sync (our id -> its id)."""
        rows = [{"system": system, "object": obj, "record_id": rid, "content_hash": "",
                 "external_id": ext, "status": "held", "updated_at": now()} for rid, ext in found.items()]
        with self.transaction() as conn:
            if rows:
                conn.execute(sa.insert(deliveries), rows)

    def mark_delivery(self, system: str, obj: str, record_id: str, content_hash: str,
                      status: str, external_id: str | None, payload_hash: str | None = None) -> None:
        """Record that a version was sent (pending) or confirmed (done) in a consumer."""
        key = ((deliveries.c.system == system) & (deliveries.c.object == obj)
               & (deliveries.c.record_id == record_id))
        row = {"content_hash": content_hash, "status": status, "external_id": external_id,
               "payload_hash": payload_hash, "updated_at": now()}
        with self.transaction() as conn:
            if conn.execute(sa.update(deliveries).where(key).values(**row)).rowcount == 0:
                conn.execute(sa.insert(deliveries).values(
                    system=system, object=obj, record_id=record_id, **row))

    @staticmethod
    def record(conn: Connection, **transfer: Any) -> None:
        """Write one transfer to the ledger (see `record_many`)."""
        Store.record_many(conn, [transfer])

    @staticmethod
    def record_many(conn: Connection, transfers: list[dict[str, Any]]) -> None:
        """Write transfers to the ledger: run_id, flow, obj, record_id, from_system, to_system,
        outcome and optionally key (the idempotency key)."""
        insert_rows(conn, ledger, ("run_id", "flow", "object", "record_id", "from_system", "to_system",
                                   "outcome", "idempotency_key"),
                    [(t["run_id"], t["flow"], t["obj"], t["record_id"], t["from_system"], t["to_system"],
                      t["outcome"], t.get("key")) for t in transfers], at=now())

    @staticmethod
    def record_page(conn: Connection, *, run_id: str, flow: str, obj: str, from_system: str, to_system: str,
                    transfers: list[tuple[str | None, str, str | None]]) -> None:
        """Write one ledger row per transfer (record id, outcome, idempotency key) of one flow's page."""
        insert_rows(conn, ledger, ("record_id", "outcome", "idempotency_key"), transfers, run_id=run_id,
                    flow=flow, object=obj, from_system=from_system, to_system=to_system, at=now())

    @staticmethod
    def dead_letter(conn: Connection, *, flow: str, obj: str, stage: str, record_id: str | None,
                    payload: Any, reason: str, run_id: str) -> bool:
        """Park a record with its reason; a record already parked open just counts one more attempt.
        True when the entry is new."""
        return Store.dead_letter_many(conn, flow=flow, obj=obj, stage=stage, run_id=run_id,
                                      entries=[(record_id, payload, reason)]) == 1

    @staticmethod
    def dead_letter_many(conn: Connection, *, flow: str, obj: str, stage: str, run_id: str,
                         entries: list[tuple[str | None, Any, str]], resolved: Iterable[str] = ()) -> int:
        """Park records (record id, payload, reason) in at most three statements, as `dead_letter`
        would one by one: an entry open for the same record and reason counts more attempts and takes
        the latest payload. `resolved`: records of the flow that have now gone through, whose open
        entries (any stage) are closed first, as `resolve_dead_letters` would (the same SELECT finds
        both). Returns how many entries are new."""
        parked: dict[tuple[str | None, str], tuple[str, int]] = {}
        for record_id, payload, reason in entries:
            attempts = parked.get((record_id, reason), ("", 0))[1] + 1
            parked[(record_id, reason)] = (canonical_json(payload), attempts)
        through = set(resolved)
        if not parked and not through:
            return 0
        ids = [*through, *(rid for rid, _ in parked if rid is not None and rid not in through)]
        columns = (dlq.c.id, dlq.c.record_id, dlq.c.reason, dlq.c.stage)
        found = select_in(conn, columns, {dlq.c.flow: flow, dlq.c.status: "open"}, dlq.c.record_id, ids)
        if any(rid is None for rid, _ in parked):
            found += conn.execute(sa.select(*columns).where(
                (dlq.c.flow == flow) & (dlq.c.status == "open") & dlq.c.record_id.is_(None))).all()
        open_ids: dict[tuple[str | None, str], list[int]] = {}
        closed: list[int] = []
        for dlq_id, record_id, reason, row_stage in found:
            if record_id in through:
                closed.append(dlq_id)
            elif row_stage == stage and (record_id, reason) in parked:
                open_ids.setdefault((record_id, reason), []).append(dlq_id)
        if closed:
            conn.execute(sa.update(dlq).where(dlq.c.id.in_(_IDS)).values(status="resolved"), {"ids": closed})
        updates = [{"dlq_id": i, "more": parked[k][1], "body": parked[k][0]} for k, found in open_ids.items()
                   for i in found]
        if updates:
            conn.execute(sa.update(dlq).where(dlq.c.id == sa.bindparam("dlq_id")).values(
                attempts=dlq.c.attempts + sa.bindparam("more"), payload=sa.bindparam("body"), run_id=run_id),
                updates)
        inserts = [(rid, body, reason, attempts) for (rid, reason), (body, attempts) in parked.items()
                   if (rid, reason) not in open_ids]
        insert_rows(conn, dlq, ("record_id", "payload", "reason", "attempts"), inserts, flow=flow, object=obj,
                    stage=stage, run_id=run_id, status="open", created_at=now())
        return len(inserts)

    @staticmethod
    def resolve_dead_letters(conn: Connection, flow: str, record_ids: list[str]) -> None:
        """Close the open DLQ entries of records that have now gone through."""
        if record_ids:
            conn.execute(sa.update(dlq).where(
                (dlq.c.flow == flow) & (dlq.c.record_id.in_(_IDS)) & (dlq.c.status == "open")
            ).values(status="resolved"), {"ids": list(record_ids)})

    def open_reasons(self, obj: str) -> dict[str, int]:
        """Open dead-letter entries of an object, counted by reason (payloads are not loaded)."""
        q = (sa.select(dlq.c.reason, sa.func.count()).where((dlq.c.object == obj) & (dlq.c.status == "open"))
             .group_by(dlq.c.reason))
        with self.engine.connect() as conn:
            return dict(conn.execute(q).all())

    def ids(self, column: sa.Column, **where: Any) -> set[str]:
        """One column's values of the rows matching equality filters (ids, without the payloads)."""
        q = sa.select(column).where(*(column.table.c[k] == v for k, v in where.items()))
        with self.engine.connect() as conn:
            return {str(v) for v in conn.execute(q).scalars()}

    def rows(self, table: sa.Table, **where: Any) -> list[dict[str, Any]]:
        """Rows of a table matching equality filters (for checks, the CLI and tests)."""
        q = sa.select(table).where(*(table.c[k] == v for k, v in where.items()))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings().all()]
