"""One schema for the hub store and the webhook inbox, by the Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import alembic.command
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from integration_project.runtime import schema
from integration_project.runtime.store import metadata as store_metadata
from integration_project.webhooks.inbox import Inbox, inbox_table
from integration_project.webhooks.inbox import metadata as inbox_metadata
from integration_project.webhooks.signatures import Event
from tests.webhooks.conftest import postgres_schema_url


HEAD = ScriptDirectory(str(schema.MIGRATIONS)).get_current_head()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.sqlite'}"
    else:
        yield from postgres_schema_url()


def declared() -> sa.MetaData:
    """Every table the code declares: the hub store's and the inbox's."""
    both = sa.MetaData()
    for table in [*store_metadata.tables.values(), *inbox_metadata.tables.values()]:
        table.to_metadata(both)
    return both


def schema_diff(engine: sa.Engine) -> list:
    """What Alembic finds between the database and the declared tables."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": schema.VERSION_TABLE})
        return compare_metadata(context, declared())


def revision(engine: sa.Engine) -> list[str]:
    """The revisions recorded in the database."""
    with engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT version_num FROM {schema.VERSION_TABLE}")).scalars().all()


def pending_index(engine: sa.Engine) -> tuple[list[str], str]:
    """The columns and the condition of the inbox's partial index."""
    [index] = [i for i in sa.inspect(engine).get_indexes("webhook_inbox") if i["name"] == "ix_webhook_inbox_pending"]
    [where] = [str(value) for key, value in index.get("dialect_options", {}).items() if key.endswith("_where")]
    return index["column_names"], where.lower().strip("()")


def upgrade_to(engine: sa.Engine, target: str) -> None:
    """Migrate the database to an earlier revision, as an older release left it."""
    config = schema._config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, target)


def test_migrations_build_exactly_the_declared_schema(url: str) -> None:
    """Opening the inbox alone migrates the whole database to the tables the code declares."""
    Inbox(url).close()
    engine = sa.create_engine(url)
    assert schema_diff(engine) == []
    assert revision(engine) == [HEAD] == ["0006"]
    assert pending_index(engine) == (["system", "id"], "processed_at is null")
    engine.dispose()


@pytest.mark.parametrize("hub_store", ["at 0003", "absent"])
def test_a_database_whose_inbox_made_its_own_table_upgrades_and_keeps_its_events(url: str, hub_store: str) -> None:
    """Before revision 0004 the inbox ran create_all, beside a hub store at 0003 or alone: the
    upgrade keeps the table and its events and records the latest revision."""
    engine = sa.create_engine(url)
    if hub_store == "at 0003":
        upgrade_to(engine, "0003")
    inbox_metadata.create_all(engine)  # what the inbox did before revision 0004
    with engine.begin() as connection:
        connection.execute(inbox_table.insert().values(
            system="shop", event_id="evt_old", event_type="order.created", received_at=sa.func.now(),
            headers={}, body="{}"))
    inbox = Inbox(url)
    assert [r.event_id for r in inbox.pending("shop")] == ["evt_old"]
    assert inbox.add("shop", [Event("evt_new", "order.created", b"{}")]) == [2]
    assert schema_diff(engine) == []
    assert revision(engine) == ["0006"]
    inbox.close()
    engine.dispose()


def test_a_store_made_before_the_inbox_joined_the_migrations_gets_its_table(tmp_path: Path) -> None:
    """A hub store at revision 0003 without an inbox table gets it, with SQLite's AUTOINCREMENT."""
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    engine = sa.create_engine(url)
    upgrade_to(engine, "0003")
    assert not sa.inspect(engine).has_table("webhook_inbox")
    Inbox(url).close()
    with engine.connect() as connection:
        sql = connection.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'webhook_inbox'")).scalar_one()
    assert "AUTOINCREMENT" in sql and "uq_webhook_inbox_event" in sql
    assert revision(engine) == ["0006"]
    engine.dispose()
