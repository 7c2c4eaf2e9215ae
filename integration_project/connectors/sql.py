"""SQL databases (SQLAlchemy): tables read by a cursor column, rows written by primary-key upsert.

A source resource names the table and its change column, `ITM_MST?cursor=CHG_TS`; a consumer
resource names the table, created from the canonical model and the mapping when absent (our id's
column its primary key), a mapped column it lacks added. Tables are reflected, so values are
converted to each column's type.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin
from urllib.parse import parse_qs

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, NoSuchTableError, OperationalError

from integration_project.connectors.base import Connector, Ours, Page, Patterns
from integration_project.connectors.http import retrying
from integration_project.errors import PermanentError, TransientError
from integration_project.model import Api

PAGE = 500


def _python(column: sa.Column[Any], value: Any) -> Any:
    """A JSON or text value as the column's Python type (dates, times, decimals)."""
    if value is None or value == "":
        return None
    kind = column.type
    if isinstance(kind, sa.DateTime) and isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment if kind.timezone else moment.replace(tzinfo=None)
    if isinstance(kind, sa.Date) and isinstance(value, str):
        return date.fromisoformat(value[:10])
    if isinstance(kind, sa.Numeric) and not isinstance(value, Decimal):
        return Decimal(str(value))
    return value


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value) \
        if isinstance(value, Decimal) else value


def column_type(annotation: Any) -> sa.types.TypeEngine[Any]:
    """The column type of a canonical field's annotation (Optional unwrapped; text when unsure)."""
    if get_origin(annotation) in (Union, UnionType):
        kinds = [a for a in get_args(annotation) if a is not NoneType]
        annotation = kinds[0] if len(kinds) == 1 else str
    if get_origin(annotation) in (list, dict) or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return sa.JSON()
    for kind, column in ((bool, sa.Boolean()), (int, sa.BigInteger()), (float, sa.Float()),
                         (Decimal, sa.Numeric()), (datetime, sa.DateTime(timezone=True)), (date, sa.Date())):
        if isinstance(annotation, type) and issubclass(annotation, kind):
            return column
    return sa.Text()


