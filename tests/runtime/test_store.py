"""The hub store on SQLite and PostgreSQL: cursors with records, streamed deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_project.runtime.engine import Stats, commit
from integration_project.runtime.store import Store, deliveries, dlq, hub_records
from tests.webhooks.conftest import postgres_schema_url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    else:
        for url in postgres_schema_url():
            yield Store(url)


def test_commit_writes_records_rejects_and_cursor_together(store):
    from integration_project import load_landscape

    leg = load_landscape("definitions").ingests()["customer"]
    good = {"id": "1", "updatedAt": "2026-01-01T00:00:00Z",
            "properties": {"email": "a@example.com", "firstname": "A", "lastname": "B", "country": "de"}}
    bad = {"id": "2", "updatedAt": "2026-01-01T00:00:00Z",
           "properties": {"email": "not an email", "firstname": "C", "lastname": "D", "country": "FR"}}
    stats = Stats()
    commit([good, bad], leg, store, "run-1", stats, cursor="42")
    assert (stats.read, stats.valid, stats.rejected, stats.written) == (2, 1, 1, 1)
    assert store.cursor("crm/customer") == "42"
    assert [r["record_id"] for r in store.rows(hub_records)] == ["1"]
    assert [(r["record_id"], r["stage"]) for r in store.rows(dlq)] == [("2", "validate")]
    assert "email" in store.rows(dlq)[0]["reason"] and "not an email" not in store.rows(dlq)[0]["reason"]

    again = Stats()
    commit([good, bad], leg, store, "run-2", again, cursor="43")
    assert (again.written, again.unchanged) == (0, 1)
    assert store.rows(dlq)[0]["attempts"] == 2 and len(store.rows(dlq)) == 1  # one entry, counted twice


def test_undelivered_streams_in_batches_and_skips_confirmed_versions(store):
    from integration_project.model.mapping import content_hash
    from integration_project.runtime.store import HubRecord

    records = [HubRecord(f"{i:05}", {"id": f"{i:05}"}, content_hash({"id": f"{i:05}"})) for i in range(1234)]
    with store.transaction() as conn:
        store.upsert_hub(conn, "customer", "crm", records, [])
    store.mark_delivery("billing", "customer", "00007", content_hash({"id": "00007"}), "done", "cus_7")
    store.mark_delivery("billing", "customer", "00008", "stale", "done", "cus_8")
    seen = [rec.record_id for rec, _ in store.undelivered("billing", "customer", batch=100)]
    assert len(seen) == 1233 and "00007" not in seen and "00008" in seen
    assert seen == sorted(seen)
    assert store.external_id("billing", "customer", "00007") == "cus_7"
    assert store.record_ids("billing", "customer", {"cus_7", "cus_x"}) == {"cus_7": "00007"}
    assert len(store.rows(deliveries)) == 2


def test_dead_letters_in_bulk_count_attempts_like_one_by_one(store):
    def park(entries: list) -> int:
        with store.transaction() as conn:
            return store.dead_letter_many(conn, flow="f", obj="customer", stage="validate", run_id="r",
                                          entries=entries)

    assert park([("1", {"v": 1}, "email: bad"), ("1", {"v": 2}, "email: bad"), (None, {}, "id: missing")]) == 2
    assert park([("1", {"v": 3}, "email: bad"), ("1", {}, "country: bad"), (None, {}, "id: missing")]) == 1
    rows = {(r["record_id"], r["reason"]): r for r in store.rows(dlq, flow="f")}
    assert {k: r["attempts"] for k, r in rows.items()} == {
        ("1", "email: bad"): 3, ("1", "country: bad"): 1, (None, "id: missing"): 2}
    assert rows[("1", "email: bad")]["payload"] == '{"v": 3}'


def _commit_rounds(url: str, start, rounds: int, size: int, errors) -> None:
    """One run's process: commit the same new contacts as the other process, round after round."""
    from integration_project import load_landscape

    leg, store = load_landscape("definitions").ingests()["customer"], Store(url)
    for n in range(rounds):
        records = [{"id": f"{n}-{i}", "updatedAt": "2026-01-01T00:00:00Z", "properties": {
            "email": f"r{n}.{i}@example.com", "firstname": "A", "lastname": "B", "country": "DE"}} for i in range(size)]
        start.wait()  # both processes commit round n at once
        try:
            commit(records, leg, store, f"run-{n}", Stats())
        except Exception as error:  # noqa: BLE001 - reported to the test
            errors.put(f"round {n}: {type(error).__name__}: {str(error)[:200]}")


def test_two_runs_ingesting_the_same_records_at_once_both_succeed(store):
    """Two flows of one object ingest it concurrently (each flow's run ingests): neither may fail on
    the other's rows, and each record is in the hub once."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    start, errors, rounds, size = context.Barrier(2), context.Queue(), 15, 50
    runs = [context.Process(target=_commit_rounds, args=(store.url, start, rounds, size, errors)) for _ in range(2)]
    for process in runs:
        process.start()
    for process in runs:
        process.join(timeout=300)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found
    assert [p.exitcode for p in runs] == [0, 0]
    ids = [r["record_id"] for r in store.rows(hub_records)]
    assert len(ids) == len(set(ids)) == rounds * size
