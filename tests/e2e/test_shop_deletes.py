"""An order deleted in the shop (Shopify's `orderDelete`) reaches the hub as a tombstone through its
`orders/delete` webhook: the receiver, the shop's realtime sensor, a run covering the event. Shopify lists no
deleted orders (its `deletionEvents` cover products and collections only), so the webhook is the
only way: a scheduled run without it keeps the order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import dagster as dg
import httpx
import pytest

from integration_project import build_definitions, load_landscape
from integration_project.runtime import Store
from integration_project.runtime.store import hub_records, ledger
from integration_project.webhooks import Inbox
from integration_sandbox import Sandbox
from tests.e2e.conftest import behind_a_receiver, recording

FLOW = "order_shop_to_inventory"  # a scheduled run's job
JOB = "order_shop_realtime"  # the shop's realtime job, which its webhooks start
INGEST = [dg.AssetKey(["shop", "order"]), dg.AssetKey(["hub", "order"])]  # the source -> hub leg only
DELETE = """mutation Delete($id: ID!) { orderDelete(orderId: $id) { deletedId userErrors { field message code } } }"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, str, list, dict[str, str]]]:
    """The sandbox shop posting its webhooks to a recorder, a fresh hub, and the receiver with the
    shop's endpoint: (sandbox, receiver URL, recorded posts, environment)."""
    with recording() as (hooks, recorded), behind_a_receiver(tmp_path_factory, ["shop"], 7, 60, hooks, "shop") as up:
        sb, receiver, env = up
        yield sb, receiver, recorded, env


def ingest(defs: dg.Definitions, tags: dict[str, str] | None = None, job_name: str = FLOW) -> None:
    job = defs.resolve_job_def(job_name)
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), tags=tags, asset_selection=INGEST).success


def delete_order(sb: Sandbox, order_id: str) -> None:
    """Delete the order as a shop admin's app would."""
    answer = httpx.post(f"{sb.url('shop')}/admin/api/2026-10/graphql.json",
                        headers={"X-Shopify-Access-Token": sb.token("shop")},
                        json={"query": DELETE, "variables": {"id": f"gid://shopify/Order/{order_id}"}})
    assert answer.json()["data"]["orderDelete"] == {"deletedId": f"gid://shopify/Order/{order_id}", "userErrors": []}


def posted(recorded: list, order_id: str, timeout: float = 60) -> tuple[dict[str, str], bytes]:
    """The shop's `orders/delete` webhook for this order, as it posted it (headers, body)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _, headers, body in list(recorded):
            if headers.get("x-shopify-topic") == "orders/delete" and json.loads(body) == {"id": int(order_id)}:
                return headers, body
        time.sleep(0.2)
    raise AssertionError(f"the shop sent no orders/delete for {order_id} within {timeout:g} s")


def live(store: Store, order_id: str) -> bool:
    [row] = store.rows(hub_records, object="order", record_id=order_id)
    return row["deleted_at"] is None


def test_an_order_deleted_in_the_shop_is_a_tombstone_in_the_hub_from_its_webhook(shop):
    sb, receiver, recorded, env = shop
    defs = build_definitions(load_landscape("definitions"))
    store = Store(env["INTEGRATIONS_DATABASE_URL"])
    ingest(defs)
    held = sorted(r["record_id"] for r in store.rows(hub_records, object="order") if r["deleted_at"] is None)
    assert len(held) >= 5
    gone = held[0]
    delete_order(sb, gone)

    ingest(defs)  # the batch path: Shopify lists no deleted order, so the hub keeps it
    assert live(store, gone)

    headers, body = posted(recorded, gone)
    forwarded = {k: v for k, v in headers.items() if k.startswith("x-shopify-")} | {"content-type": "application/json"}
    assert httpx.post(f"{receiver}/webhooks/shop", content=body, headers=forwarded).status_code == 200
    sensor = defs.get_repository_def().get_sensor_def(f"{JOB}_sensor")
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), cursor="0", resources=defs.resources)
    [request] = sensor.evaluate_tick(context).run_requests
    ingest(defs, request.tags, JOB)

    assert not live(store, gone)
    assert all(live(store, other) for other in held[1:])
    assert ("hub", "deleted") in {(r["to_system"], r["outcome"]) for r in store.rows(ledger, record_id=gone)}
    assert Inbox().stats(["shop"])["shop"].depth == 0  # the event is done: no run takes it again
