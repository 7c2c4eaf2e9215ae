"""Shopify's GraphQL Admin API: orders and products read by `updated_at`; products, variant stock and
fulfillments written by mutations; a query's cost waited for when the shop's bucket is short of it.
A deleted order is known only from its `orders/delete` webhook (`announced_deletion`).

Records come out in the shape of Shopify's REST resources (`total_price`, `line_items`, `variants`),
the shape its webhooks still post, so one binding mapping reads both.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from integration_project.connectors.base import HttpConnector, Ours, Page
from integration_project.connectors.http import MAX_RETRY_AFTER, Reply, server_time
from integration_project.errors import PermanentError, TransientError
from integration_project.model import Api
from integration_project.model.mapping import get_path

PAGE = 20  # orders or products a page: with their lines or variants well under the 1,000-point query limit
LINES = 10  # line items of each order a page reads; an order with more has the rest read on its own
MAX_FIRST = 250  # Shopify's largest page of any connection
FETCH_EACH = 50  # orders up to this many are fetched one search each, more by a scan

ORDER = """id legacyResourceId name email createdAt updatedAt currencyCode
  totalPriceSet { shopMoney { amount } } displayFinancialStatus displayFulfillmentStatus
  shippingAddress { countryCodeV2 name }
  lineItems(first: $lines) { nodes { ...line } pageInfo { hasNextPage endCursor } }
  fulfillments(first: 5) { id legacyResourceId status displayStatus trackingInfo(first: 1) { company number } }"""
LINE = "fragment line on LineItem { id sku title quantity originalUnitPriceSet { shopMoney { amount } } }"
PRODUCT = """id legacyResourceId title vendor status createdAt updatedAt
  variants(first: 10) { nodes { id legacyResourceId sku price inventoryQuantity inventoryItem { id } } }"""
LISTS = {
    "orders": f"""query Orders($first: Int!, $after: String, $query: String, $lines: Int!) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    nodes {{ {ORDER} }} pageInfo {{ hasNextPage endCursor }} }} }}
{LINE}""",
    "products": f"""query Products($first: Int!, $after: String, $query: String) {{
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    nodes {{ {PRODUCT} }} pageInfo {{ hasNextPage endCursor }} }} }}""",
}
MORE_LINES = f"""query Lines($id: ID!, $after: String) {{
  order(id: $id) {{ lineItems(first: {MAX_FIRST}, after: $after) {{ nodes {{ ...line }} pageInfo {{ hasNextPage endCursor }} }} }} }}
{LINE}"""
EVENTS = """query Events($first: Int!, $after: String) {
  events(first: $first, after: $after, query: "subject_type:ORDER AND action:update") {
    nodes { ... on BasicEvent { subjectId } } pageInfo { hasNextPage endCursor } } }"""
VARIANTS = """query Variants($id: ID!) {
  product(id: $id) { variants(first: 1) { nodes { id inventoryItem { id } } } } }"""
LOCATION = "query Location { locations(first: 1) { nodes { id } } }"
FULFILLMENTS = """query Fulfillments($id: ID!) {
  order(id: $id) { fulfillments(first: 1) { id displayStatus trackingInfo(first: 1) { company number } }
    fulfillmentOrders(first: 10) { nodes { id status } } } }"""
ERRORS = "userErrors { field message }"
CREATE_PRODUCT = f"""mutation CreateProduct($input: ProductSetInput!) {{
  productSet(input: $input, synchronous: true) {{ product {{ id legacyResourceId }} {ERRORS} }} }}"""
UPDATE_PRODUCT = f"""mutation UpdateProduct($product: ProductUpdateInput!) {{
  productUpdate(product: $product) {{ product {{ id }} {ERRORS} }} }}"""
UPDATE_VARIANTS = f"""mutation UpdateVariants($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {{
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {{ productVariants {{ id }} {ERRORS} }} }}"""
SET_STOCK = f"""mutation SetStock($input: InventorySetQuantitiesInput!, $key: String!) {{
  inventorySetQuantities(input: $input) @idempotent(key: $key) {{ inventoryAdjustmentGroup {{ id }} {ERRORS} }} }}"""
FULFIL = f"""mutation Fulfil($fulfillment: FulfillmentInput!) {{
  fulfillmentCreate(fulfillment: $fulfillment) {{ fulfillment {{ id }} {ERRORS} }} }}"""
TRACK = f"""mutation Track($id: ID!, $tracking: FulfillmentTrackingInput!) {{
  fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $tracking, notifyCustomer: false) {{
    fulfillment {{ id }} {ERRORS} }} }}"""
EVENT = f"""mutation Event($event: FulfillmentEventInput!) {{
  fulfillmentEventCreate(fulfillmentEvent: $event) {{ fulfillmentEvent {{ id }} {ERRORS} }} }}"""

# A fulfillment's shipment status: Shopify's fulfillment event statuses (REST's `shipment_status`).
SHIPMENT_STATUSES = frozenset({"attempted_delivery", "carrier_picked_up", "confirmed", "delayed", "delivered",
                               "failure", "in_transit", "label_printed", "label_purchased", "out_for_delivery",
                               "ready_for_pickup"})
# Webhook topics announcing a delete the API cannot list afterwards: deletionEvents covers only
# products and collections, and a deleted order leaves no Event either. The body is `{"id": <REST id>}`.
DELETE_TOPICS = {"orders/delete": "orders"}
PRODUCT_FIELDS = {"title": "title", "vendor": "vendor", "status": "status", "product_type": "productType"}
DEFAULT_OPTION = {"optionName": "Title", "name": "Default Title"}  # a product without options has this one


def gid(kind: str, legacy_id: str | int) -> str:
    """Shopify's global id of a resource known by its numeric (REST) id."""
    return f"gid://shopify/{kind}/{legacy_id}"


