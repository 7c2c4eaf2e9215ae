"""The durable inbox on SQLite and PostgreSQL: dedupe, batches for the sensor, stats, purge."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from integration_project.runtime import Store
from integration_project.runtime.schema import VERSION_TABLE
from integration_project.webhooks.inbox import Inbox, inbox_table
from integration_project.webhooks.signatures import Event
from tests.runtime.test_schema import HEAD
from tests.webhooks.conftest import follow


@pytest.fixture
def inbox(inbox_url: str) -> Iterator[Inbox]:
    """An inbox on an empty database."""
    inbox = Inbox(inbox_url)
    yield inbox
    inbox.close()


def event(n: int, kind: str = "customer.updated") -> Event:
    """Event number n."""
    return Event(f"evt_{n}", kind, f'{{"id": "evt_{n}", "name": "Zoë"}}'.encode())


def test_add_stores_and_a_repeat_is_skipped(inbox: Inbox) -> None:
    """The first delivery is stored; the same (system, event_id) again stores nothing."""
    [first] = inbox.add("billing", [event(1)], {"webhook-id": "evt_1"})
    assert inbox.add("billing", [event(1)]) == []
    [row] = inbox.pending("billing")
    assert (row.id, row.event_id, row.event_type, row.headers) == (
        first,
        "evt_1",
        "customer.updated",
        {"webhook-id": "evt_1"},
    )
    assert row.payload() == {"id": "evt_1", "name": "Zoë"}
    assert row.received_at.tzinfo is not None and row.processed_at is None


def test_same_event_id_in_two_systems_are_two_events(inbox: Inbox) -> None:
    """Dedupe is per system: vendors' id spaces are independent."""
    assert len(inbox.add("billing", [event(1)])) == 1
    assert len(inbox.add("crm", [event(1)])) == 1


def test_a_batch_with_some_repeats_stores_only_the_new(inbox: Inbox) -> None:
    """In one delivery, already-seen events are skipped and the rest stored (also a repeat inside the batch)."""
    inbox.add("crm", [event(1), event(2)])
    new = inbox.add("crm", [event(2), event(3), event(3), event(4)])
    assert len(new) == 2
    assert [r.event_id for r in inbox.pending("crm")] == ["evt_1", "evt_2", "evt_3", "evt_4"]


def test_pending_reads_batches_after_a_cursor_and_skips_processed(inbox: Inbox) -> None:
    """A sensor reads `limit` rows after its cursor, oldest first, and never sees processed rows."""
    ids = [inbox.add("shop", [event(n)])[0] for n in range(10)]
    inbox.add("crm", [event(99)])
    batch = inbox.pending("shop", after_id=0, limit=4)
    assert [r.id for r in batch] == ids[:4]
    assert [r.id for r in inbox.pending("shop", after_id=batch[-1].id, limit=4)] == ids[4:8]
    assert inbox.mark_processed([r.id for r in batch]) == 4
    assert inbox.mark_processed([r.id for r in batch]) == 0
    assert inbox.mark_processed([]) == 0
    assert [r.id for r in inbox.pending("shop", limit=100)] == ids[4:]
    fetched = inbox.get([ids[5], ids[0]])  # a run handed ids reads them, processed or not
    assert [(r.id, r.processed_at is not None) for r in fetched] == [(ids[0], True), (ids[5], False)]


def test_stats_depth_and_oldest_age_per_system(inbox: Inbox) -> None:
    """Depth counts unprocessed events; age is that of the oldest unprocessed; idle systems are listed."""
    first = inbox.add("shop", [event(1)])
    inbox.add("shop", [event(2)])
    inbox.add("crm", [event(3)])
    stats = inbox.stats(systems=["billing"])
    assert list(stats) == ["billing", "crm", "shop"]
    assert stats["shop"].depth == 2 and stats["crm"].depth == 1
    assert stats["billing"].depth == 0 and stats["billing"].oldest_age_seconds is None
    assert 0 <= (stats["shop"].oldest_age_seconds or -1) < 60
    inbox.mark_processed(first)
    with inbox._engine.begin() as connection:  # age one pending event by an hour
        connection.execute(
            sa.update(inbox_table)
            .where(inbox_table.c.event_id == "evt_2")
            .values(received_at=datetime.now(UTC) - timedelta(hours=1))
        )
    shop = inbox.stats()["shop"]
    assert shop.depth == 1
    assert 3590 < (shop.oldest_age_seconds or 0) < 3700
    assert shop.last_received_at is not None


def test_purge_keeps_recent_and_unprocessed_and_never_reuses_ids(inbox: Inbox) -> None:
    """Purge removes only old processed rows; a later event still gets a higher id."""
    old_done, old_pending, recent_done = (inbox.add("shop", [event(n)])[0] for n in range(3))
    inbox.mark_processed([old_done, recent_done])
    with inbox._engine.begin() as connection:
        connection.execute(
            sa.update(inbox_table)
            .where(inbox_table.c.id.in_([old_done, old_pending, recent_done]))
            .values(received_at=datetime.now(UTC) - timedelta(days=8))
        )
        connection.execute(
            sa.update(inbox_table).where(inbox_table.c.id == recent_done).values(received_at=datetime.now(UTC))
        )
    with pytest.raises(ValueError, match="twice the signature window"):
        inbox.purge(default=timedelta(minutes=9))
    assert inbox.purge() == {"shop": 1}
    assert inbox.purge() == {"shop": 0}
    inbox.mark_processed([old_pending])
    with inbox._engine.begin() as connection:
        connection.execute(
            sa.update(inbox_table)
            .where(inbox_table.c.id == recent_done)
            .values(received_at=datetime.now(UTC) - timedelta(days=8))
        )
    assert inbox.purge() == {"shop": 2}
    [newest] = inbox.add("shop", [event(3)])
    assert newest > recent_done


