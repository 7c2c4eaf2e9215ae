"""The Shopify connector against the sandbox shop."""

from __future__ import annotations

import time

import httpx
import pytest

from integration_project.errors import PermanentError
from tests.connectors.conftest import drain


def shop_api(sandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.url("shop") + "/admin/api/2024-10",
                        headers={"X-Shopify-Access-Token": sandbox.token("shop")})


def test_orders_extract_through_every_link_page_and_resume_with_only_changes(connector, sandbox, monkeypatch):
    monkeypatch.setattr("integration_project.connectors.shopify.PAGE", 7)  # several Link-header pages
    shopify = connector("shop")
    pages = list(shopify.pages("orders", None))
    assert len(pages) > 2 and all(p.cursor is None for p in pages[:-1]) and pages[-1].cursor
    orders = [o for p in pages for o in p.records]
    assert len(orders) >= sandbox.seed_report("shop")["counts"]["orders"]
    assert len({o["id"] for o in orders}) == len(orders)
    cursor = pages[-1].cursor
    time.sleep(1.1)  # the shop's clock has second resolution
    with shop_api(sandbox) as api:
        created = api.post("/orders.json", json={"order": {"email": "new.buyer@example.com", "line_items": [
            {"sku": "SKU-000001", "quantity": 1, "price": "5.00"}]}}).json()["order"]
    changed, _ = drain(shopify, "orders", cursor)
    assert created["id"] in {o["id"] for o in changed}
    assert len(changed) < len(orders)


def test_products_are_matched_by_sku_and_updated_without_losing_stock(connector, sandbox):
    shopify = connector("shop")
    index = shopify.index("products", "variants.0.sku")
    shop_id = index["SKU-000004"]
    product = {"title": "Steel Flange 4", "variants": {"0": {"sku": "SKU-000004", "price": "19.99"}}}
    assert shopify.upsert("products", shop_id, product) == shop_id
    stock = {"variants": {"0": {"sku": "SKU-000004", "inventory_quantity": 42}}}
    assert shopify.upsert("variants", None, stock) == shop_id
    with shop_api(sandbox) as api:
        held = api.get(f"/products/{shop_id}.json").json()["product"]
    assert held["title"] == "Steel Flange 4"
    assert held["variants"][0] | {"price": "19.99", "inventory_quantity": 42} == held["variants"][0]
    assert len(shopify.index("products", "variants.0.sku")) == len(index)


def test_a_new_product_is_created_once(connector):
    shopify = connector("shop")
    product = {"title": "Oak Gear 999", "variants": {"0": {"sku": "SKU-000999", "price": "3.00"}}}
    created = shopify.upsert("products", None, product)
    assert shopify.upsert("products", created, product) == created
    assert shopify.index("products", "variants.0.sku")["SKU-000999"] == created


def test_stock_for_an_unknown_sku_waits(connector):
    with pytest.raises(PermanentError, match="no product"):
        connector("shop").upsert("variants", None, {"variants": {"0": {"sku": "SKU-777777", "inventory_quantity": 1}}})


def test_a_fulfillment_lands_on_its_order_and_the_index_knows_it(connector, sandbox):
    shopify = connector("shop")
    shipment = {"order_id": "1003", "tracking_company": "DHL", "tracking_number": "00340434123",
                "shipment_status": "shipped"}
    assert shopify.upsert("fulfillments", None, dict(shipment)) == "1003"
    assert shopify.upsert("fulfillments", "1003", dict(shipment)) == "1003"
    with shop_api(sandbox) as api:
        order = api.get("/orders/1003.json").json()["order"]
    assert order["fulfillment_status"] == "fulfilled"
    assert order["fulfillment"]["tracking_number"] == "00340434123"
    assert shopify.index("fulfillments", "order_id")["1003"] == "1003"
