"""DLQ replay goes through the same leg rules as a run: a replayed invoice names our customer."""

from __future__ import annotations

import json

import pytest

from integration_project.runtime import Store, deliver, ingest
from integration_project.runtime import dlq as dlq_ops
from tests.runtime.memory import Memory, billing_landscape


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")


def test_a_replayed_invoice_lands_in_the_hub_with_our_customer_id(store):
    landscape = billing_landscape()
    crm, billing = Memory("c"), Memory("cus_")
    systems = {"crm": crm, "billing": billing}
    crm.put("contacts", {"id": "c1", "email": "ada@example.com"})
    legs = landscape.ingests()
    ingest(crm, legs["customer"], store, "run-1")
    (flow,) = landscape.flows()
    deliver(billing, flow, store, "run-1")
    theirs = billing.index("customers", "metadata.ours")["c1"]
    assert theirs.startswith("cus_")

    # billing issues an invoice for its customer; its amount is broken, so it is parked
    billing.put("invoices", {"id": "in_1", "customer": theirs, "amount": "lots"})
    leg = legs["invoice"]
    ingest(billing, leg, store, "run-2")
    (parked,) = dlq_ops.entries(store, dlq_ops.Filters(flows=(leg.name,)))
    assert store.rows(dlq_ops.hub_records, object="invoice") == []

    # fixed at the source, then replayed from the dead-letter queue
    billing.put("invoices", {"id": "in_1", "customer": theirs, "amount": 120})
    (done,) = dlq_ops.replay(landscape, store, [parked], connect=lambda system, _: systems[system.name])
    assert done["action"] == "ingest" and done["outcome"] == "resolved"

    (row,) = store.rows(dlq_ops.hub_records, object="invoice")
    assert json.loads(row["data"])["customer_id"] == "c1"  # ours, not billing's
