"""The runtime's steps on in-memory systems: ingest, deliver, the checks and inbox marking, in
milliseconds, through the real engine and a real hub store (SQLite)."""

from __future__ import annotations

import json

import pytest

from integration_project.model import Flow
from integration_project.runtime import Store, checks, deliver, ingest
from integration_project.runtime.events import Covered, mark_processed
from integration_project.runtime.store import dlq, hub_records, ledger
from integration_project.webhooks import Inbox
from integration_project.webhooks.signatures import Event
from tests.runtime.memory import Memory, billing_landscape


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")


@pytest.fixture
def landscape():
    return billing_landscape()


def crm_with(*emails: str) -> Memory:
    crm = Memory("c")
    for i, email in enumerate(emails, 1):
        crm.put("contacts", {"id": f"c{i}", "email": email})
    return crm


def test_ingest_commits_the_valid_parks_the_invalid_and_moves_the_cursor(store, landscape):
    leg = landscape.ingests()["customer"]
    crm = crm_with("ada@example.com", "bob@example.com")
    crm.put("contacts", {"id": "c3"})  # no email: invalid
    stats = ingest(crm, leg, store, "run-1")
    assert (stats.read, stats.valid, stats.rejected, stats.new_rejects) == (3, 2, 1, 1)
    assert sorted(r["record_id"] for r in store.rows(hub_records, object="customer")) == ["c1", "c2"]
    (parked,) = store.rows(dlq, flow=leg.name)
    assert parked["record_id"] == "c3" and parked["stage"] == "validate" and "email" in parked["reason"]
    assert store.cursor(leg.cursor_key) == "3"

    again = ingest(crm, leg, store, "run-2")  # nothing changed since the cursor
    assert (again.read, again.written) == (0, 0)


def test_a_second_record_with_the_same_email_is_parked_as_a_duplicate(store, landscape):
    leg = landscape.ingests()["customer"]
    stats = ingest(crm_with("ada@example.com", "ADA@example.com "), leg, store, "run-1")
    assert (stats.valid, stats.rejected) == (1, 1)
    assert store.rows(dlq, flow=leg.name)[0]["reason"] == "email: duplicate of customer c1"


def test_deliver_sends_each_version_once_and_updates_in_place(store, landscape):
    (flow,) = landscape.flows()
    crm, billing = crm_with("ada@example.com", "bob@example.com"), Memory("cus_")
    ingest(crm, flow.ingest, store, "run-1")
    first = deliver(billing, flow, store, "run-1")
    assert first.written == 2 and [w[1] for w in billing.writes] == [None, None]  # two creates
    assert deliver(billing, flow, store, "run-2").written == 0  # a rerun sends nothing

    crm.put("contacts", {"id": "c1", "email": "ada@example.org"})
    ingest(crm, flow.ingest, store, "run-3")
    assert deliver(billing, flow, store, "run-3").written == 1
    resource, external, payload = billing.writes[-1]
    assert external == billing.index("customers", "metadata.ours")["c1"]  # an update, not a create
    assert payload == {"metadata": {"ours": "c1"}, "email": "ada@example.org"}
    assert len(billing.records["customers"]) == 2


def test_records_outside_the_binding_filter_are_skipped(store, landscape):
    (flow,) = landscape.flows()
    only_ada = Flow(flow.ingest, flow.consumer, flow.binding.model_copy(update={"where": {"email": ["ada@example.com"]}}))
    ingest(crm_with("ada@example.com", "bob@example.com"), flow.ingest, store, "run-1")
    billing = Memory("cus_")
    stats = deliver(billing, only_ada, store, "run-1")
    assert (stats.written, stats.skipped) == (1, 1)
    assert [p["email"] for _, _, p in billing.writes] == ["ada@example.com"]
    assert only_ada.admits({"email": "ada@example.com"}) and not only_ada.admits({"email": "bob@example.com"})


