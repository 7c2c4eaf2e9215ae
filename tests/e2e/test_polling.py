"""A source without webhooks is polled: one sensor per object starts one run per change, which reads
the change into the hub once and delivers it to every realtime consumer."""

from __future__ import annotations

import dagster as dg
import httpx

from integration_project import build_definitions, load_landscape
from tests.seeds import crm_parked

JOB = "customer_crm_realtime"
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
    sensor = defs.resolve_sensor_def(f"{JOB}_sensor")
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), resources=defs.resources)
    return list(sensor.evaluate_tick(context).run_requests or [])


def run_all(defs: dg.Definitions, requests: list[dg.RunRequest]) -> set[str]:
    """Run each request; the flows whose consumers they delivered to."""
    delivered = set()
    for request in requests:
        result = defs.resolve_job_def(request.job_name or JOB).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), tags=request.tags)
        assert result.success, request.job_name
        ingests = [e for e in result.get_step_success_events() if e.step_key.startswith("ingest_")]
        assert len(ingests) == 1, "the change is read into the hub once"
        delivered |= {e.step_key.removeprefix("deliver_") for e in result.get_step_success_events()
                      if e.step_key.startswith("deliver_")}
    return delivered


def test_one_change_is_one_run_delivering_to_each_realtime_consumer(sandbox, business_env):
    defs = polled_definitions()
    first = tick(defs)
    assert defs.resolve_sensor_def(f"{JOB}_sensor").job_name == JOB
    assert len(first) == 1  # the initial sync
    assert run_all(defs, first) == FLOWS
    assert tick(defs) == []  # nothing changed since the hub's cursor

    parked = crm_parked(sandbox.seed_report("crm"))
    contact = next(str(i) for i in range(101, 161) if str(i) not in parked)
    crm = httpx.Client(base_url=sandbox.url("crm"), headers={"Authorization": f"Bearer {sandbox.token('crm')}"})
    crm.patch(f"/crm/v3/objects/contacts/{contact}", json={"properties": {"phone": "+49 30 1234567"}}
              ).raise_for_status()
    second = tick(defs)
    assert len(second) == 1 and second[0].run_key != first[0].run_key
    assert run_all(defs, second) == FLOWS

    billing = [c for c in httpx.get(f"{sandbox.url('billing')}/v1/customers", params={"limit": 100},
                                    headers={"Authorization": f"Bearer {sandbox.token('billing')}"}).json()["data"]
               if c["metadata"].get("crm_contact_id") == contact]
    users = httpx.get(f"{sandbox.url('support')}/api/v2/users.json", params={"per_page": 100},
                      auth=("agent@example.com/token", sandbox.token("support"))).json()["users"]
    assert [c["phone"] for c in billing] == ["+49 30 1234567"]
    assert [u["phone"] for u in users if u.get("external_id") == contact] == ["+49 30 1234567"]
    assert tick(defs) == []