def legacy(global_id: str) -> str:
    """The numeric (REST) id inside a global id."""
    return global_id.rsplit("/", 1)[-1]


def judge(reply: Reply) -> None:
    """Raise what a GraphQL answer's top-level `errors` mean: THROTTLED is a wait for the bucket to
    refill (the query was not run), an internal error a retry, anything else permanent."""
    body = reply.body
    errors = body.get("errors") if isinstance(body, dict) else None
    where = f"POST {reply.response.request.url.path}"
    if not errors:
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise TransientError(f"{where}: an answer without data")
        return
    listed: list[Any] = errors if isinstance(errors, list) else [{"message": str(errors)}]
    codes = {(e.get("extensions") or {}).get("code") for e in listed if isinstance(e, dict)}
    said = "; ".join(str(e.get("message") if isinstance(e, dict) else e) for e in listed)[:500]
    if "THROTTLED" in codes:
        raise TransientError(f"{where}: throttled", retry_after=refill(body), unsent=True)
    if "INTERNAL_SERVER_ERROR" in codes:
        raise TransientError(f"{where}: {said}")
    raise PermanentError(f"{where}: {said}")


def refill(body: dict[str, Any]) -> float | None:
    """Seconds until the bucket holds the query's cost: (cost - available) / restore rate."""
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        short = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
        return max(short, 0.0) / float(status["restoreRate"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


class Bucket:
    """The shop's cost bucket as its answers report it, shared by the connector's threads: a document
    is sent once the points it cost last time are likely back, so concurrent writes pace themselves
    instead of being throttled (a throttle is still waited out)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._available: float | None = None  # unknown until the first answer
        self._maximum = self._restore = 0.0
        self._at = 0.0
        self._costs: dict[str, float] = {}  # document -> its requested cost last time

    def reserve(self, document: str) -> float:
        """Seconds to wait before sending this document (its cost is taken from the estimate now)."""
        with self._lock:
            need = self._costs.get(document, 0.0)
            if self._available is None or not need or self._restore <= 0:
                return 0.0
            now = time.monotonic()
            level = min(self._maximum, self._available + (now - self._at) * self._restore)
            self._available, self._at = level - need, now
            return max(need - level, 0.0) / self._restore

    def note(self, document: str, body: Any) -> None:
        """What an answer says: the document's cost and the bucket's level now."""
        cost = (body.get("extensions") or {}).get("cost") if isinstance(body, dict) else None
        status = (cost or {}).get("throttleStatus")
        if not cost or not status:
            return
        with self._lock:
            self._costs[document] = float(cost.get("requestedQueryCost") or 0)
            self._available = float(status["currentlyAvailable"])
            self._maximum, self._restore = float(status["maximumAvailable"]), float(status["restoreRate"])
            self._at = time.monotonic()


def _money(bag: dict[str, Any] | None) -> str | None:
    return (bag or {}).get("shopMoney", {}).get("amount")


def _line(node: dict[str, Any]) -> dict[str, Any]:
    return {"id": int(legacy(node["id"])), "sku": node["sku"], "title": node["title"],
            "quantity": node["quantity"], "price": _money(node["originalUnitPriceSet"])}


def _fulfillment(node: dict[str, Any]) -> dict[str, Any]:
    tracking = (node.get("trackingInfo") or [{}])[0] if node.get("trackingInfo") else {}
    shown = (node.get("displayStatus") or "").lower()
    return {"id": int(node["legacyResourceId"]), "status": node["status"].lower(),
            "tracking_company": tracking.get("company"), "tracking_number": tracking.get("number"),
            "shipment_status": shown if shown in SHIPMENT_STATUSES else None}


def _order(node: dict[str, Any]) -> dict[str, Any]:
    address = node.get("shippingAddress")
    fulfilled = {"UNFULFILLED": None, "FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}
    status = node["displayFulfillmentStatus"]
    return {"id": int(node["legacyResourceId"]), "admin_graphql_api_id": node["id"], "name": node["name"],
            "email": node["email"], "currency": node["currencyCode"], "total_price": _money(node["totalPriceSet"]),
            "financial_status": (node.get("displayFinancialStatus") or "").lower() or None,
            "fulfillment_status": fulfilled.get(status, status.lower()),
            "shipping_address": address and {"country_code": address.get("countryCodeV2"), "name": address.get("name")},
            "line_items": [_line(n) for n in node["lineItems"]["nodes"]],
            "fulfillments": [_fulfillment(f) for f in node["fulfillments"]],
            "created_at": node["createdAt"], "updated_at": node["updatedAt"]}


def _product(node: dict[str, Any]) -> dict[str, Any]:
    return {"id": int(node["legacyResourceId"]), "admin_graphql_api_id": node["id"], "title": node["title"],
            "vendor": node["vendor"], "status": node["status"].lower(),
            "variants": [{"id": int(v["legacyResourceId"]), "sku": v["sku"], "price": v["price"],
                          "inventory_quantity": v["inventoryQuantity"],
                          "inventory_item_id": int(legacy(v["inventoryItem"]["id"]))} for v in node["variants"]["nodes"]],
            "created_at": node["createdAt"], "updated_at": node["updatedAt"]}


class Shopify(HttpConnector):
    """Orders and products read by modification time; products, variant stock and fulfillments written.

    Lists are sorted by `updated_at`, so each page's cursor is safe: the older of the newest change
    read and the shop's clock when the listing began (a record changed meanwhile moves to the end
    of the listing, and is read again next time). Every call is a POST of one GraphQL document.
    """

    extracts = frozenset({"orders", "products"})
    loads = frozenset({"products", "variants", "fulfillments"})
    deprecation_headers = ("X-Shopify-API-Deprecated-Reason",)  # a call to a deprecated endpoint or field
    version_header = "X-Shopify-API-Version"  # a pinned version out of support is answered in a newer one

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None):
        super().__init__(api, transport)
        self.endpoint = f"/admin/api/{api.version}/graphql.json"
        self._by_sku: dict[str, str] | None = None
        self._location: str | None = None
        self._lock = threading.Lock()  # the SKU index and the location are read once, by one thread
        self.bucket = Bucket()

    def post(self, query: str, variables: dict[str, Any] | None = None, *, idempotent: bool = True,
             recover: Callable[[], Reply | None] | None = None) -> Reply:
        """One GraphQL document sent when the bucket likely holds its cost; throttles waited out,
        errors raised (`judge`)."""
        if (pause := self.bucket.reserve(query)) > 0:
            time.sleep(min(pause, MAX_RETRY_AFTER))
        reply = self.http.request("POST", self.endpoint, json={"query": query, "variables": variables or {}},
                                  idempotent=idempotent, recover=recover, judge=judge)
        self.bucket.note(query, reply.body)
        return reply

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """A query's data."""
        data: dict[str, Any] = self.post(query, variables).body["data"]
        return data

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Records changed at or after the cursor, by `updated_at`; every page carries a safe cursor."""
        if resource not in LISTS:
            raise NotImplementedError(f"Shopify cannot extract {resource}")
        variables: dict[str, Any] = {"first": PAGE, "after": None,
                                     "query": f"updated_at:>='{since}'" if since else None}
        if resource == "orders":
            variables["lines"] = LINES
        began: datetime | None = None
        newest = datetime.fromisoformat(since) if since else None
        while True:
            reply = self.post(LISTS[resource], variables)
            began = began or server_time(reply.response) - timedelta(seconds=1)
            listing = reply.body["data"][resource]
            records = [self._whole_order(n) if resource == "orders" else _product(n) for n in listing["nodes"]]
            for record in records:
                changed = datetime.fromisoformat(record["updated_at"])
                newest = changed if newest is None else max(newest, changed)
            yield Page(records, min(newest, began).isoformat() if newest else since)
            if not listing["pageInfo"]["hasNextPage"]:
                return
            variables["after"] = listing["pageInfo"]["endCursor"]

    def fetch(self, resource: str, id_path: str, ids: set[str]) -> list[dict[str, Any]]:
        """A few orders by their id, each its own `id:` search (a DLQ replay's handful, where a scan
        of the whole shop waits out the cost bucket page after page); anything else as scanned."""
        if resource != "orders" or id_path != "id" or len(ids) > FETCH_EACH or not all(i.isdigit() for i in ids):
            return super().fetch(resource, id_path, ids)
        found = []
        for order_id in sorted(ids):
            nodes = self.query(LISTS["orders"], {"first": 1, "after": None, "query": f"id:{order_id}",
                                                 "lines": LINES})["orders"]["nodes"]
            found += [self._whole_order(n) for n in nodes if legacy(n["id"]) == order_id]
        return found

    def _whole_order(self, node: dict[str, Any]) -> dict[str, Any]:
        """An order with every line item (the lines past the page's `LINES` read on their own)."""
        lines = node["lineItems"]
        while lines["pageInfo"]["hasNextPage"]:
            more = self.query(MORE_LINES, {"id": node["id"], "after": lines["pageInfo"]["endCursor"]})
            lines = {"nodes": lines["nodes"] + more["order"]["lineItems"]["nodes"],
                     "pageInfo": more["order"]["lineItems"]["pageInfo"]}
        return _order({**node, "lineItems": lines})

    def announced_deletion(self, resource: str, event_type: str, payload: Any) -> dict[str, Any] | None:
        """The order an `orders/delete` webhook names (`{"id": ...}`), in the shape `pages` gives orders."""
        if DELETE_TOPICS.get(event_type) != resource or not isinstance(payload, dict):
            return None
        found = payload.get("id")
        if isinstance(found, bool) or not isinstance(found, (int, str)) or not str(found).isdigit():
            return None  # not the shape Shopify posts: nothing to delete by
        return {"id": int(found)}

    def versions(self, resource: str, paths: Sequence[str]) -> Iterator[tuple[dict[str, Any], dict[str, int]]]:
        """Orders with how many versions each has had (`*`: the whole order; Shopify's events say
        that an order was edited, not which field), other resources without history."""
        if resource != "orders":
            yield from super().versions(resource, paths)
            return
        updates: Counter[int] = Counter()
        variables: dict[str, Any] = {"first": MAX_FIRST, "after": None}
        while True:
            events = self.query(EVENTS, variables)["events"]
            updates.update(int(legacy(e["subjectId"])) for e in events["nodes"] if e.get("subjectId"))
            if not events["pageInfo"]["hasNextPage"]:
                break
            variables["after"] = events["pageInfo"]["endCursor"]
        for record in self.scan(resource):
            yield record, {"*": 1 + updates[record["id"]]}

    def scan(self, resource: str) -> Iterator[dict[str, Any]]:
        """Every record as it is now; the resources written read back in the shape written: variant
        stock as the products, fulfillments as each order's first (with its `order_id`)."""
        if resource == "variants":
            resource = "products"
        if resource != "fulfillments":
            yield from super().scan(resource)
            return
        for order in self.scan("orders"):
            if order["fulfillments"]:
                yield {**order["fulfillments"][0], "order_id": order["id"]}

    @classmethod
    def refused_value(cls, resource: str, path: str, value: str) -> str | None:
        """A fulfillment's shipment status must be one of Shopify's `FulfillmentEventStatus` values."""
        if resource == "fulfillments" and path == "shipment_status" and value.lower() not in SHIPMENT_STATUSES:
            return f"{value!r} is no Shopify FulfillmentEventStatus (one of {', '.join(sorted(SHIPMENT_STATUSES))})"
        return None

    def normal(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        """A fulfillment keeps a shipment status only as one of Shopify's fulfillment events (`_fulfil`)."""
        if resource != "fulfillments":
            return record
        status = str(record.get("shipment_status") or "").lower()
        return {**record, "shipment_status": status if status in SHIPMENT_STATUSES else None}

    def index(self, resource: str, id_path: str) -> dict[str, str]:
        """Our id -> shop id: products and variants by `id_path` (the SKU), fulfillments by order."""
        if resource == "fulfillments":  # an order's fulfillment is known by the order's id
            return {str(o["id"]): str(o["id"]) for o in self.scan("orders") if o["fulfillments"]}
        return {str(get_path(p, id_path)): str(p["id"]) for p in self.scan("products")
                if get_path(p, id_path) is not None}

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """Write a product (or only its variant's stock), or an order's fulfillment; returns the shop id."""
        if resource == "fulfillments":
            return self._fulfil(payload)
        variant = dict(payload.get("variants", {}).get("0", {}))
        fields = {k: v for k, v in payload.items() if k != "variants"}
        if resource == "variants":
            return self._stock(external_id, variant)
        if external_id is None:  # not idempotent: after a lost answer the product is found by SKU first
            found: list[str] = []

            def update(shop_id: str) -> Reply:
                found.append(shop_id)
                return self._update(shop_id, fields, variant)

            reply = self.post(CREATE_PRODUCT, {"input": self._product_set(fields, variant)},
                              idempotent=False, recover=self.recovery(resource, ours, update))
            return found[-1] if found else legacy(self._mutated(reply, "productSet")["product"]["id"])
        self._update(external_id, fields, variant)
        return external_id

    def _mutated(self, reply: Reply, field: str) -> dict[str, Any]:
        """A mutation's payload; its `userErrors` are the shop refusing the record (permanent)."""
        payload = reply.body["data"].get(field)
        if payload is None:
            raise PermanentError(f"{field}: the shop answered no result")
        problems = payload.get("userErrors") or []
        if problems:
            said = "; ".join(f"{'.'.join(p.get('field') or [])}: {p['message']}".lstrip(": ") for p in problems)
            raise PermanentError(f"{field}: {said}"[:500])
        return payload

    @staticmethod
    def _product_fields(fields: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(fields) - set(PRODUCT_FIELDS))
        if unknown:
            raise PermanentError(f"the shop connector cannot write product fields {', '.join(unknown)}")
        return {PRODUCT_FIELDS[k]: (v.upper() if k == "status" and isinstance(v, str) else v)
                for k, v in fields.items()}

    def _product_set(self, fields: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(variant) - {"sku", "price"})
        if unknown:
            raise PermanentError(f"a new product's variant takes sku and price only, not {', '.join(unknown)}")
        return {**self._product_fields(fields),
                "productOptions": [{"name": DEFAULT_OPTION["optionName"], "values": [{"name": DEFAULT_OPTION["name"]}]}],
                "variants": [{"optionValues": [DEFAULT_OPTION], **variant}]}

    def _first_variant(self, product_id: str) -> dict[str, Any]:
        product = self.query(VARIANTS, {"id": gid("Product", product_id)})["product"]
        if product is None or not product["variants"]["nodes"]:
            raise PermanentError(f"no product {product_id} with a variant in the shop")
        return product["variants"]["nodes"][0]

    def _update(self, external_id: str, fields: dict[str, Any], variant: dict[str, Any]) -> Reply:
        """Only the fields sent change: the product's own, then its first variant's price and SKU."""
        reply: Reply | None = None
        if fields:
            reply = self.post(UPDATE_PRODUCT, {"product": {"id": gid("Product", external_id),
                                                           **self._product_fields(fields)}})
            self._mutated(reply, "productUpdate")
        changes = {"price": variant["price"]} if "price" in variant else {}
        if "sku" in variant:
            changes["inventoryItem"] = {"sku": variant["sku"]}
        if changes or reply is None:
            held = self._first_variant(external_id)
            reply = self.post(UPDATE_VARIANTS, {"productId": gid("Product", external_id),
                                                "variants": [{"id": held["id"], **changes}]})
            self._mutated(reply, "productVariantsBulkUpdate")
        return reply

    def _stock(self, external_id: str | None, variant: dict[str, Any]) -> str:
        """The variant's units available at the shop's location set to the number sent (once, by key)."""
        if "inventory_quantity" not in variant:
            raise PermanentError("a stock level needs variants.0.inventory_quantity")
        with self._lock:
            if external_id is None:
                if self._by_sku is None:
                    self._by_sku = self.index("variants", "variants.0.sku")
                external_id = self._by_sku.get(str(variant.get("sku")))
            if self._location is None and external_id is not None:
                locations = self.query(LOCATION)["locations"]["nodes"]
                if not locations:
                    raise PermanentError("the shop has no location to keep stock at")
                self._location = locations[0]["id"]
        if external_id is None:
            raise PermanentError(f"no product with SKU {variant.get('sku')} in the shop yet")
        item = self._first_variant(external_id)["inventoryItem"]["id"]
        quantity = {"inventoryItemId": item, "locationId": self._location,
                    "quantity": int(variant["inventory_quantity"]), "changeFromQuantity": None}
        # the key makes a repeat of this write (after a lost answer) a no-op at Shopify
        reply = self.post(SET_STOCK, {"input": {"name": "available", "reason": "correction", "quantities": [quantity]},
                                      "key": str(uuid.uuid4())})
        self._mutated(reply, "inventorySetQuantities")
        return external_id

    def _fulfil(self, payload: dict[str, Any]) -> str:
        """The order's open fulfillment orders fulfilled with the tracking sent, or the tracking of its
        fulfillment updated; a shipment status sent becomes a fulfillment event. It must be one of
        Shopify's (`SHIPMENT_STATUSES`): a binding translates its own with a value map."""
        order = str(payload["order_id"])
        tracking = {k: v for k, v in (("company", payload.get("tracking_company")),
                                      ("number", payload.get("tracking_number"))) if v}
        status = str(payload.get("shipment_status") or "").lower()
        if status and (why := self.refused_value("fulfillments", "shipment_status", status)):
            raise PermanentError(f"shipment_status {why}: map it in the binding's values")

        def held() -> dict[str, Any]:
            found = self.query(FULFILLMENTS, {"id": gid("Order", order)})["order"]
            if found is None:
                raise PermanentError(f"no order {order} in the shop")
            return found

        def existing(fulfillment: dict[str, Any]) -> Reply | None:
            if not tracking or fulfillment["trackingInfo"][:1] == [tracking]:
                return None
            reply = self.post(TRACK, {"id": fulfillment["id"], "tracking": tracking})
            self._mutated(reply, "fulfillmentTrackingInfoUpdate")
            return reply

        found: list[dict[str, Any]] = []

        def recover() -> Reply | None:  # a lost answer: the fulfillment is there if it was made
            found[:] = held()["fulfillments"][:1]
            return (existing(found[0]) or self.post(FULFILLMENTS, {"id": gid("Order", order)})) if found else None

        current = held()
        shown = ""
        if current["fulfillments"]:
            fulfillment_id, shown = current["fulfillments"][0]["id"], current["fulfillments"][0]["displayStatus"]
            existing(current["fulfillments"][0])
        else:
            open_ = [f["id"] for f in current["fulfillmentOrders"]["nodes"] if f["status"] in ("OPEN", "IN_PROGRESS")]
            if not open_:
                raise PermanentError(f"order {order} has no open fulfillment order to fulfil")
            fulfillment = {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": f} for f in open_],
                           "notifyCustomer": False, **({"trackingInfo": tracking} if tracking else {})}
            reply = self.post(FULFIL, {"fulfillment": fulfillment}, idempotent=False, recover=recover)
            if found:
                fulfillment_id, shown = found[0]["id"], found[0]["displayStatus"]
            else:
                fulfillment_id = self._mutated(reply, "fulfillmentCreate")["fulfillment"]["id"]
        if status and status != str(shown or "").lower():  # events only add up
            reply = self.post(EVENT, {"event": {"fulfillmentId": fulfillment_id, "status": status.upper()}})
            self._mutated(reply, "fulfillmentEventCreate")
        return order
