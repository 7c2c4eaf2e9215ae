"""The customer flow survives a SIGKILL mid-load and the sandbox's injected faults: nothing lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import dagster as dg
import httpx

from integration_project import build_definitions, load_landscape
from integration_project.runtime import Store
from integration_project.runtime.store import deliveries, ledger
from tests.e2e.test_customer_flow import billing_customers
from tests.seeds import crm_parked

FLOW = "customer_crm_to_billing"
RUN_FLOW = ("import dagster as dg; from definitions.definitions import defs; "
            f"defs.resolve_job_def({FLOW!r}).execute_in_process(instance=dg.DagsterInstance.ephemeral())")


def faults(sandbox, system: str, **values) -> None:
    httpx.put(f"{sandbox.url(system)}/_sandbox/faults", json=values,
              headers={"Authorization": f"Bearer {sandbox.token(system)}"}).raise_for_status()


def billing_ids(sandbox) -> Counter[str]:
    found: Counter[str] = Counter()
    after = None
    while True:
        page = httpx.get(f"{sandbox.url('billing')}/v1/customers",
                         params={"limit": 100, **({"starting_after": after} if after else {})},
                         headers={"Authorization": f"Bearer {sandbox.token('billing')}"}).json()
        found.update(c["metadata"].get("crm_contact_id") for c in page["data"])
        if not page["has_more"]:
            return found
        after = page["data"][-1]["id"]


def expected(sandbox) -> set[str]:
    report = sandbox.seed_report("crm")
    invalid = crm_parked(report)
    valid = {str(i) for i in range(101, 101 + report["counts"]["contacts"])} - invalid
    preexisting = {str(i) for i in range(101, 101 + sandbox.seed_report("billing")["counts"]["customers"])}
    return valid | preexisting


def test_sigkill_mid_load_then_rerun_loses_and_doubles_nothing(sandbox, business_env, monkeypatch):
    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", business_env["INTEGRATIONS_DATABASE_URL"] + ".kill")
    store = Store(os.environ["INTEGRATIONS_DATABASE_URL"])
    faults(sandbox, "billing", latency_ms=150)  # slow loads, so the kill lands mid-load
    process = subprocess.Popen([sys.executable, "-c", RUN_FLOW], env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(store.rows(ledger, to_system="billing", outcome="delivered")) < 5:
        assert time.monotonic() < deadline and process.poll() is None, "the sync never got to loading"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    delivered_before = len(store.rows(ledger, to_system="billing", outcome="delivered"))
    faults(sandbox, "billing")
    assert delivered_before < len(expected(sandbox))  # the kill really interrupted the load

    result = build_definitions(load_landscape("definitions")).resolve_job_def(FLOW).execute_in_process(
        instance=dg.DagsterInstance.ephemeral())
    assert result.success
    held = billing_ids(sandbox)
    assert set(held) == expected(sandbox)
    assert max(held.values()) == 1, [k for k, n in held.items() if n > 1]


def test_faults_on_both_ends_reach_the_same_end_state(sandbox, business_env, monkeypatch):
    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", business_env["INTEGRATIONS_DATABASE_URL"] + ".faults")
    noisy = {"error_rate": 0.2, "rate_limit_rate": 0.1, "retry_after_seconds": 1, "timeout_rate": 0.03,
             "timeout_seconds": 1, "reset_rate": 0.03, "malformed_rate": 0.03, "seed": 11}
    faults(sandbox, "crm", **noisy)
    faults(sandbox, "billing", **noisy)
    defs = build_definitions(load_landscape("definitions"))
    retries, runs = 0, 0
    try:
        for runs in range(1, 6):  # a run whose retries are exhausted fails; the next one resumes
            result = defs.resolve_job_def(FLOW).execute_in_process(
                instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
            done = [m for node in ("ingest_customer", f"deliver_{FLOW}")
                    for m in result.asset_materializations_for_node(node)]
            retries += sum(m.metadata["retries"].value for m in done if "retries" in m.metadata)
            if result.success:
                break
    finally:
        faults(sandbox, "crm")
        faults(sandbox, "billing")
    print(f"faults: {retries} retried calls over {runs} run(s)")
    assert result.success and retries > 0
    held = billing_ids(sandbox)
    assert set(held) == expected(sandbox) and max(held.values()) == 1


def test_a_consumer_that_is_down_stops_the_run_at_the_sends_in_flight(sandbox, business_env, monkeypatch):
    """Billing answers only 500s: the run fails once the sends in flight have used their retries,
    without marking the rest of the changes pending; the next run delivers every change once."""
    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", business_env["INTEGRATIONS_DATABASE_URL"] + ".down")
    store = Store(os.environ["INTEGRATIONS_DATABASE_URL"])
    landscape = load_landscape("definitions")
    job = build_definitions(landscape).resolve_job_def(FLOW)

    def run() -> bool:
        return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False).success

    assert run()
    invalid = crm_parked(sandbox.seed_report("crm"))
    phones = {str(i): f"+49 30 {7_100_000 + i}" for i in range(101, 200) if str(i) not in invalid}
    phones = dict(list(phones.items())[:30])
    with httpx.Client(base_url=sandbox.url("crm"), headers={"Authorization": f"Bearer {sandbox.token('crm')}"}) as crm:
        for contact, phone in phones.items():
            crm.patch(f"/crm/v3/objects/contacts/{contact}", json={"properties": {"phone": phone}}).raise_for_status()
    pending_before = len(store.rows(deliveries, system="billing", status="pending"))
    faults(sandbox, "billing", error_rate=1.0)
    try:
        assert not run()
    finally:
        faults(sandbox, "billing")
    window = 2 * landscape.systems["billing"].api.concurrency  # what deliver keeps submitted at most
    assert 0 < len(store.rows(deliveries, system="billing", status="pending")) - pending_before <= window

    assert run()
    held = billing_customers(sandbox)
    assert {c["metadata"]["crm_contact_id"]: c["phone"] for c in held if c["metadata"]["crm_contact_id"] in phones} == phones
    assert max(billing_ids(sandbox).values()) == 1
