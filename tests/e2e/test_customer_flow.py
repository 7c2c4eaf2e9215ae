"""The customer flow, CRM -> hub -> billing, run for real through Dagster against the sandbox."""

from __future__ import annotations

import dagster as dg
import httpx

from integration_project.runtime import Store
from integration_project.runtime.store import dlq, ledger
from tests.seeds import crm_parked



def run_flow() -> dict[str, dict]:
    from definitions.definitions import defs

    result = defs.resolve_job_def("customer_crm_to_billing").execute_in_process(
        instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return {m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
            for m in result.asset_materializations_for_node("ingest_customer")
            + result.asset_materializations_for_node("deliver_customer_crm_to_billing")}


def billing_customers(sandbox) -> list[dict]:
    out, after = [], None
    with httpx.Client(base_url=sandbox.url("billing"),
                      headers={"Authorization": f"Bearer {sandbox.token('billing')}"}) as http:
        while True:
            page = http.get("/v1/customers", params={"limit": 100, **({"starting_after": after} if after else {})}).json()
            out += page["data"]
            if not page["has_more"]:
                return out
            after = page["data"][-1]["id"]


def test_twice_is_idempotent_and_billing_holds_exactly_the_valid_customers(sandbox, business_env):
    report = sandbox.seed_report("crm")
    invalid = crm_parked(report)
    all_ids = {str(i) for i in range(101, 101 + report["counts"]["contacts"])}
    assert invalid and invalid < all_ids

    first = run_flow()
    assert first["crm/customer"]["read"] == len(all_ids)
    assert first["hub/customer"]["rejected"] == len(invalid)
    assert first["hub/customer"]["written"] == len(all_ids - invalid)
    assert first["billing/customer"]["written"] == len(all_ids - invalid)

    second = run_flow()
    assert second["hub/customer"]["written"] == 0
    assert second["billing/customer"]["written"] == 0

    # billing held some customers before the first sync: they are adopted, never duplicated
    preexisting = {str(i) for i in range(101, 101 + sandbox.seed_report("billing")["counts"]["customers"])}
    customers = billing_customers(sandbox)
    assert sorted(c["metadata"]["crm_contact_id"] for c in customers) == sorted((all_ids - invalid) | preexisting)
    store = Store(business_env["INTEGRATIONS_DATABASE_URL"])
    parked = store.rows(dlq, status="open")
    assert {r["record_id"] for r in parked} == invalid
    assert all(r["reason"] and r["stage"] == "validate" for r in parked)
    delivered = store.rows(ledger, to_system="billing", outcome="delivered")
    assert len(delivered) == len(all_ids - invalid)


def test_a_change_in_the_crm_reaches_billing_once(sandbox, business_env):
    run_flow()
    crm = httpx.Client(base_url=sandbox.url("crm"), headers={"Authorization": f"Bearer {sandbox.token('crm')}"})
    invalid = crm_parked(sandbox.seed_report("crm"))
    target = next(str(i) for i in range(101, 200) if str(i) not in invalid)
    crm.patch(f"/crm/v3/objects/contacts/{target}", json={"properties": {"phone": "+49 30 1234567"}}).raise_for_status()

    after = run_flow()
    assert after["hub/customer"]["written"] == 1
    assert after["billing/customer"]["written"] == 1
    mine = [c for c in billing_customers(sandbox) if c["metadata"]["crm_contact_id"] == target]
    assert len(mine) == 1 and mine[0]["phone"] == "+49 30 1234567"


def test_a_contact_updated_during_its_indexing_delay_still_reaches_billing(sandbox, business_env):
    """The CRM's search shows a change only once indexed: a contact changed first but indexed after
    a later change reaches billing with the next run, not skipped by that change's cursor."""
    from tests.connectors.test_hubspot import indexed

    run_flow()
    invalid = crm_parked(sandbox.seed_report("crm"))
    late, early = [str(i) for i in range(120, 200) if str(i) not in invalid][:2]
    crm = httpx.Client(base_url=sandbox.url("crm"), headers={"Authorization": f"Bearer {sandbox.token('crm')}"})
    try:
        crm.put("/_sandbox/search-delay", json={"ms": 15_000}).raise_for_status()
        crm.patch(f"/crm/v3/objects/contacts/{late}", json={"properties": {"phone": "+49 30 7000001"}}).raise_for_status()
    finally:
        crm.put("/_sandbox/search-delay", json={"ms": 0}).raise_for_status()
    crm.patch(f"/crm/v3/objects/contacts/{early}", json={"properties": {"phone": "+49 30 7000002"}}).raise_for_status()

    during = run_flow()
    phones = {c["metadata"]["crm_contact_id"]: c["phone"] for c in billing_customers(sandbox)}
    assert phones[early] == "+49 30 7000002" and phones[late] != "+49 30 7000001"  # not yet searchable
    assert during["billing/customer"]["written"] >= 1
    indexed(crm, late, "+49 30 7000001")

    run_flow()
    phones = {c["metadata"]["crm_contact_id"]: c["phone"] for c in billing_customers(sandbox)}
    assert phones[late] == "+49 30 7000001"
