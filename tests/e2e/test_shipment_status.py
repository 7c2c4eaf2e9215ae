"""The 3PL's shipment statuses reach the shop as Shopify's fulfillment events through the shop
binding's value map: `shipped` becomes IN_TRANSIT, `delivered` DELIVERED, and the steps before a
parcel leaves (`received`, `picked`) are no event (the fulfillment shows FULFILLED)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest

from integration_project import build_definitions, load_landscape
from integration_sandbox import Sandbox
from integration_sandbox.landscape import sandbox_env
from integration_sandbox.testing import free_port_sandbox
from tests.sandbox.sandbox_clients import shop_records

SHOWN = {"shipped": "in_transit", "delivered": "delivered", "received": "fulfilled", "picked": "fulfilled"}


@pytest.fixture(scope="module")
def goods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The shop and the 3PL, seeded alike (the 3PL holds shipments of the shop's first orders)."""
    with free_port_sandbox(tmp_path_factory.mktemp("goods"), ["shop", "fulfilment"], seed=5, size=40) as sb:
        yield sb


@pytest.fixture
def env(goods: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**sandbox_env(load_landscape("definitions"), goods),
                       "INTEGRATIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite'}"}.items():
        monkeypatch.setenv(key, value)


def shipments(sb: Sandbox) -> list[dict]:
    with httpx.Client(base_url=sb.url("fulfilment"), headers={"Authorization": f"Bearer {sb.token('fulfilment')}"},
                      timeout=30) as http:
        page = http.get("/v1/shipments", params={"limit": 500}).json()
    assert not page["next_cursor"]
    return page["data"]


def test_a_shipped_parcel_is_an_in_transit_fulfillment_event_at_the_shop(goods, env):
    # a parcel shipped without a tracking number is parked at the hub: it reaches no shop
    seeded = {s["order_id"]: s for s in shipments(goods)
              if s["status"] in SHOWN and (s["tracking_number"] or s["status"] not in ("shipped", "delivered"))}
    assert {s["status"] for s in seeded.values()} >= {"shipped", "delivered", "received"}, seeded
    defs = build_definitions(load_landscape("definitions"))
    job = defs.resolve_job_def("shipment_fulfilment_to_shop")
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success

    with httpx.Client(base_url=goods.url("shop"), headers={"X-Shopify-Access-Token": goods.token("shop")},
                      timeout=30) as http:
        orders = {str(o["id"]): o for o in shop_records(http, "orders")}  # read back as Shopify answers it
    shown = {oid: (orders[oid]["fulfillment"] or {}).get("shipment_status") for oid in seeded}
    assert shown == {oid: SHOWN[s["status"]] for oid, s in seeded.items()}