def test_a_consumers_refusal_is_dead_lettered_with_its_reason(store, landscape):
    from integration_project.errors import PermanentError

    class Refusing(Memory):
        def upsert(self, resource, external_id, payload, ours=None):
            if payload["email"].startswith("bob"):
                raise PermanentError("POST /customers: HTTP 400: email rejected")
            return super().upsert(resource, external_id, payload, ours)

    (flow,) = landscape.flows()
    ingest(crm_with("ada@example.com", "bob@example.com"), flow.ingest, store, "run-1")
    stats = deliver(Refusing("cus_"), flow, store, "run-1")
    assert (stats.written, stats.rejected) == (1, 1)
    (parked,) = store.rows(dlq, flow=flow.name)
    assert parked["record_id"] == "c2" and parked["stage"] == "load" and "HTTP 400" in parked["reason"]


def test_validity_counts_only_new_rejects_and_always_allows_one(store, landscape):
    leg = landscape.ingests()["customer"]  # max_invalid_share 5 %
    crm = crm_with(*[f"p{i}@example.com" for i in range(10)])
    for i in range(3):
        crm.put("contacts", {"id": f"bad{i}"})
    ingest(crm, leg, store, "run-1")
    (first,) = checks.validity(leg, store)
    assert (first.flow, first.read, first.new_rejects, first.passed) == (leg.name, 13, 3, False)

    crm.put("contacts", {"id": "bad0"})  # the same bad record read again is no new problem
    ingest(crm, leg, store, "run-2")
    (again,) = checks.validity(leg, store)
    assert (again.read, again.new_rejects, again.passed) == (1, 0, True)
    assert checks.Validity("f", read=2, new_rejects=1, limit=0.05).passed  # one bad record is no trend


def two_consumers(landscape) -> list[Flow]:
    """The customer flow to billing and the same object to a second consumer, support."""
    (flow,) = landscape.flows()
    support = flow.consumer.model_copy(update={"name": "support", "title": "Support"})
    return [flow, Flow(flow.ingest, support, flow.binding)]


@pytest.mark.parametrize("bad", [1, 3])
@pytest.mark.parametrize("first", [0, 1])
def test_flows_sharing_a_source_are_each_judged_on_the_records_they_take_in(store, landscape, bad, first):
    """Two consumers of one source: whichever flow's run reads the batch, the other's run (which reads
    nothing new) is judged on the same records and gets the same verdict; a later run of either is
    judged on what arrived since its own last run."""
    flows = two_consumers(landscape)
    leg = flows[0].ingest
    crm = crm_with(*[f"p{i}@example.com" for i in range(20)])
    for i in range(bad):
        crm.put("contacts", {"id": f"bad{i}"})
    order = [flows[first], flows[1 - first]]
    verdicts = []
    for flow in order:  # each run ingests, then is judged for its own flow
        ingest(crm, leg, store, f"run-{flow.name}")
        verdicts += checks.validity(leg, store, [flow])
    assert [(v.flow, v.read, v.new_rejects) for v in verdicts] == [(f.name, 20 + bad, bad) for f in order]
    assert [v.passed for v in verdicts] == [bad == 1] * 2  # 1 of 21 is within 5 %, 3 of 23 is not

    crm.put("contacts", {"id": "c1", "email": "ada@example.org"})
    ingest(crm, leg, store, "run-3")
    (later,) = checks.validity(leg, store, [order[0]])
    assert (later.read, later.new_rejects, later.passed) == (1, 0, True)
    (other,) = checks.validity(leg, store, [order[1]])
    assert (other.read, other.new_rejects) == (1, 0)  # what arrived since its own last run, read by another


def test_dead_letters_and_schema_drift_report_what_they_found(store, landscape):
    leg = landscape.ingests()["customer"]
    crm = crm_with("ada@example.com")
    crm.put("contacts", {"id": "c9"})
    ingest(crm, leg, store, "run-1")
    parked = checks.dead_letters(leg, store, parked_now=1)
    assert parked.open == 1 and not parked.passed

    now = checks.schema_signature(leg.object)
    assert checks.schema_drift(None, now).passed
    drift = checks.schema_drift([*now, "phone:<class 'str'>"], now)
    assert drift.removed == ["phone:<class 'str'>"] and drift.added == [] and not drift.passed


