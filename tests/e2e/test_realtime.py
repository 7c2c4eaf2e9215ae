"""Real time: 1,000 CRM changes, each webhook delivered 3 times in shuffled order, end in billing
holding exactly the latest version of every record; the sensor covers them in one run per batch."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator

import dagster as dg
import httpx
import pytest
from pydantic import SecretStr

from integration_project import build_definitions, load_landscape
from integration_sandbox import Sandbox
from integration_sandbox.testing import crm_records
from integration_project.webhooks import SCHEMES, Inbox
from tests.seeds import crm_parked
from tests.e2e.conftest import behind_a_receiver, recording

JOB = "customer_crm_realtime"  # a CRM contact change to the hub, then to every realtime consumer
CONTACTS, VERSIONS = 200, 5  # 1,000 changes


@pytest.fixture(scope="module")
def vendor_hooks() -> Iterator[tuple[str, list]]:
    """Where the sandbox CRM posts its signed webhooks (recorded, to be re-delivered by the test)."""
    with recording() as found:
        yield found


@pytest.fixture(scope="module")
def realtime(vendor_hooks, tmp_path_factory) -> Iterator[tuple[Sandbox, str, dict[str, str]]]:
    """CRM + billing posting webhooks to the recorder, a fresh hub, and the receiver on loopback."""
    with behind_a_receiver(tmp_path_factory, ["crm", "billing"], 3, CONTACTS + 50, vendor_hooks[0]) as up:
        yield up


BILLING = [dg.AssetKey(["crm", "customer"]), dg.AssetKey(["hub", "customer"]), dg.AssetKey(["billing", "customer"])]


def run(defs: dg.Definitions, tags: dict[str, str] | None = None) -> dict:
    """A run of the realtime job, to billing only (the one consumer this sandbox serves)."""
    result = defs.resolve_job_def(JOB).execute_in_process(instance=dg.DagsterInstance.ephemeral(), tags=tags,
                                                          asset_selection=BILLING)
    assert result.success
    [source] = [m for m in result.asset_materializations_for_node("ingest_customer")
                if m.asset_key == dg.AssetKey(["crm", "customer"])]
    return {k: v.value for k, v in source.metadata.items()}


def test_thousand_changes_delivered_three_times_shuffled_end_in_the_latest_version(realtime, vendor_hooks):
    sb, receiver, env = realtime
    defs = build_definitions(load_landscape("definitions"))
    run(defs)  # the initial sync
    valid = [c for c in _crm_contacts(sb) if c["id"] not in _invalid(sb)][:CONTACTS]
    assert len(valid) == CONTACTS
    _, hooks = vendor_hooks
    hooks.clear()

    crm = httpx.Client(base_url=sb.url("crm"), headers={"Authorization": f"Bearer {sb.token('crm')}"})
    latest = {}
    for version in range(VERSIONS):
        for contact in valid:
            latest[contact["id"]] = f"+49 30 {int(contact['id']):04d}{version}"
            crm.patch(f"/crm/v3/objects/contacts/{contact['id']}",
                      json={"properties": {"phone": latest[contact["id"]]}}).raise_for_status()

    events = _wait_for_events(hooks, CONTACTS * VERSIONS)
    deliveries = [body for body in events.values()] * 3
    random.Random(5).shuffle(deliveries)
    secret = SecretStr(env["CRM_WEBHOOK_SECRET"])
    url = f"{receiver}/webhooks/crm"
    with httpx.Client() as http:
        answers = [http.post(url, content=body, headers={
            "Content-Type": "application/json",
            **SCHEMES["hubspot_v3"].sign(body, secret, method="POST", url=url)}).status_code
            for body in deliveries]
    assert set(answers) == {200}

    inbox = Inbox()
    assert inbox.stats(["crm"])["crm"].depth == len(events)  # each event stored once
    sensor = defs.get_repository_def().get_sensor_def(f"{JOB}_sensor")
    instance = dg.DagsterInstance.ephemeral()
    cursor, requests = "0", []  # the sensor's first tick (the initial sync) is behind us
    while True:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources)
        result = sensor.evaluate_tick(context)
        requests += result.run_requests
        if result.cursor == cursor:
            break
        cursor = result.cursor
    assert 1 <= len(requests) <= -(-len(events) // 1000)  # one run per batch of events, not per event
    started = time.perf_counter()
    done = [run(defs, request.tags) for request in requests]
    assert sum(d["events_processed"] for d in done) == len(events)
    assert done[-1]["inbox_depth"] == 0
    print(f"realtime: {len(events)} events, {len(requests)} run(s), {time.perf_counter() - started:.1f} s")

    assert inbox.stats(["crm"])["crm"].depth == 0
    held = {}
    for customer in _billing(sb):
        held.setdefault(customer["metadata"].get("crm_contact_id"), []).append(customer["phone"])
    for contact_id, phone in latest.items():
        assert held[contact_id] == [phone], contact_id
    inbox.close()


def _crm_contacts(sb: Sandbox) -> list[dict]:
    with httpx.Client(base_url=sb.url("crm"), headers={"Authorization": f"Bearer {sb.token('crm')}"}) as crm:
        return crm_records(crm, "contacts")


def _invalid(sb: Sandbox) -> set[str]:
    problems = sb.seed_report("crm")["problems"]
    return crm_parked(sb.seed_report("crm")) | set(problems["duplicate"])


def _wait_for_events(hooks: list, expected: int, timeout: float = 120) -> dict[str, bytes]:
    """The CRM's deliveries, one body per event id (the sandbox may send some twice)."""
    deadline = time.monotonic() + timeout
    while True:
        events = {}
        for _, headers, body in list(hooks):
            if "x-hubspot-signature-v3" not in headers:
                continue  # billing posts to the same recorder
            for event in json.loads(body):
                events[str(event["eventId"])] = json.dumps([event]).encode()
        if len(events) >= expected or time.monotonic() > deadline:
            assert len(events) >= expected, f"only {len(events)} of {expected} webhook events arrived"
            return events
        time.sleep(0.5)


def _billing(sb: Sandbox) -> list[dict]:
    out, after = [], None
    while True:
        page = httpx.get(f"{sb.url('billing')}/v1/customers",
                         params={"limit": 100, **({"starting_after": after} if after else {})},
                         headers={"Authorization": f"Bearer {sb.token('billing')}"}).json()
        out += page["data"]
        if not page["has_more"]:
            return out
        after = page["data"][-1]["id"]
