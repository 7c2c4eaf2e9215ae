"""A customer deleted in the CRM (HubSpot archives it) leaves every consumer as its binding says:
billing and support delete it, marketing archives it, projects keeps it; through the batch path
(each flow's job) and the realtime path (the CRM's `contact.deletion` webhook, the receiver, the
sensor); the ledger records each step, and a rerun does nothing more."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import dagster as dg
import httpx
import pytest
from pydantic import SecretStr

from integration_project import build_definitions, load_landscape
from integration_project.connectors import connect
from integration_project.model.mapping import get_path
from integration_project.runtime import Store
from integration_project.runtime.store import hub_records, ledger
from integration_project.webhooks import SCHEMES
from integration_sandbox import Sandbox
from tests.e2e.conftest import behind_a_receiver, recording

CONSUMERS = {"billing": "delete", "support": "delete", "marketing": "archive", "projects": "ignore"}
OUTCOME = {"delete": "deleted", "archive": "archived", "ignore": "delete_ignored"}


@pytest.fixture(scope="module")
def hooks() -> Iterator[tuple[str, list]]:
    with recording() as found:
        yield found


@pytest.fixture(scope="module")
def business(hooks, tmp_path_factory) -> Iterator[tuple[Sandbox, str, dict[str, str]]]:
    """The CRM and its four customer consumers, a fresh hub, the receiver; the CRM's webhooks recorded."""
    with behind_a_receiver(tmp_path_factory, ["crm", *CONSUMERS], 4, 40, hooks[0]) as up:
        yield up


def run(defs: dg.Definitions, consumer: str, tags: dict[str, str] | None = None, job: str | None = None) -> None:
    """Run the flow to `consumer` (or `job`)."""
    found = defs.resolve_job_def(job or f"customer_crm_to_{consumer}")
    assert found.execute_in_process(instance=dg.DagsterInstance.ephemeral(), tags=tags).success


def held(consumer: str) -> dict[str, dict]:
    """What a consumer holds of the CRM's customers, by CRM id, read through its vendor's list API."""
    landscape = load_landscape("definitions")
    [flow] = [f for f in landscape.flows() if f.name == f"customer_crm_to_{consumer}"]
    connector = connect(flow.consumer, flow.binding)
    try:
        id_path = flow.binding.mapping["id"]
        return {str(ours): record for record in connector.scan(flow.binding.resource)
                if (ours := get_path(record, id_path)) is not None}
    finally:
        connector.close()


def delete_contact(sb: Sandbox, contact_id: str) -> None:
    """Delete the contact as a CRM user would (HubSpot's DELETE archives it)."""
    answer = httpx.delete(f"{sb.url('crm')}/crm/objects/2026-03/contacts/{contact_id}",
                          headers={"Authorization": f"Bearer {sb.token('crm')}"})
    assert answer.status_code == 204


def everywhere(defs: dg.Definitions) -> set[str]:
    """The CRM ids every consumer holds (run every flow first)."""
    for consumer in CONSUMERS:
        run(defs, consumer)
    return set.intersection(*(set(held(c)) for c in CONSUMERS))


def test_a_customer_deleted_in_the_crm_leaves_each_consumer_as_its_binding_says_batch(business):
    sb, _, env = business
    defs = build_definitions(load_landscape("definitions"))
    synced = sorted(everywhere(defs))
    assert synced
    gone = synced[0]
    delete_contact(sb, gone)
    for consumer in CONSUMERS:
        run(defs, consumer)

    assert gone not in held("billing") and gone not in held("support")
    assert held("marketing")[gone]["status"] == "archived"
    assert gone in held("projects")
    assert {c: gone in held(c) for c in CONSUMERS} == {c: a != "delete" for c, a in CONSUMERS.items()}
    store = Store(env["INTEGRATIONS_DATABASE_URL"])
    [row] = store.rows(hub_records, object="customer", record_id=gone)
    assert row["deleted_at"] is not None
    outcomes = {(r["to_system"], r["outcome"]) for r in store.rows(ledger, record_id=gone)}
    assert ("hub", "deleted") in outcomes
    assert {(c, OUTCOME[a]) for c, a in CONSUMERS.items()} <= outcomes
    before = len(store.rows(ledger, record_id=gone))
    for consumer in CONSUMERS:  # a rerun carries nothing out again
        run(defs, consumer)
    assert len(store.rows(ledger, record_id=gone)) == before
    assert {c: gone in held(c) for c in CONSUMERS} == {c: a != "delete" for c, a in CONSUMERS.items()}


def test_a_customer_deleted_in_the_crm_leaves_each_realtime_consumer_at_once_the_others_at_their_run(business, hooks):
    """The CRM's `contact.deletion` webhook reaches the receiver; the customer's realtime sensor asks
    for one run, which carries out each realtime consumer's on_delete (billing deletes, projects
    keeps it); the batch consumers are untouched until their own run (support deletes, marketing
    archives)."""
    sb, receiver, env = business
    landscape = load_landscape("definitions")
    defs = build_definitions(landscape)
    realtime = {f.consumer.name for f in landscape.flows() if f.object.name == "customer" and f.mode == "realtime"}
    assert realtime and realtime < set(CONSUMERS)
    synced = sorted(everywhere(defs))
    gone = synced[-1]
    _, recorded = hooks
    recorded.clear()
    delete_contact(sb, gone)
    body = _deletion(recorded, gone)
    url = f"{receiver}/webhooks/crm"
    answer = httpx.post(url, content=body, headers={
        "Content-Type": "application/json",
        **SCHEMES["hubspot_v3"].sign(body, SecretStr(env["CRM_WEBHOOK_SECRET"]), method="POST", url=url)})
    assert answer.status_code == 200

    sensor = defs.get_repository_def().get_sensor_def("customer_crm_realtime_sensor")
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), cursor="0",
                                      resources=defs.resources)
    requests = sensor.evaluate_tick(context).run_requests
    assert len(requests) == 1
    run(defs, "billing", requests[0].tags, job="customer_crm_realtime")
    store = Store(env["INTEGRATIONS_DATABASE_URL"])

    def outcomes() -> set[tuple[str, str]]:
        return {(r["to_system"], r["outcome"]) for r in store.rows(ledger, record_id=gone)}

    assert {(c, OUTCOME[CONSUMERS[c]]) for c in realtime} <= outcomes()
    assert {c: gone in held(c) for c in CONSUMERS} == {c: c not in realtime or CONSUMERS[c] != "delete"
                                                       for c in CONSUMERS}
    assert not {c for c, o in outcomes() if o in OUTCOME.values()} & (set(CONSUMERS) - realtime)  # not yet
    for consumer in set(CONSUMERS) - realtime:
        run(defs, consumer)
    assert {(c, OUTCOME[a]) for c, a in CONSUMERS.items()} <= outcomes()
    assert {c: gone in held(c) for c in CONSUMERS} == {c: a != "delete" for c, a in CONSUMERS.items()}
    assert held("marketing")[gone]["status"] == "archived"


def _deletion(recorded: list, contact_id: str, timeout: float = 60) -> bytes:
    """The CRM's `contact.deletion` event for this contact, as it posted it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _, _, body in list(recorded):
            for event in json.loads(body):
                if event["subscriptionType"] == "contact.deletion" and str(event["objectId"]) == contact_id:
                    return json.dumps([event]).encode()
        time.sleep(0.2)
    raise AssertionError(f"the CRM sent no contact.deletion for {contact_id} within {timeout:g} s")
