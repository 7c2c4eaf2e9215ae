"""The Shopify connector against the sandbox shop (GraphQL Admin 2026-10, client-credentials tokens)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from integration_project.connectors.shopify import Shopify, legacy
from integration_project.errors import PermanentError
from tests.connectors.conftest import drain
from tests.contracts.recording import Recording
from tests.sandbox.sandbox_clients import SHOP_GRAPHQL, client, shop_all, shop_graphql, shop_order

# Shopify's Event has `createdAt` only: asking for an `updatedAt` is a query error
EVENT_UPDATED_AT = "{ events(first: 1) { nodes { ... on BasicEvent { updatedAt } } } }"
PRODUCT = "id legacyResourceId title variants(first: 1) { nodes { sku price inventoryQuantity } }"


def recorded_shop(landscape) -> tuple[Shopify, Recording]:
    declared = landscape.systems["shop"]
    recording = Recording()
    assert declared.api is not None
    return Shopify(declared.api, transport=recording), recording


def product(sandbox, shop_id: str) -> dict:
    with client(sandbox, "shop") as http:
        return shop_graphql(http, f"query($id: ID!) {{ product(id: $id) {{ {PRODUCT} }} }}",
                            id=f"gid://shopify/Product/{shop_id}")["product"]


def test_orders_extract_page_by_page_and_resume_with_only_changes(connector, sandbox, monkeypatch):
    monkeypatch.setattr("integration_project.connectors.shopify.PAGE", 7)  # several pages
    shopify = connector("shop")
    pages = list(shopify.pages("orders", None))
    assert len(pages) > 2 and all(p.cursor for p in pages)  # sorted by updated_at: each page's cursor is safe
    orders = [o for p in pages for o in p.records]
    assert len(orders) >= sandbox.seed_report("shop")["counts"]["orders"]
    assert len({o["id"] for o in orders}) == len(orders)
    assert all(o["line_items"] and o["total_price"] and o["currency"] for o in orders)
    cursor = pages[-1].cursor
    with client(sandbox, "shop") as http:
        created = shop_order(http, "new.buyer@example.com")
    changed, _ = drain(shopify, "orders", cursor)
    assert int(created["legacyResourceId"]) in {o["id"] for o in changed}
    assert len(changed) < len(orders)


def test_an_order_changed_between_pages_is_not_skipped(connector, monkeypatch):
    """A change made while a listing is read moves the order to the end of the listing (it is read
    again there), and the cursor the first page offered reads it again too."""
    monkeypatch.setattr("integration_project.connectors.shopify.PAGE", 5)
    shopify = connector("shop")
    listing = shopify.pages("orders", None)
    first = next(listing)
    edited = first.records[0]["id"]
    shopify.upsert("fulfillments", None, {"order_id": str(edited), "tracking_company": "UPS",
                                          "tracking_number": "1Z999"})  # an edit of an order already read
    assert edited in {o["id"] for page in listing for o in page.records}
    changed, _ = drain(shopify, "orders", first.cursor)
    assert edited in {o["id"] for o in changed}


def test_an_order_edited_after_it_was_made_is_counted_from_events_without_updated_at(connector, sandbox, landscape):
    """Shopify's events carry `createdAt` and no `updatedAt`: an order made, then edited twice in the
    shop has 3 versions in `versions("orders")`, one never edited 1, and assess over the shop's orders
    counts as changed each order an update event names."""
    from integration_project.runtime.assess import assess

    with client(sandbox, "shop") as http:
        asked = http.post(SHOP_GRAPHQL, json={"query": EVENT_UPDATED_AT})
        assert "updatedAt" in asked.json()["errors"][0]["message"]  # not a field of Shopify's events
        edited, untouched = (int(shop_order(http, f"{who}@example.com")["legacyResourceId"])
                             for who in ("edited.twice", "never.edited"))
    shopify = connector("shop")
    shipment = {"order_id": str(edited), "tracking_company": "UPS", "tracking_number": "1Z-EDIT-1"}
    shopify.upsert("fulfillments", None, shipment)  # fulfilled: edited once
    shopify.upsert("fulfillments", str(edited), {**shipment, "tracking_number": "1Z-EDIT-2"})  # and again
    counted = {order["id"]: versions for order, versions in shopify.versions("orders", ["*"])}
    assert (counted[edited], counted[untouched]) == ({"*": 3}, {"*": 1})
    with client(sandbox, "shop") as http:
        events = shop_all(http, "events", "... on BasicEvent { subjectId action }")
    updates = {int(legacy(e["subjectId"])) for e in events if e["action"] == "update"}
    assert {i for i, v in counted.items() if v["*"] > 1} == updates & counted.keys()
    binding = next(b for b in landscape.systems["shop"].bindings if b.object == "order")
    report = assess(shopify, binding, landscape.objects["order"])
    assert (report["records"], report["changed_records"]) == (len(counted), len(updates & counted.keys()))


def test_lines_past_a_page_are_read_too(connector, sandbox, monkeypatch):
    monkeypatch.setattr("integration_project.connectors.shopify.LINES", 1)
    orders, _ = drain(connector("shop"), "orders", None)
    with client(sandbox, "shop") as http:
        held = shop_all(http, "orders", "legacyResourceId lineItems(first: 10) { nodes { sku } }")
    assert {int(o["legacyResourceId"]): len(o["lineItems"]["nodes"]) for o in held} == {
        o["id"]: len(o["line_items"]) for o in orders}
    assert any(len(o["line_items"]) > 1 for o in orders)


def test_products_are_matched_by_sku_and_updated_and_stock_set_at_the_location(connector, sandbox):
    shopify = connector("shop")
    index = shopify.index("products", "variants.0.sku")
    shop_id = index["SKU-000004"]
    update = {"title": "Steel Flange 4", "variants": {"0": {"sku": "SKU-000004", "price": "19.99"}}}
    assert shopify.upsert("products", shop_id, update) == shop_id
    stock = {"variants": {"0": {"sku": "SKU-000004", "inventory_quantity": 42}}}
    assert shopify.upsert("variants", None, stock) == shop_id
    held = product(sandbox, shop_id)
    assert held["title"] == "Steel Flange 4"
    assert held["variants"]["nodes"][0] == {"sku": "SKU-000004", "price": "19.99", "inventoryQuantity": 42}
    assert len(shopify.index("products", "variants.0.sku")) == len(index)


def test_a_new_product_is_created_once(connector, sandbox):
    shopify = connector("shop")
    new = {"title": "Oak Gear 999", "variants": {"0": {"sku": "SKU-000999", "price": "3.00"}}}
    created = shopify.upsert("products", None, new)
    assert shopify.upsert("products", created, new) == created
    assert shopify.index("products", "variants.0.sku")["SKU-000999"] == created
    assert product(sandbox, created)["variants"]["nodes"][0]["price"] == "3.00"


def test_a_product_the_shop_refuses_is_a_permanent_error_with_its_message(connector):
    with pytest.raises(PermanentError, match="Title can't be blank"):
        connector("shop").upsert("products", None, {"title": " ", "variants": {"0": {"sku": "SKU-000998"}}})


def test_stock_for_an_unknown_sku_waits(connector):
    with pytest.raises(PermanentError, match="no product"):
        connector("shop").upsert("variants", None, {"variants": {"0": {"sku": "SKU-777777", "inventory_quantity": 1}}})


def test_a_fulfillment_lands_on_its_order_and_the_index_knows_it(connector, sandbox):
    shopify = connector("shop")
    shipment = {"order_id": "1003", "tracking_company": "DHL", "tracking_number": "00340434123",
                "shipment_status": "in_transit"}
    assert shopify.upsert("fulfillments", None, dict(shipment)) == "1003"
    assert shopify.upsert("fulfillments", "1003", {**shipment, "shipment_status": "delivered"}) == "1003"
    assert shopify.upsert("fulfillments", "1003", {**shipment, "shipment_status": "delivered"}) == "1003"
    with client(sandbox, "shop") as http:
        order = shop_graphql(http, """query { order(id: "gid://shopify/Order/1003") { displayFulfillmentStatus
            fulfillments(first: 5) { status displayStatus trackingInfo { company number } } } }""")["order"]
    assert order == {"displayFulfillmentStatus": "FULFILLED", "fulfillments": [
        {"status": "SUCCESS", "displayStatus": "DELIVERED",
         "trackingInfo": [{"company": "DHL", "number": "00340434123"}]}]}
    assert shopify.index("fulfillments", "order_id")["1003"] == "1003"
    read = next(o for o in drain(shopify, "orders", None)[0] if o["id"] == 1003)
    assert read["fulfillment_status"] == "fulfilled"
    assert read["fulfillments"][0] | {"tracking_number": "00340434123", "shipment_status": "delivered"} == \
        read["fulfillments"][0]


def test_a_shipment_status_shopify_does_not_know_is_refused_not_dropped(connector, sandbox):
    """A status outside FulfillmentEventStatus is a declaration to fix (the binding's value map), so the
    record is refused with the reason, before any write; the fulfillment is not made half-way."""
    shopify = connector("shop")
    shipment = {"order_id": "1004", "tracking_company": "DHL", "tracking_number": "0034", "shipment_status": "shipped"}
    with pytest.raises(PermanentError, match=r"shipment_status 'shipped' is no Shopify FulfillmentEventStatus .*"
                                             r"map it in the binding's values"):
        shopify.upsert("fulfillments", None, shipment)
    assert "1004" not in shopify.index("fulfillments", "order_id")


def test_an_orders_delete_webhook_names_the_deleted_order(connector):
    shopify = connector("shop")
    assert shopify.announced_deletion("orders", "orders/delete", {"id": 820982911946154508}) == {"id": 820982911946154508}
    assert shopify.announced_deletion("orders", "orders/updated", {"id": 1}) is None  # read from the API
    assert shopify.announced_deletion("products", "orders/delete", {"id": 1}) is None
    assert shopify.announced_deletion("orders", "orders/delete", {"id": None}) is None
    assert shopify.announced_deletion("orders", "orders/delete", ["not", "a", "body"]) is None


def test_a_token_is_obtained_reused_and_fetched_again_on_401(landscape, env, sandbox):
    shopify, recording = recorded_shop(landscape)
    try:
        list(shopify.scan("products"))
        list(shopify.scan("products"))
        tokens = [e for e in recording.exchanges if e.request.url.path == "/admin/oauth/access_token"]
        assert len(tokens) == 1 and set(tokens[0].response.json()) == {"access_token", "scope", "expires_in"}
        sent = dict(httpx.QueryParams(tokens[0].request.content.decode()))
        assert sent["grant_type"] == "client_credentials" and sent["client_id"] == env["SHOP_CLIENT_ID"]
        first = tokens[0].response.json()["access_token"]
        calls = [e for e in recording.exchanges if e.request.url.path.endswith("/graphql.json")]
        assert calls and all(e.request.headers["x-shopify-access-token"] == first for e in calls)
        with client(sandbox, "shop") as http:
            http.delete("/_sandbox/tokens").raise_for_status()  # revoked (a rotated secret, say)
        list(shopify.scan("products"))
        statuses = [e.response.status_code for e in recording.exchanges]
        assert 401 in statuses and statuses[-1] == 200
        again = [e for e in recording.exchanges if e.request.url.path == "/admin/oauth/access_token"]
        assert len(again) == 2 and again[1].response.json()["access_token"] != first
    finally:
        shopify.close()


def test_a_token_is_fetched_again_before_it_expires(landscape, env, tmp_path):
    """A 2-second token is taken as expired after 1 s: the next call fetches another first, no 401."""
    from integration_sandbox.testing import free_port_sandbox

    with free_port_sandbox(tmp_path, ["shop"], seed=3, size=5, options={"shop": {"token_ttl_seconds": 2}}) as sb, \
            pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHOP_BASE_URL", sb.url("shop"))
        shopify, recording = recorded_shop(landscape)
        try:
            list(shopify.scan("products"))
            deadline = shopify.http.auth.expires  # type: ignore[union-attr]
            while time.monotonic() < deadline:  # the condition the connector checks, not a guess
                time.sleep(0.05)
            list(shopify.scan("products"))
        finally:
            shopify.close()
    paths = [(e.request.url.path.rsplit("/", 1)[-1], e.response.status_code) for e in recording.exchanges]
    assert paths.count(("access_token", 200)) == 2 and all(status == 200 for _, status in paths)


def test_a_wrong_client_secret_is_a_clear_error_without_the_secret(connector, monkeypatch):
    monkeypatch.setenv("SHOP_CLIENT_SECRET", "wrong-shop-secret")
    with pytest.raises(PermanentError, match=r"token request to /admin/oauth/access_token: HTTP 400 "
                                             r"\(invalid_client\): Client authentication failed") as err:
        drain(connector("shop"), "orders", None)
    assert "wrong-shop-secret" not in str(err.value)


def test_a_throttled_write_is_waited_out_and_lands_exactly_once(landscape, env, sandbox):
    """The bucket emptied and refilling at 40 points a second: a mutation (10 points) is THROTTLED,
    waited for (cost - available) / restore rate, and then applied once."""
    shopify, recording = recorded_shop(landscape)
    new = {"title": "Throttled Gear", "variants": {"0": {"sku": "SKU-THROTTLE", "price": "4.00"}}}
    try:
        list(shopify.scan("products"))  # token and connections ready before the bucket is drained
        with client(sandbox, "shop") as http:
            http.put("/_sandbox/throttle", json={"currentlyAvailable": 0, "restoreRate": 40}).raise_for_status()
        try:
            created = shopify.upsert("products", None, new)
        finally:
            with client(sandbox, "shop") as http:
                http.put("/_sandbox/throttle", json={"currentlyAvailable": 2000, "restoreRate": 100}).raise_for_status()
        answers = [e.response.json() for e in recording.exchanges if e.request.url.path.endswith("graphql.json")
                   and b"productSet" in e.request.content]
        throttled = [a for a in answers if a.get("errors")]
        assert throttled and throttled[0]["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert throttled[0]["extensions"]["cost"]["throttleStatus"]["restoreRate"] == 40
        assert answers[-1]["data"]["productSet"]["product"]["legacyResourceId"] == created
        assert shopify.retries() >= 1
    finally:
        shopify.close()
    with client(sandbox, "shop") as http:
        same = [p for p in shop_all(http, "products", PRODUCT) if p["variants"]["nodes"][0]["sku"] == "SKU-THROTTLE"]
    assert [p["legacyResourceId"] for p in same] == [created]


def test_a_graphql_error_is_permanent_and_a_throttle_transient():
    from integration_project.connectors.shopify import judge, refill
    from integration_project.connectors.http import Reply
    from integration_project.errors import TransientError

    request = httpx.Request("POST", "https://shop.example/admin/api/2026-10/graphql.json")
    throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                 "extensions": {"cost": {"requestedQueryCost": 500, "throttleStatus": {
                     "maximumAvailable": 2000.0, "currentlyAvailable": 300.0, "restoreRate": 100.0}}}}
    assert refill(throttled) == 2.0
    with pytest.raises(TransientError) as err:
        judge(Reply(httpx.Response(200, request=request), throttled))
    assert err.value.unsent and err.value.retry_after == 2.0
    refused = {"errors": [{"message": "Field 'x' doesn't exist on type 'Order'"}]}
    with pytest.raises(PermanentError, match="doesn't exist"):
        judge(Reply(httpx.Response(200, request=request), refused))


class LoseFirstAnswer(Recording):
    """Sends every request on to the sandbox, but loses the answer to the first one naming
    `operation` (the shop acted; the connector sees a timeout), as a network would."""

    def __init__(self, operation: bytes):
        super().__init__()
        self.operation, self.lost = operation, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not self.lost and self.operation in request.content:
            self.lost += 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


@pytest.mark.parametrize("operation", [b"productSet", b"fulfillmentCreate", b"inventorySetQuantities"])
def test_a_write_whose_answer_was_lost_lands_once(landscape, env, sandbox, operation):
    from integration_project.connectors import Ours

    declared = landscape.systems["shop"]
    assert declared.api is not None
    transport = LoseFirstAnswer(operation)
    shopify = Shopify(declared.api, transport=transport)
    try:
        if operation == b"productSet":
            new = {"title": "Lost Gear", "variants": {"0": {"sku": "SKU-LOST", "price": "6.00"}}}
            made = shopify.upsert("products", None, new, Ours("variants.0.sku", "SKU-LOST"))
            with client(sandbox, "shop") as http:
                same = [p["legacyResourceId"] for p in shop_all(http, "products", PRODUCT)
                        if p["variants"]["nodes"][0]["sku"] == "SKU-LOST"]
            assert same == [made]
        elif operation == b"fulfillmentCreate":
            shipment = {"order_id": "1007", "tracking_company": "GLS", "tracking_number": "LOST-1"}
            assert shopify.upsert("fulfillments", None, shipment) == "1007"
            with client(sandbox, "shop") as http:
                order = shop_graphql(http, """{ order(id: "gid://shopify/Order/1007") {
                    fulfillments(first: 5) { trackingInfo { number } } } }""")["order"]
            assert order["fulfillments"] == [{"trackingInfo": [{"number": "LOST-1"}]}]
        else:
            stock = {"variants": {"0": {"sku": "SKU-000006", "inventory_quantity": 17}}}
            shop_id = shopify.upsert("variants", None, stock)
            sets = [e.response.json()["data"]["inventorySetQuantities"] for e in transport.exchanges
                    if operation in e.request.content]
            assert len(sets) == 2 and sets[0] == sets[1]  # the same key: the second call is the first's answer
            assert product(sandbox, shop_id)["variants"]["nodes"][0]["inventoryQuantity"] == 17
        assert transport.lost == 1 and shopify.retries() >= 1
    finally:
        shopify.close()


def test_stock_is_set_only_with_an_idempotency_key_and_a_compare_quantity(sandbox):
    """Shopify's rules since 2026-04: `@idempotent(key:)` on the mutation and `changeFromQuantity` on
    every quantity (null opts out of the compare); a stale one is refused."""
    from integration_project.connectors.shopify import SET_STOCK

    # the connector's own mutation, asking for the error codes too (each must be one of the schema's)
    document = SET_STOCK.replace("userErrors { field message }", "userErrors { field message code }")
    quantity = {"inventoryItemId": "gid://shopify/InventoryItem/8", "locationId": "gid://shopify/Location/1",
                "quantity": 3}
    stock = {"name": "available", "reason": "correction", "quantities": [quantity]}
    with client(sandbox, "shop") as http:
        def answer(text: str, **variables) -> dict:
            return http.post(SHOP_GRAPHQL, json={"query": text, "variables": variables}).json()

        keyless = answer(document.replace(" @idempotent(key: $key)", "").replace(", $key: String!", ""), input=stock)
        assert "@idempotent directive is required" in keyless["errors"][0]["message"]
        omitted = answer(document, input=stock, key="k-1")["data"]["inventorySetQuantities"]
        assert omitted["userErrors"][0]["code"] == "COMPARE_QUANTITY_REQUIRED"
        stale = answer(document, input={**stock, "quantities": [{**quantity, "changeFromQuantity": 999_999}]},
                       key="k-2")["data"]["inventorySetQuantities"]
        assert stale["userErrors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
        done = answer(document, input={**stock, "quantities": [{**quantity, "changeFromQuantity": None}]},
                      key="k-3")["data"]["inventorySetQuantities"]
        assert done["userErrors"] == [] and done["inventoryAdjustmentGroup"]["id"]
        on_variant = answer("""mutation($id: ID!, $variants: [ProductVariantsBulkInput!]!) {
            productVariantsBulkUpdate(productId: $id, variants: $variants) { userErrors { code } } }""",
                            id="gid://shopify/Product/8", variants=[{"id": "gid://shopify/ProductVariant/8",
                                                                     "inventoryQuantities": [{
                                                                         "availableQuantity": 3,
                                                                         "locationId": "gid://shopify/Location/1"}]}])
        assert on_variant["data"]["productVariantsBulkUpdate"]["userErrors"] == [
            {"code": "NO_INVENTORY_QUANTITIES_ON_VARIANTS_UPDATE"}]  # stock is no longer the variant's


def test_a_pinned_version_answered_in_a_newer_one_is_reported_naming_both(connector, sandbox):
    """Shopify answers a pinned version it no longer supports in a newer one, saying so only in
    `X-Shopify-API-Version`: the connector reports it among its deprecations, naming both versions,
    and reports nothing while the shop serves the pinned version."""
    shopify = connector("shop")
    list(shopify.scan("products"))
    assert shopify.deprecations() == {}  # served as pinned: nothing to say
    with client(sandbox, "shop") as http:
        http.put("/_sandbox/api-version", json={"served": "2027-01"}).raise_for_status()
    try:
        list(shopify.scan("products"))
    finally:
        with client(sandbox, "shop") as http:
            assert http.put("/_sandbox/api-version", json={"served": None}).json()["served"] == "2026-10"
    said = shopify.deprecations()["POST /admin/api/2026-10/graphql.json"]
    assert "X-Shopify-API-Version: 2027-01" in said and "pinned 2026-10" in said


def cost(recording: Recording) -> float:
    """The query points the shop's bucket was charged for the calls recorded."""
    return sum(e.response.json()["extensions"]["cost"]["requestedQueryCost"] for e in recording.exchanges
               if e.request.url.path.endswith("/graphql.json"))


def test_a_few_orders_are_fetched_one_search_each_not_by_a_scan_of_the_shop(landscape, env, sandbox):
    """A DLQ replay reads its handful of orders again: one `id:` search each (an unknown id finds
    none), the same records a scan gives, at a small part of the cost points a scan of the shop
    spends (which, on a real shop, waits out the cost bucket page after page)."""
    shopify, recording = recorded_shop(landscape)
    try:
        scanned = {str(o["id"]): o for o in shopify.scan("orders")}
        scan_cost = cost(recording)
        wanted = sorted(scanned)[:2]
        recording.exchanges.clear()
        found = shopify.fetch("orders", "id", {*wanted, "999999999"})
        calls = [e for e in recording.exchanges if e.request.url.path.endswith("/graphql.json")]
    finally:
        shopify.close()
    assert sorted(str(o["id"]) for o in found) == wanted
    assert {str(o["id"]): o for o in found} == {i: scanned[i] for i in wanted}
    assert len(calls) == 3 and cost(recording) * 5 < scan_cost, (cost(recording), scan_cost)
    assert sorted(json.loads(e.request.content)["variables"]["query"] for e in calls) == \
        sorted(f"id:{i}" for i in [*wanted, "999999999"])