def test_reconciliation_names_what_the_consumer_lacks(store, landscape):
    (flow,) = landscape.flows()
    crm, billing = crm_with("ada@example.com", "bob@example.com"), Memory("cus_")
    ingest(crm, flow.ingest, store, "run-1")
    deliver(billing, flow, store, "run-1")
    assert checks.reconcile(flow, crm, billing, store).passed

    del billing.records["customers"][billing.index("customers", "metadata.ours")["c2"]]  # lost at billing
    crm.put("contacts", {"id": "c3", "email": "cy@example.com"})  # not synced yet
    found = checks.reconcile(flow, crm, billing, store)
    assert not found.passed
    assert (found.missing_in_hub, found.missing_in_consumer) == (["c3"], ["c2"])
    assert (found.source, found.hub, found.consumer) == (3, 2, 1)


class Ignoring(Memory):
    """A consumer that answers an update with success but keeps its old email (a write it ignores)."""

    def upsert(self, resource, external_id, payload, ours=None):
        if external_id is not None:
            payload = {k: v for k, v in payload.items() if k != "email"}
        return super().upsert(resource, external_id, payload, ours)


@pytest.mark.parametrize("ignores", [False, True])
def test_reconciliation_names_the_record_and_field_a_consumer_ignored(store, landscape, ignores):
    (flow,) = landscape.flows()
    crm, billing = crm_with("ada@example.com", "bob@example.com"), (Ignoring if ignores else Memory)("cus_")
    ingest(crm, flow.ingest, store, "run-1")
    deliver(billing, flow, store, "run-1")
    crm.put("contacts", {"id": "c1", "email": "ada@example.org"})
    ingest(crm, flow.ingest, store, "run-2")
    assert deliver(billing, flow, store, "run-2").written == 1  # confirmed by the consumer either way
    found = checks.reconcile(flow, crm, billing, store)
    assert (found.content_checkable, found.compared) == (True, 2)
    assert found.mismatched_in_consumer == (["c1:email"] if ignores else [])
    assert found.passed is not ignores
    assert (found.missing_in_consumer, found.mismatched_in_hub) == ([], [])


def test_a_consumer_changed_behind_our_back_fails_reconciliation(store, landscape):
    (flow,) = landscape.flows()
    crm, billing = crm_with("ada@example.com", "bob@example.com"), Memory("cus_")
    ingest(crm, flow.ingest, store, "run-1")
    deliver(billing, flow, store, "run-1")
    bob = billing.index("customers", "metadata.ours")["c2"]
    billing.records["customers"][bob]["email"] = "robert@example.com"  # edited at billing, not by us
    assert checks.reconcile(flow, crm, billing, store).mismatched_in_consumer == ["c2:email"]


def test_reconciliation_tells_a_lost_update_from_a_change_not_read_yet(store, landscape):
    """The source changed c1 after the last ingest: the next run reads it, no failure. Had the
    cursor moved past that change without the hub taking it, the update is lost: a failure naming it."""
    (flow,) = landscape.flows()
    crm, billing = crm_with("ada@example.com", "bob@example.com"), Memory("cus_")
    ingest(crm, flow.ingest, store, "run-1")
    deliver(billing, flow, store, "run-1")
    changed = crm.put("contacts", {"id": "c1", "email": "ada@example.org"})
    waiting = checks.reconcile(flow, crm, billing, store)
    assert (waiting.changed_since_read, waiting.mismatched_in_hub, waiting.passed) == (["c1"], [], True)

    with store.transaction() as conn:  # a cursor moved past the change, as a connector skipping it would
        store.set_cursor(conn, flow.ingest.cursor_key, str(changed["seq"]))
    lost = checks.reconcile(flow, crm, billing, store)
    assert (lost.changed_since_read, lost.mismatched_in_hub, lost.passed) == ([], ["c1:email"], False)


