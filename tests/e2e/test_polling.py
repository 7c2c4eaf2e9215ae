"""A source without webhooks is polled: one sensor per object starts every realtime flow of it once
per change, even though the first run to ingest moves the hub's cursor for the others."""

from __future__ import annotations

import dagster as dg
import httpx

from integration_project import build_definitions, load_landscape
from tests.seeds import crm_parked

FLOWS = {"customer_crm_to_billing", "customer_crm_to_support", "customer_crm_to_projects"}  # the realtime ones


def polled_definitions() -> dg.Definitions:
    """The example with the CRM's webhooks switched off and support also taking customers in real time."""
    landscape = load_landscape("definitions")
    landscape.systems["crm"] = landscape.systems["crm"].model_copy(update={"webhook": None})
    support = landscape.systems["support"]
    landscape.systems["support"] = support.model_copy(update={"bindings": [
        b.model_copy(update={"mode": "realtime"}) if b.object == "customer" else b for b in support.bindings]})
    return build_definitions(landscape)


def tick(defs: dg.Definitions) -> list[dg.RunRequest]:
    sensor = defs.resolve_sensor_def("customer_crm_poll_sensor")
    return list(sensor.evaluate_tick(dg.build_sensor_context(resources=defs.resources)).run_requests or [])


def run_all(defs: dg.Definitions, requests: list[dg.RunRequest]) -> None:
    for request in requests:
        result = defs.resolve_job_def(request.job_name).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), tags=request.tags)
        assert result.success, request.job_name


def test_one_change_runs_each_polled_flow_once(sandbox, business_env):
    defs = polled_definitions()
    first = tick(defs)
    assert {r.job_name for r in first} == FLOWS and len(first) == len(FLOWS)  # the initial sync of each flow
    run_all(defs, first)
    assert tick(defs) == []  # nothing changed since the hub's cursor

    parked = crm_parked(sandbox.seed_report("crm"))
    contact = next(str(i) for i in range(101, 161) if str(i) not in parked)
    crm = httpx.Client(base_url=sandbox.url("crm"), headers={"Authorization": f"Bearer {sandbox.token('crm')}"})
    crm.patch(f"/crm/v3/objects/contacts/{contact}", json={"properties": {"phone": "+49 30 1234567"}}
              ).raise_for_status()
    second = tick(defs)
    assert {r.job_name for r in second} == FLOWS and len(second) == len(FLOWS)
    assert len({r.run_key for r in [*first, *second]}) == 2 * len(FLOWS)
    run_all(defs, second)

    billing = [c for c in httpx.get(f"{sandbox.url('billing')}/v1/customers", params={"limit": 100},
                                    headers={"Authorization": f"Bearer {sandbox.token('billing')}"}).json()["data"]
               if c["metadata"].get("crm_contact_id") == contact]
    users = httpx.get(f"{sandbox.url('support')}/api/v2/users.json", params={"per_page": 100},
                      auth=("agent@example.com/token", sandbox.token("support"))).json()["users"]
    assert [c["phone"] for c in billing] == ["+49 30 1234567"]
    assert [u["phone"] for u in users if u.get("external_id") == contact] == ["+49 30 1234567"]
    assert tick(defs) == []
