"""A SQL consumer's table is created from the canonical model and the mapping, and migrated when
the mapping grows: on SQLite and on the local PostgreSQL, through the real engine."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from integration_project import Api, Binding, DataObject, Landscape, System
from integration_project.connectors.sql import Sql
from integration_project.runtime import Store, deliver, ingest
from tests.runtime.memory import Memory, system

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class Account(BaseModel):
    id: str
    email: str
    balance: Decimal
    active: bool
    tags: list[str] = []
    opened_at: datetime
    note: str | None = None


def _postgres_or_skip() -> str:
    try:
        sa.create_engine(POSTGRES).connect().close()
    except sa.exc.OperationalError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    return POSTGRES


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'reporting.sqlite'}" if request.param == "sqlite" else _postgres_or_skip()
    yield url


def landscape(url: str, table: str, mapping: dict[str, str]) -> Landscape:
    account = DataObject(name="account", model=Account, owner="team:finance", identity_key="id",
                         description="Accounts.")
    crm = system("crm", Binding(object="account", role="source", purpose="Sales opens accounts.",
                                resource="accounts", mapping={f: f for f in Account.model_fields}))
    reporting = System(name="reporting", title="Reporting", vendor="SQL", kind="postgres", owners=["team:data"],
                       description="Reports.", api=Api(connector="sql", base_url=url, version="1"),
                       bindings=[Binding(object="account", role="consumer", purpose="Reports on accounts.",
                                         resource=table, cron="0 * * * *", mapping=mapping)])
    return Landscape(systems={"crm": crm, "reporting": reporting}, objects={"account": account}).validate()


def test_a_missing_table_is_created_and_a_grown_mapping_adds_its_column(database, tmp_path):
    table = f"accounts_{uuid.uuid4().hex[:8]}"
    crm = Memory("a")
    for i in (1, 2):
        crm.put("accounts", {"id": f"a{i}", "email": f"a{i}@example.com", "balance": "12.50", "active": True,
                             "tags": ["vip"], "opened_at": "2026-01-02T03:04:05+00:00"})
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    first = landscape(database, table, {"id": "account_id", "email": "email", "balance": "balance",
                                        "active": "active", "tags": "tags", "opened_at": "opened_at"})
    (flow,) = first.flows()
    ingest(crm, flow.ingest, store, "run-1")
    sql = Sql(first.systems["reporting"].api)
    try:
        assert deliver(sql, flow, store, "run-1").written == 2
        columns = {c["name"]: c for c in sa.inspect(sql.engine).get_columns(table)}
        assert sa.inspect(sql.engine).get_pk_constraint(table)["constrained_columns"] == ["account_id"]
        assert isinstance(columns["balance"]["type"], sa.Numeric)
        assert isinstance(columns["opened_at"]["type"], sa.DateTime)
        with sql.engine.connect() as conn:
            rows = conn.execute(sa.text(f'SELECT account_id, balance FROM "{table}" ORDER BY account_id')).all()
        assert [(r[0], Decimal(str(r[1]))) for r in rows] == [("a1", Decimal("12.50")), ("a2", Decimal("12.50"))]
        crm.put("accounts", {"id": "a1", "note": "moved to EU"})
        grown = landscape(database, table, {**first.flows()[0].binding.mapping, "note": "remark"})
        (flow,) = grown.flows()
        ingest(crm, flow.ingest, store, "run-2")
        sql.close()
        sql = Sql(grown.systems["reporting"].api)
        assert deliver(sql, flow, store, "run-2").written == 1  # the changed one, into the added column
        with sql.engine.connect() as conn:
            notes = dict(conn.execute(sa.text(f'SELECT account_id, remark FROM "{table}"')).all())
        assert notes == {"a1": "moved to EU", "a2": None}
    finally:
        with sql.engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
        sql.close()


def test_a_sql_consumer_mapped_to_a_dotted_path_is_refused_at_check_time():
    from integration_project import DeclarationError

    with pytest.raises(DeclarationError) as info:
        landscape("sqlite://", "accounts", {"id": "account_id", "email": "contact.email"})
    (problem,) = info.value.problems
    assert (problem.declaration, problem.field) == ("system reporting", "bindings[0].mapping.email")
    assert "cannot be created or migrated" in problem.message