class Unlisted(Memory):
    """A system that keeps no records of ours to list."""

    def index(self, resource, id_path):
        return None


class FirstOnly(Ignoring):
    """A system that takes no change of a customer once given, and says so."""

    def takes_changes(self, resource):
        return resource != "customers"


@pytest.mark.parametrize("kind", [Unlisted, FirstOnly])
def test_a_consumer_that_keeps_no_records_of_ours_or_takes_no_change_is_compared_by_id_only(store, landscape, kind):
    (flow,) = landscape.flows()
    crm, billing = crm_with("ada@example.com"), kind("cus_")
    ingest(crm, flow.ingest, store, "run-1")
    deliver(billing, flow, store, "run-1")
    crm.put("contacts", {"id": "c1", "email": "ada@example.org"})
    ingest(crm, flow.ingest, store, "run-2")
    deliver(billing, flow, store, "run-2")
    found = checks.reconcile(flow, crm, billing, store)
    assert (found.content_checkable, found.compared, found.consumer, found.passed) == (False, 0, 1, True)


@pytest.mark.parametrize(("sent", "held", "equal"), [
    ("12.5", "12.50", True), (3, "3", True), ("", None, True), ({"a": 1}, {"a": 1, "theirs": 2}, True),
    ([{"sku": "A", "n": 2}], [{"sku": "A", "n": 2, "id": 9}], True), ([{"sku": "A", "price": 3}], [{"sku": "A"}], True),
    ([{"sku": "A", "n": 2}], [{"sku": "A", "n": 1}], False), ("ada@example.com", "ADA@example.com", False),
    ("12.5", "12.6", False), ([1, 2], [1], False), ("x", None, False), ({"a": 1}, "a", False)])
def test_a_held_value_is_compared_as_the_value_sent(sent, held, equal):
    assert checks.same(sent, held) is equal