def age(inbox: Inbox, ids: list[int], days: float) -> None:
    """Backdate events: received `days` ago."""
    with inbox._engine.begin() as connection:
        connection.execute(sa.update(inbox_table).where(inbox_table.c.id.in_(ids))
                           .values(received_at=datetime.now(UTC) - timedelta(days=days)))


def test_purge_honours_each_systems_retention_and_never_deletes_unprocessed(
        inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per system its own retention (the default for one not listed), a chunk at a time; a dry
    run counts the same and deletes nothing; unprocessed events stay however old."""
    monkeypatch.setattr("integration_project.webhooks.inbox._ROWS_PER_PURGE", 2)
    done = {s: inbox.add(s, [event(n) for n in range(5)]) for s in ("shop", "crm", "legacy")}
    waiting = {s: inbox.add(s, [event(n) for n in range(5, 8)]) for s in done}
    inbox.mark_processed(i for ids in done.values() for i in ids)
    for ids in [*done.values(), *waiting.values()]:
        age(inbox, ids, 10)
    age(inbox, waiting["shop"], 400)
    retention = {"shop": timedelta(days=2), "crm": timedelta(days=30)}  # legacy: the default week
    assert inbox.purge(retention, dry_run=True) == {"crm": 0, "legacy": 5, "shop": 5}
    assert inbox.stats()["shop"].depth == 3 and len(inbox.get(range(1, 100))) == 24
    assert inbox.purge(retention) == {"crm": 0, "legacy": 5, "shop": 5}
    left = inbox.get(range(1, 100))
    assert sorted(r.id for r in left) == sorted(done["crm"] + [i for ids in waiting.values() for i in ids])
    assert {s: v.depth for s, v in inbox.stats().items()} == {"crm": 3, "legacy": 3, "shop": 3}
    assert inbox.purge(retention) == {"crm": 0, "legacy": 0, "shop": 0}


def test_concurrent_writers_never_let_a_cursor_skip_a_row(inbox: Inbox, inbox_url: str) -> None:
    """While four writers (each its own Inbox, as receiver processes are) add events, a reader
    advancing its cursor past what it saw still sees every row."""
    writers_done = threading.Event()

    def write(worker: int) -> None:
        own = Inbox(inbox_url)
        for n in range(60):
            own.add("shop", [event(worker * 1000 + n)])
        own.close()

    reader, seen = follow(inbox_url, "shop", writers_done)
    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    reader.join(timeout=60)
    assert len(seen) == 240
    assert seen == sorted(seen) == [r.id for r in inbox.pending("shop", limit=1000)]


def test_inbox_refuses_other_databases() -> None:
    """Only SQLite and PostgreSQL are supported (the dedupe relies on ON CONFLICT)."""
    with pytest.raises(ValueError, match="SQLite or PostgreSQL"):
        Inbox("mysql+pymysql://nobody@127.0.0.1/none")


STARTING = 10  # processes opening the inbox of one fresh database at once


def _open_inbox(url: str, n: int, start: Barrier, results: Queue) -> None:
    """In a forked process: wait for the others, open the inbox (odd ones the hub store first, as a
    Dagster run does), store event n; report its id or the error."""
    try:
        start.wait(timeout=60)
        if n % 2:
            Store(url)
        inbox = Inbox(url)
        results.put((n, inbox.add("shop", [event(n)])))
    except BaseException as error:  # noqa: BLE001 - reported to the test
        results.put((n, repr(error)))


def test_processes_starting_together_on_a_fresh_database_all_get_an_inbox(inbox_url: str) -> None:
    """Receivers, sensors and runs may all make the schema at once: every process gets a working
    inbox, and the database ends with one inbox table at the latest revision."""
    context = multiprocessing.get_context("fork")  # the imports are done once, so the processes race on the schema
    start, results = context.Barrier(STARTING), context.Queue()
    processes = [context.Process(target=_open_inbox, args=(inbox_url, n, start, results)) for n in range(STARTING)]
    for process in processes:
        process.start()
    try:
        outcomes = dict(results.get(timeout=120) for _ in processes)
    finally:
        for process in processes:
            process.join(timeout=30)
            process.kill()
    assert {n: type(ids) for n, ids in outcomes.items()} == {n: list for n in range(STARTING)}, outcomes
    inbox = Inbox(inbox_url)
    stored = inbox.pending("shop", limit=100)
    assert sorted(r.event_id for r in stored) == sorted(f"evt_{n}" for n in range(STARTING))
    assert sorted(r.id for r in stored) == sorted(i for ids in outcomes.values() for i in ids)
    with inbox._engine.connect() as connection:
        tables = connection.execute(sa.text(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'webhook_inbox'"
            if connection.dialect.name == "sqlite" else
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'webhook_inbox'"
            " AND table_schema = current_schema()"
        )).scalar_one()
        versions = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    inbox.close()
    assert tables == 1
    assert versions == [HEAD]


def test_inbox_survives_postgres_dropping_its_connections(postgres_url: str) -> None:
    """After the server ends every inbox connection (a restart, a failover), the next add still commits."""
    name = f"inbox_{uuid.uuid4().hex[:8]}"
    inbox = Inbox(f"{postgres_url}&application_name={name}")
    inbox.add("shop", [event(1)])
    admin = sa.create_engine(postgres_url)
    with admin.begin() as connection:
        ended = connection.execute(
            sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": name},
        ).scalar_one()
    admin.dispose()
    assert ended >= 1
    assert len(inbox.add("shop", [event(2)])) == 1
    inbox.close()
