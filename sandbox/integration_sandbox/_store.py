"""The sandbox apps' persistent state: typed JSON records, their property history, metadata and a
webhook outbox in SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

_metadata = sa.MetaData()

objects = sa.Table(
    "objects",
    _metadata,
    sa.Column("type", sa.String, primary_key=True),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False),
    sa.Column("props", sa.Text, nullable=False),
    sa.Index("ix_objects_updated", "type", "updated_ms", "id"),
)

# Every value a property has had, once it has had more than one (a never-changed property has no rows).
versions = sa.Table(
    "history",
    _metadata,
    sa.Column("type", sa.String, primary_key=True),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("property", sa.String, primary_key=True),
    sa.Column("set_ms", sa.BigInteger, primary_key=True),
    sa.Column("value", sa.Text),
)

meta = sa.Table(
    "meta",
    _metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

outbox = sa.Table(
    "outbox",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("delivered", sa.Boolean, nullable=False, default=False),
)


@dataclass
class Record:
    """One stored object: id, creation and last-modification times (epoch ms), properties."""

    type: str
    id: int
    created_ms: int
    updated_ms: int
    props: dict[str, Any] = field(default_factory=dict)
    archived: bool = False


def _record(row: sa.Row[Any]) -> Record:
    return Record(row.type, row.id, row.created_ms, row.updated_ms, json.loads(row.props), row.archived)


class Store:
    """Records of several types in one SQLite file; every write commits at once."""

    def __init__(self, path: Path):
        self.path = path
        self.keep_events = True
        self.keep_history = False
        self.engine = sa.create_engine(f"sqlite:///{path}")
        sa.event.listen(self.engine, "connect", _pragmas)
        _metadata.create_all(self.engine)

    def index_property(self, type_: str, key: str) -> None:
        """Index one JSON property of one type, for lookups by that property (e.g. a subscriber hash)."""
        name = f"ix_{type_}_{key}"
        with self.engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {name} ON objects (json_extract(props, '$.{key}')) WHERE type = '{type_}'"
            )

    def find(self, type_: str, key: str, value: Any, archived: bool = False) -> Record | None:
        """The first live (or archived) record of a type whose JSON property `key` equals value."""
        query = sa.select(objects).where(
            objects.c.type == type_, sa.func.json_extract(objects.c.props, f"$.{key}") == value,
            objects.c.archived.is_(archived)
        ).order_by(objects.c.id).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _record(row)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def is_empty(self) -> bool:
        """Whether nothing was ever seeded or written."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(meta.c.key).limit(1)).first() is None

    def clear(self) -> None:
        """Delete every record, metadata entry and pending webhook."""
        with self.engine.begin() as conn:
            for table in (objects, versions, meta, outbox):
                conn.execute(table.delete())

    def get_meta(self, key: str) -> str | None:
        """A metadata value (e.g. the seed), or None."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        """Store a metadata value."""
        with self.engine.begin() as conn:
            conn.execute(meta.delete().where(meta.c.key == key))
            conn.execute(meta.insert().values(key=key, value=value))

    def bulk_insert(self, records: Iterable[Record]) -> int:
        """Insert many records fast (one transaction, driver-level executemany); returns the count."""
        sql = "INSERT INTO objects (type, id, created_ms, updated_ms, archived, props) VALUES (?,?,?,?,?,?)"
        count = 0
        batch: list[tuple[Any, ...]] = []
        with self.engine.begin() as conn:
            for r in records:
                batch.append((r.type, r.id, r.created_ms, r.updated_ms, r.archived, json.dumps(r.props)))
                if len(batch) >= 20_000:
                    conn.exec_driver_sql(sql, batch)
                    count += len(batch)
                    batch.clear()
            if batch:
                conn.exec_driver_sql(sql, batch)
                count += len(batch)
        with self.engine.connect() as conn:  # fold the big write-ahead log back into the database file
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return count

    def create(self, type_: str, props: dict[str, Any], now_ms: int) -> Record:
        """Add a record with the next id of its type."""
        with self.engine.begin() as conn:
            last = conn.execute(sa.select(sa.func.max(objects.c.id)).where(objects.c.type == type_)).scalar()
            record = Record(type_, (last or 100) + 1, now_ms, now_ms, props)
            values = {"type": type_, "id": record.id, "created_ms": now_ms, "updated_ms": now_ms,
                      "archived": False, "props": json.dumps(props)}
            conn.execute(objects.insert().values(**values))
        return record

    def update(self, type_: str, id_: int, changes: dict[str, Any], now_ms: int) -> Record | None:
        """Merge changed properties into a record and bump its modification time; None if absent."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(objects).where(objects.c.type == type_, objects.c.id == id_,
                                                        objects.c.archived.is_(False))).first()
            if row is None:
                return None
            record = _record(row)
            before = dict(record.props)
            record.props.update(changes)
            record.updated_ms = max(now_ms, record.updated_ms + 1)
            if self.keep_history:
                self._remember(conn, record, before)
            conn.execute(
                objects.update()
                .where(objects.c.type == type_, objects.c.id == id_)
                .values(updated_ms=record.updated_ms, props=json.dumps(record.props))
            )
        return record

    def _remember(self, conn: sa.Connection, record: Record, before: dict[str, Any]) -> None:
        """Record the new value of each changed property (and, the first time, the value it replaced)."""
        for key, value in record.props.items():
            if before.get(key) == value:
                continue
            known = sa.select(versions.c.set_ms).where(
                versions.c.type == record.type, versions.c.id == record.id, versions.c.property == key).limit(1)
            rows = [] if conn.execute(known).first() or key not in before else [
                (record.created_ms, before[key])]
            rows.append((record.updated_ms, value))
            conn.execute(versions.insert(), [
                {"type": record.type, "id": record.id, "property": key, "set_ms": ms, "value": json.dumps(v)}
                for ms, v in rows])

    def bulk_history(self, rows: Iterable[tuple[str, int, str, int, Any]]) -> None:
        """Insert past values as (type, id, property, set at ms, value), e.g. a seed's earlier edits."""
        with self.engine.begin() as conn:
            conn.execute(versions.insert(), [{"type": t, "id": i, "property": p, "set_ms": ms, "value": json.dumps(v)}
                                            for t, i, p, ms, v in rows])

    def history(self, type_: str, ids: Sequence[int], keys: Sequence[str]) -> dict[tuple[int, str], list[tuple[int, Any]]]:
        """(id, property) -> [(set at ms, value)], newest first, for the properties that ever changed."""
        query = (sa.select(versions).where(versions.c.type == type_, versions.c.id.in_(ids), versions.c.property.in_(keys))
                 .order_by(versions.c.id, versions.c.property, versions.c.set_ms.desc()))
        found: dict[tuple[int, str], list[tuple[int, Any]]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                found.setdefault((row.id, row.property), []).append((row.set_ms, json.loads(row.value)))
        return found

    def get(self, type_: str, id_: int, archived: bool = False) -> Record | None:
        """One record (an archived one only when asked for), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(objects).where(objects.c.type == type_, objects.c.id == id_,
                                                        objects.c.archived.is_(archived))).first()
        return None if row is None else _record(row)

    def archive(self, type_: str, id_: int, now_ms: int) -> Record | None:
        """Archive a live record (a vendor's soft delete: it leaves lists and searches); None if absent."""
        with self.engine.begin() as conn:
            done = conn.execute(objects.update().where(
                objects.c.type == type_, objects.c.id == id_, objects.c.archived.is_(False)
            ).values(archived=True, updated_ms=now_ms)).rowcount
        return self.get(type_, id_, archived=True) if done else None

    def count(self, type_: str, since_ms: int | None = None) -> int:
        """How many records of a type (modified at or after `since_ms` if given)."""
        query = sa.select(sa.func.count()).select_from(objects).where(objects.c.type == type_)
        if since_ms is not None:
            query = query.where(objects.c.updated_ms >= since_ms)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def after_id(self, type_: str, after: int, limit: int, archived: bool = False) -> list[Record]:
        """Up to `limit` live (or archived) records with ids above `after`, in id order (keyset pagination)."""
        query = (
            sa.select(objects)
            .where(objects.c.type == type_, objects.c.id > after, objects.c.archived.is_(archived))
            .order_by(objects.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def page(
        self,
        type_: str,
        offset: int,
        limit: int,
        conditions: Sequence[sa.ColumnElement[bool]] = (),
        by_modified: bool = False,
        descending: bool = False,
    ) -> tuple[int, list[Record]]:
        """The total of live records matching and one offset page, ordered by id or by (modification time, id)."""
        where = [objects.c.type == type_, objects.c.archived.is_(False), *conditions]
        keys = [objects.c.updated_ms, objects.c.id] if by_modified else [objects.c.id]
        order = [k.desc() for k in keys] if descending else keys
        with self.engine.connect() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(objects).where(*where)).scalar() or 0)
            rows = conn.execute(sa.select(objects).where(*where).order_by(*order).offset(offset).limit(limit))
            return total, [_record(row) for row in rows]

    def enqueue(self, events: Sequence[dict[str, Any]], now: float) -> None:
        """Queue webhook events for delivery (unless `keep_events` is off: nobody subscribed)."""
        if events and self.keep_events:
            with self.engine.begin() as conn:
                conn.execute(outbox.insert(), [{"event": json.dumps(e), "attempts": 0, "next_at": now} for e in events])

    def due(self, now: float, limit: int = 50) -> list[tuple[int, dict[str, Any], int]]:
        """Undelivered events whose next attempt is due: (outbox id, event, attempts so far)."""
        query = (
            sa.select(outbox.c.id, outbox.c.event, outbox.c.attempts)
            .where(outbox.c.delivered.is_(False), outbox.c.next_at <= now)
            .order_by(outbox.c.next_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(row.id, json.loads(row.event), row.attempts) for row in conn.execute(query)]

    def delivered(self, outbox_id: int) -> None:
        """Mark an event delivered."""
        with self.engine.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == outbox_id).values(delivered=True))

    def retry_at(self, outbox_id: int, attempts: int, next_at: float) -> None:
        """Record a failed attempt and when to try again."""
        with self.engine.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == outbox_id).values(attempts=attempts, next_at=next_at))


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