class Sql(Connector):
    """Any table with a change column out, any table with a primary key in."""

    extracts = Patterns({"*[?]cursor=*"})
    loads = Patterns({"[A-Za-z_]*"})

    @staticmethod
    def unsupported(resource: str, verb: str) -> str:
        """Why a resource name does not fit (see `extracts` and `loads`)."""
        if verb == "extract":
            return f"cursor column missing: name the change column, {resource.partition('?')[0]}?cursor=<column>"
        return "expected a table name"

    def __init__(self, api: Api):
        self.engine = sa.create_engine(api.url())
        self.metadata = sa.MetaData()
        self._reflecting = threading.Lock()  # the engine loads from several threads into one MetaData

    def _table(self, name: str) -> sa.Table:
        try:
            with self._reflecting:
                return sa.Table(name, self.metadata, autoload_with=self.engine)
        except NoSuchTableError:
            raise PermanentError(f"no table {name!r} in the database") from None
        except OperationalError as exc:
            raise TransientError(f"database unreachable: {type(exc.orig).__name__}") from exc

    def prepare(self, resource: str, model: type[BaseModel], mapping: dict[str, str], key: str) -> None:
        """Create the table from the mapped canonical fields (our id's column the primary key), or
        add the mapped columns an existing table lacks (nullable: its rows have no value yet)."""
        columns = {column: column_type(model.model_fields[field].annotation)
                   for field, column in mapping.items() if field in model.model_fields}
        try:
            existing = self._table(resource)
        except PermanentError:  # no such table: ours to create
            if isinstance(columns.get(mapping[key]), sa.Text):  # a key needs a bounded length (MySQL)
                columns[mapping[key]] = sa.String(255)
            table = sa.Table(resource, sa.MetaData(), *(
                sa.Column(name, kind, primary_key=name == mapping[key]) for name, kind in columns.items()))
            retrying()(self._create, table)
            return
        missing = {name: kind for name, kind in columns.items() if name not in existing.c}
        if missing:
            with self.engine.begin() as conn:
                for name, kind in missing.items():
                    column = sa.Column(name, kind)
                    conn.execute(sa.text(f"ALTER TABLE {self._quote(existing.name)} ADD COLUMN "
                                         f"{self._quote(name)} {column.type.compile(self.engine.dialect)}"))
            with self._reflecting:
                self.metadata.remove(existing)

    def _create(self, table: sa.Table) -> None:
        try:
            table.create(self.engine, checkfirst=True)
        except OperationalError as exc:
            raise TransientError(f"{table.name}: {type(exc.orig).__name__}") from exc

    def _quote(self, name: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(name)

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Rows in (change column, primary key) order after the cursor; each page's cursor is safe."""
        name, _, query = resource.partition("?")
        table = self._table(name)
        changed = table.c[parse_qs(query)["cursor"][0]]
        keys = list(table.primary_key.columns)
        after = json.loads(since) if since else None
        while True:
            select = sa.select(table).order_by(changed, *keys).limit(PAGE)
            if after is not None:
                value = _python(changed, after[0])
                select = select.where(sa.or_(changed > value, sa.and_(
                    changed == value, sa.tuple_(*keys) > sa.tuple_(*(sa.literal(k) for k in after[1])))))
            with self.engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(select).mappings()]
            if not rows:
                return
            last = rows[-1]
            after = [_json(last[changed.name]), [_json(last[k.name]) for k in keys]]
            yield Page(rows, json.dumps(after))
            if len(rows) < PAGE:
                return

    def scan(self, resource: str) -> Iterator[dict[str, Any]]:
        """Every row; a table we load (named without a change column) read whole, in key order."""
        name, _, query = resource.partition("?")
        if "cursor" in parse_qs(query):
            yield from super().scan(resource)
            return
        table = self._table(name)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns)).mappings()]
        yield from rows

    def normal(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        """Values as the table's columns hold them (dates, times, decimals), as `upsert` writes them."""
        table = self._table(resource.partition("?")[0])
        return {k: _python(table.c[k], v) if k in table.c else v for k, v in record.items()}

    def index(self, resource: str, id_path: str) -> dict[str, str]:
        """Our id (the column `id_path`) -> the row's primary key."""
        table = self._table(resource)
        key = self._key(table)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c[id_path], key)).all()
        return {str(ours): str(pk) for ours, pk in rows if ours is not None}

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """UPDATE the row by primary key, INSERT it when absent; returns the key."""
        table = self._table(resource)
        key = self._key(table)
        unknown = sorted(set(payload) - set(table.c.keys()))
        if unknown:
            raise PermanentError(f"{resource} has no column {', '.join(unknown)}")
        values = {name: _python(table.c[name], value) for name, value in payload.items()}
        pk = external_id if external_id is not None else values.get(key.name)
        if pk is None:
            raise PermanentError(f"{resource}: no value for the primary key {key.name}")
        values[key.name] = _python(key, pk)
        # retried freely: UPDATE, else INSERT, in one transaction writes the row once whatever came before
        retrying()(self._write, table, key, values)
        return str(values[key.name])

    def _write(self, table: sa.Table, key: sa.Column[Any], values: dict[str, Any]) -> None:
        try:
            with self.engine.begin() as conn:
                if not conn.execute(sa.update(table).where(key == values[key.name]).values(**values)).rowcount:
                    conn.execute(sa.insert(table).values(**values))
        except OperationalError as exc:  # locked, gone away: worth another try
            raise TransientError(f"{table.name}: {type(exc.orig).__name__}") from exc
        except DBAPIError as exc:  # constraints, bad values: the row itself is wrong
            raise PermanentError(f"{table.name}: rejected by the database: {str(exc.orig)[:200]}") from exc

    @staticmethod
    def _key(table: sa.Table) -> sa.Column[Any]:
        keys = list(table.primary_key.columns)
        if len(keys) != 1:
            raise PermanentError(f"{table.name}: upserts need a single-column primary key")
        return keys[0]

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()