def test_marking_covers_only_the_legs_event_types_in_the_run_range(tmp_path, landscape):
    leg = landscape.ingests()["customer"]
    leg = type(leg)(leg.object, leg.source, leg.binding.model_copy(update={"events": ["contact.changed"]}))
    inbox = Inbox(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    try:
        ids = inbox.add("crm", [Event(f"e{i}", kind, json.dumps({"n": i}).encode())
                                for i, kind in enumerate(["contact.changed", "deal.changed", "contact.changed",
                                                          "contact.changed"])])
        backlog = mark_processed(inbox, leg, Covered("crm", ids[0], ids[2]))
        assert backlog.processed == 2  # e0 and e2: e1 is another type, e3 after the range
        assert backlog.depth == 1 and backlog.oldest_age_seconds >= 0  # e3: e1 is no backlog, no flow takes it
        assert Covered.parse(str(Covered("crm", 3, 9))) == Covered("crm", 3, 9)
        assert mark_processed(inbox, leg, None).processed == 0
    finally:
        inbox.close()


def test_a_run_tagged_system_star_covers_what_is_pending_when_it_begins_to_read(tmp_path, landscape):
    leg = landscape.ingests()["customer"]
    leg = type(leg)(leg.object, leg.source, leg.binding.model_copy(update={"events": ["contact.changed"]}))
    inbox = Inbox(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    try:
        assert Covered.before_read("crm:*", inbox) is None  # nothing pending
        ids = inbox.add("crm", [Event(f"e{i}", "contact.changed", b"{}") for i in range(3)])
        inbox.add("billing", [Event("b0", "contact.changed", b"{}")])
        covered = Covered.before_read("crm:*", inbox)
        assert covered == Covered("crm", ids[0], ids[2])
        assert Covered.before_read("crm:4:7", inbox) == Covered("crm", 4, 7)  # a sensor's range, as tagged
        later = inbox.add("crm", [Event("e3", "contact.changed", b"{}")])  # stored while the run reads
        backlog = mark_processed(inbox, leg, covered)
        assert backlog.processed == 3 and backlog.depth == 1  # e3 waits for the next run
        assert Covered.before_read("crm:*", inbox) == Covered("crm", later[0], later[0])
    finally:
        inbox.close()


@pytest.mark.parametrize("action", ["delete", "archive", "ignore"])
def test_a_record_deleted_at_its_source_reaches_the_consumer_as_its_on_delete_once(store, action):
    """The CRM deletes c1: the hub keeps a tombstone (ledger `deleted`), billing deletes, archives or
    keeps it as its binding says, once however often the flow runs, and reconciliation still passes."""
    (flow,) = billing_landscape(action).flows()
    crm, billing = crm_with("ada@example.com", "bob@example.com"), Memory("cus_")
    ingest(crm, flow.ingest, store, "run-1")
    deliver(billing, flow, store, "run-1")
    ada = billing.index("customers", "metadata.ours")["c1"]

    crm.delete("contacts", "c1")
    assert ingest(crm, flow.ingest, store, "run-2").deleted == 1
    (row,) = [r for r in store.rows(hub_records, object="customer") if r["deleted_at"] is not None]
    assert row["record_id"] == "c1" and row["version"] == 2
    stats = deliver(billing, flow, store, "run-2")
    assert (stats.deleted, stats.skipped) == ((0, 1) if action == "ignore" else (1, 0))
    assert billing.removals == ([] if action == "ignore" else [("customers", ada, action)])
    kept = billing.records["customers"].get(ada)
    assert (kept is None, bool(kept and kept.get("archived"))) == {
        "delete": (True, False), "archive": (False, True), "ignore": (False, False)}[action]
    outcomes = {r["outcome"] for r in store.rows(ledger, record_id="c1", run_id="run-2")}
    assert outcomes == {"deleted", {"delete": "deleted", "archive": "archived", "ignore": "delete_ignored"}[action]}

    assert ingest(crm, flow.ingest, store, "run-3").deleted == 0  # still reported deleted: buried once
    assert deliver(billing, flow, store, "run-3").deleted == 0 and len(billing.removals) <= 1
    assert checks.reconcile(flow, crm, billing, store).passed
    # the email is free again: a new contact may take it
    crm.put("contacts", {"id": "c9", "email": "ada@example.com"})
    assert ingest(crm, flow.ingest, store, "run-4").valid == 1


def test_a_deleted_record_restored_at_its_source_is_created_again(store):
    (flow,) = billing_landscape("delete").flows()
    crm, billing = crm_with("ada@example.com"), Memory("cus_")
    ingest(crm, flow.ingest, store, "run-1")
    deliver(billing, flow, store, "run-1")
    crm.delete("contacts", "c1")
    ingest(crm, flow.ingest, store, "run-2")
    deliver(billing, flow, store, "run-2")
    assert billing.records["customers"] == {}

    crm.put("contacts", crm.gone["contacts"].pop("c1"))  # restored (HubSpot keeps archived records 90 days)
    ingest(crm, flow.ingest, store, "run-3")
    assert store.rows(hub_records, object="customer")[0]["deleted_at"] is None
    assert deliver(billing, flow, store, "run-3").written == 1
    assert [r["email"] for r in billing.records["customers"].values()] == ["ada@example.com"]


class Batched(Memory):
    """Memory writing customers in batches of up to 3; refuses bob's record alone, and fails every
    batch after `fail_after` batches (a vendor down for longer than the connector's retries)."""

    batches = {"customers": 3}

    def __init__(self, prefix: str, fail_after: int | None = None) -> None:
        super().__init__(prefix)
        self.calls: list[list[str]] = []  # the emails of each batch
        self.fail_after = fail_after

    def upsert(self, resource, external_id, payload, ours=None):
        raise AssertionError("a resource written in batches is not sent one record at a time")

    def upsert_many(self, resource, writes):
        from integration_project.errors import PermanentError, TransientError

        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise TransientError("POST /customers/batch: HTTP 503 (retries exhausted)")
        self.calls.append([w.payload["email"] for w in writes])
        return [PermanentError("POST /customers/batch: bob: email rejected") if w.payload["email"].startswith("bob")
                else super(Batched, self).upsert(resource, w.external_id, w.payload, w.ours) for w in writes]


def test_a_batch_writing_consumer_gets_the_pending_records_in_batches_and_a_refusal_parks_one(store, landscape):
    """7 records go in batches of 3, 3 and 1 (the last at once, unfilled); the one the consumer
    refuses is parked with its reason, the others of its batch are delivered; the next run sends a
    new version with the refused record (still pending) at once, in a batch of two."""
    (flow,) = landscape.flows()
    emails = [f"{n}@example.com" for n in ("ada", "bob", "cy", "di", "ed", "fay", "gus")]
    crm = crm_with(*emails)
    ingest(crm, flow.ingest, store, "run-1")
    billing = Batched("cus_")
    stats = deliver(billing, flow, store, "run-1")
    assert [len(c) for c in billing.calls] == [3, 3, 1]
    assert (stats.written, stats.rejected) == (6, 1)
    (parked,) = store.rows(dlq, flow=flow.name)
    assert parked["record_id"] == "c2" and parked["stage"] == "load" and "email rejected" in parked["reason"]
    outcomes = sorted((r["record_id"], r["outcome"]) for r in store.rows(ledger, flow=flow.name))
    assert outcomes == [(f"c{n}", "dead_lettered" if n == 2 else "delivered") for n in range(1, 8)]

    crm.put("contacts", {"id": "c1", "email": "ada@example.org"})
    ingest(crm, flow.ingest, store, "run-2")
    again = deliver(billing, flow, store, "run-2")
    assert (again.written, again.rejected) == (1, 1)
    assert billing.calls[3:] == [["ada@example.org", "bob@example.com"]]


def test_a_failed_batch_leaves_its_records_pending_and_the_next_run_sends_them(store, landscape):
    from integration_project.errors import TransientError
    from integration_project.runtime.store import deliveries

    (flow,) = landscape.flows()
    ingest(crm_with(*(f"p{n}@example.com" for n in range(5))), flow.ingest, store, "run-1")
    with pytest.raises(TransientError):
        deliver(Batched("cus_", fail_after=1), flow, store, "run-1")
    status = {r["record_id"]: r["status"] for r in store.rows(deliveries, system="billing")}
    assert status == {"c1": "done", "c2": "done", "c3": "done", "c4": "pending", "c5": "pending"}
    again = Batched("cus_")
    assert deliver(again, flow, store, "run-2").written == 2 and again.calls == [["p3@example.com", "p4@example.com"]]
    assert sorted(r["record_id"] for r in store.rows(ledger, flow=flow.name, outcome="delivered")) == [
        f"c{n}" for n in range(1, 6)]


def test_a_delete_the_consumer_refuses_is_parked_and_the_run_goes_on(store):
    from integration_project.errors import PermanentError

    class Keeping(Memory):
        def remove(self, resource, external_id, action):
            raise PermanentError("DELETE /customers: HTTP 409: customer has open invoices")

    (flow,) = billing_landscape("delete").flows()
    crm, billing = crm_with("ada@example.com", "bob@example.com"), Keeping("cus_")
    ingest(crm, flow.ingest, store, "run-1")
    deliver(billing, flow, store, "run-1")
    crm.delete("contacts", "c1")
    ingest(crm, flow.ingest, store, "run-2")
    stats = deliver(billing, flow, store, "run-2")
    assert (stats.deleted, stats.rejected) == (0, 1)
    (parked,) = store.rows(dlq, flow=flow.name)
    assert parked["record_id"] == "c1" and parked["stage"] == "load" and "open invoices" in parked["reason"]
