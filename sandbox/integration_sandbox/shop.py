"""The sandbox shop (Shopify-like): the GraphQL Admin API 2026-10 at `/admin/api/2026-10/graphql.json`
for the orders, products, stock, fulfillments and events the connector reads and writes (`orderDelete`
deletes an order for good: only its `orders/delete` webhook, posting `{"id": ...}`, tells).

Every document is validated and executed by graphql-core against Shopify's published schema (the
kept introspection result), so a query the schema refuses gets Shopify's `errors` and an answer
conforms by construction; each is charged its calculated cost on a leaky bucket (options
`bucket_size`, default 2000, and `restore_rate`, 100 points a second; `PUT /_sandbox/throttle`
changes them live), THROTTLED when short. Tokens: the client-credentials grant at
`POST /admin/oauth/access_token` (client id `sandbox`, the system's token as secret; option
`token_ttl_seconds`, default 86,399), or the static `shpat_` token of an admin-created app, in
`X-Shopify-Access-Token`. Every answer of the API names the version that served it in
`X-Shopify-API-Version`, as Shopify does; Shopify answers a pinned version it no longer supports in
the oldest supported one, silently but for that header: option `served_version` (or
`PUT /_sandbox/api-version {"served": "2027-01"}`, null for the pinned one again) makes the shop
name another version there, as if 2026-10 had gone out of support (the answers keep 2026-10's
schema, the only one kept). Webhooks post the REST resource shapes, signed Shopify style (base64
HMAC of the body in `X-Shopify-Hmac-Sha256`, with `X-Shopify-Topic` and `X-Shopify-Webhook-Id`).
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from graphql import GraphQLError, GraphQLResolveInfo
from graphql.execution.values import get_argument_values
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import _fake
from ._app import BadRequest, iso_local, iso_utc, now_ms, parse_body, parse_time, sandbox_app
from ._config import SystemConfig
from ._graphql import Bucket, Endpoint, load_schema
from ._oauth import TokenIssuer
from ._store import Record, Store, objects
from ._webhooks import event, signer

VERSION = "2026-10"
SCHEMA = "shopify_admin_2026-10"
PROBLEM_RATES = {"missing_email": 0.03, "invalid_email": 0.03, "updated_twice": 0.04}
LOCATION = "gid://shopify/Location/1"  # the shop's one location, where every variant's stock is kept
REASONS = frozenset({"correction", "cycle_count_available", "damaged", "movement_created", "movement_updated",
                     "movement_received", "movement_canceled", "other", "promotion", "quality_control",
                     "received", "reservation_created", "reservation_deleted", "reservation_updated",
                     "restock", "safety_stock", "shrinkage"})


def error_body(status: int, message: str) -> dict[str, Any]:
    """Shopify's error shapes."""
    if status == 401:
        return {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    if status == 404:
        return {"errors": "Not Found"}
    return {"errors": message}


def token_answer(token: str, ttl: int) -> dict[str, Any]:
    """Shopify's answer to the client-credentials grant."""
    return {"access_token": token, "scope": "read_orders,write_orders,read_products,write_products,"
            "read_inventory,write_inventory,write_merchant_managed_fulfillment_orders", "expires_in": ttl}


def seed(store: Store, seed_: int, size: int) -> dict[str, Any]:
    """`size` orders over the catalogue's products; returns the seed report."""
    rng = random.Random(seed_ + 4)
    products = _fake.product_count(size)
    order_ids = range(1001, 1001 + size)
    problems = _fake.pick_problems(rng, order_ids, PROBLEM_RATES)
    flags = {i: name for name, ids in problems.items() for i in ids}

    events: list[tuple[int, int, str]] = []  # (when, order id, verb), as Shopify's Events API lists them

    def records() -> Iterator[Record]:
        for pid in range(1, 1 + products):
            created = _fake.created_ms(rng)
            yield Record("products", pid, created, created, {
                "title": _fake.product_name(pid), "vendor": "Sandbox Supply", "status": "active",
                "variants": [{"id": pid, "sku": _fake.sku(pid),
                              "price": f"{rng.randrange(5, 500)}.{rng.randrange(100):02d}",
                              "inventory_quantity": rng.randrange(0, 200), "inventory_item_id": pid}]})
        for oid in order_ids:
            p = _fake.person(rng.randrange(101, 101 + size), seed_)
            created = _fake.created_ms(rng)
            updated = created + rng.randrange(1, 3_600_000)
            email: str | None = p.email
            match flags.get(oid):
                case "missing_email":
                    email = None
                case "invalid_email":
                    email = p.email.replace("@example.com", "@example")
                case "updated_twice":  # edited after checkout: an `update` event tells
                    edited = updated + rng.randrange(1, 86_400_000)
                    events.append((edited, oid, "update"))
                    updated = edited
            lines: list[dict[str, Any]] = []
            for n in range(rng.randint(1, 3)):
                pid = rng.randrange(1, 1 + products)
                lines.append({"id": oid * 10 + n, "sku": _fake.sku(pid), "title": _fake.product_name(pid),
                              "quantity": rng.randint(1, 4), "price": f"{rng.randrange(5, 500)}.00", "variant_id": pid})
            total = sum(float(li["price"]) * li["quantity"] for li in lines)
            events.append((created, oid, "create"))
            yield Record("orders", oid, created, updated, {
                "name": f"#{oid}", "email": email, "currency": "EUR", "total_price": f"{total:.2f}",
                "financial_status": rng.choice(["paid", "paid", "pending", "refunded"]), "fulfillment_status": None, "fulfillments": [],
                "customer": {"first_name": p.first, "last_name": p.last, "email": email},
                "shipping_address": {"country_code": p.country, "name": f"{p.first} {p.last}"},
                "line_items": lines})

    store.bulk_insert(records())
    store.bulk_insert(_event(n, oid, verb, ms) for n, (ms, oid, verb) in enumerate(sorted(events), start=1))
    report = {"system": "shop", "seed": seed_, "size": size, "counts": {"orders": size, "products": products},
              "rates": PROBLEM_RATES, "problems": {k: [str(i) for i in v] for k, v in problems.items()}}
    store.set_meta("seed_report", json.dumps(report))
    return report


def _event(event_id: int, order_id: int, verb: str, ms: int) -> Record:
    """An entry of Shopify's Events API about an order: created, or edited afterwards."""
    return Record("events", event_id, ms, ms, {"subject_id": order_id, "subject_type": "Order", "verb": verb,
                                               "message": f"Order #{order_id} was {verb}d."})




def gid(kind: str, legacy_id: int) -> str:
    """A global id."""
    return f"gid://shopify/{kind}/{legacy_id}"


def parse_gid(value: Any, kind: str) -> int | None:
    """The numeric id in a global id of this kind; None for another kind; an error for no global id."""
    match = re.fullmatch(r"gid://shopify/(\w+)/(\d{1,18})", str(value))
    if match is None:
        raise GraphQLError(f"Invalid global id '{value}'", extensions={"code": "argumentLiteralsIncompatible"})
    return int(match.group(2)) if match.group(1) == kind else None


def user_error(field: list[str], message: str, code: str | None = None) -> dict[str, Any]:
    """One of a mutation's `userErrors`."""
    return {"field": field, "message": message, **({"code": code} if code else {})}


def _bag(amount: str, currency: str) -> dict[str, Any]:
    money = {"amount": amount, "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": money}


def _amount(text: Any) -> str | None:
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return None
    return f"{value:.2f}" if value.is_finite() and 0 <= value < 10**9 else None


def _encode(*keys: int) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(keys)).encode()).decode().rstrip("=")


def _decode(cursor: str, size: int) -> list[int]:
    try:
        keys = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(keys, list) and len(keys) == size and all(isinstance(k, int) and 0 <= k < 2**62 for k in keys):
            return keys
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise GraphQLError(f"Invalid cursor for current pagination sort: '{cursor}'", extensions={"code": "BAD_REQUEST"})


def connection(items: list[Any], first: int | None = None, after: str | None = None,
               last: int | None = None, before: str | None = None, **_: Any) -> dict[str, Any]:
    """A connection over a list held in memory (an order's lines, say): cursors are positions."""
    start = _decode(after, 1)[0] + 1 if after else 0
    end = _decode(before, 1)[0] if before else len(items)
    window = list(enumerate(items))[start:end]
    window = window[:first] if first is not None else window[-last:] if last else window
    return {"nodes": [v for _, v in window], "edges": [{"cursor": _encode(i), "node": v} for i, v in window],
            "pageInfo": {"hasNextPage": bool(window) and window[-1][0] + 1 < end,
                         "hasPreviousPage": bool(window) and window[0][0] > start,
                         "startCursor": _encode(window[0][0]) if window else None,
                         "endCursor": _encode(window[-1][0]) if window else None}}


SEARCH = re.compile(r"""(\w+):(>=|<=|>|<)?('[^']*'|"[^"]*"|\S+)""")


def search(text: str | None) -> list[tuple[str, str, str]]:
    """Shopify's search syntax, the part the sandbox knows: `field:value` and `field:>=value` terms,
    joined by spaces or AND (other words are not filters here)."""
    return [(f, op or "=", v.strip("'\"")) for f, op, v in SEARCH.findall(text or "")]


class _Throttle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    maximumAvailable: float | None = Field(None, gt=0, le=1_000_000)
    restoreRate: float | None = Field(None, gt=0, le=1_000_000)
    currentlyAvailable: float | None = Field(None, ge=0, le=1_000_000)


class _Served(BaseModel):
    model_config = ConfigDict(extra="forbid")

    served: str | None = Field(None, pattern=r"^\d{4}-(01|04|07|10)$",
                               description="the version named in X-Shopify-API-Version; null: the pinned one")


def build_app(config: SystemConfig) -> Starlette:
    """The shop app for a config; seeds its SQLite file on first start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.database)
    if store.is_empty():
        config.seed_report.write_text(json.dumps(seed(store, config.seed, config.size), indent=1))
    tz = ZoneInfo(str(config.options.get("timezone", "Europe/Berlin")))
    bucket = Bucket(float(config.options.get("bucket_size", 2000)), float(config.options.get("restore_rate", 100)))
    issuer = TokenIssuer(config.token, float(config.options.get("token_ttl_seconds", 86_399)),
                         path="/admin/oauth/access_token", header="x-shopify-access-token", answer=token_answer,
                         refusal=(400, {"error": "invalid_client", "error_description": "Client authentication "
                                        "failed due to unknown client, no client authentication included, or "
                                        "unsupported authentication method."}))
    done_keys: dict[str, Any] = {}  # @idempotent keys -> the answer given

    def rest(record: Record) -> dict[str, Any]:
        """A record in the REST resource shape webhooks post (times in the shop's zone, with its offset)."""
        fulfillments = [{**{k: v for k, v in f.items() if not k.endswith("_ms")},
                         "created_at": iso_local(f["created_ms"], tz), "updated_at": iso_local(f["updated_ms"], tz)}
                        for f in record.props.get("fulfillments") or []]
        return {"id": record.id, **record.props, "created_at": iso_local(record.created_ms, tz),
                "updated_at": iso_local(record.updated_ms, tz),
                "admin_graphql_api_id": gid(record.type.removesuffix("s").title(), record.id),
                **({"fulfillments": fulfillments} if record.type == "orders" else {})}

    def notify(record: Record, topic: str) -> None:
        store.enqueue([event(str(uuid.uuid4()), topic, rest(record))], now_ms() / 1000)

    def log(order: Record, verb: str) -> None:
        store.create("events", _event(0, order.id, verb, order.updated_ms).props, order.updated_ms)

    # -- reading -------------------------------------------------------------------------------
    def listing(kind: str, node: Callable[[Record], dict[str, Any]], info: GraphQLResolveInfo,
                first: int | None = None, after: str | None = None, last: int | None = None,
                before: str | None = None, query: str | None = None, sortKey: str = "ID",
                reverse: bool = False, **_: Any) -> dict[str, Any]:
        """A top-level connection from the store: by id or by `updated_at` (sortKey UPDATED_AT)."""
        by_time = sortKey == "UPDATED_AT"
        conditions: list[Any] = []
        for name, op, value in search(query):
            if name in ("updated_at", "created_at"):
                column = objects.c.updated_ms if name == "updated_at" else objects.c.created_ms
                ms = _time(value)
                conditions.append({">=": column >= ms, ">": column > ms, "<=": column <= ms,
                                   "<": column < ms, "=": column == ms}[op])
            elif name == "id" and value.isdigit():
                conditions.append(objects.c.id == int(value))
            elif kind == "events" and name == "subject_type":
                conditions.append(sa.literal(value.upper() == "ORDER"))
            elif kind == "events" and name == "action":
                conditions.append(sa.func.json_extract(objects.c.props, "$.verb") == value)
        backwards = (last is not None) != reverse
        for cursor, newer in ((after, not backwards), (before, backwards)):
            if cursor:
                keys = _decode(cursor, 2 if by_time else 1)
                if by_time:
                    later = sa.or_(objects.c.updated_ms > keys[0],
                                   sa.and_(objects.c.updated_ms == keys[0], objects.c.id > keys[1]))
                    earlier = sa.or_(objects.c.updated_ms < keys[0],
                                     sa.and_(objects.c.updated_ms == keys[0], objects.c.id < keys[1]))
                    conditions.append(later if newer else earlier)
                else:
                    conditions.append(objects.c.id > keys[0] if newer else objects.c.id < keys[0])
        size = first if first is not None else last or 0
        _total, records = store.page(kind, 0, size + 1, conditions, by_modified=by_time, descending=backwards)
        more, records = len(records) > size, records[:size]
        if last is not None:
            records.reverse()
        cursors = [_encode(r.updated_ms, r.id) if by_time else _encode(r.id) for r in records]
        nodes = [node(r) for r in records]
        return {"nodes": nodes, "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
                "pageInfo": {"hasNextPage": more if last is None else bool(after),
                             "hasPreviousPage": more if last is not None else bool(after),
                             "startCursor": cursors[0] if cursors else None,
                             "endCursor": cursors[-1] if cursors else None}}

    def line_node(line: dict[str, Any], currency: str) -> dict[str, Any]:
        return {"id": gid("LineItem", line["id"]), "sku": line.get("sku"), "title": line.get("title", ""),
                "name": line.get("title", ""), "quantity": line["quantity"], "currentQuantity": line["quantity"],
                "originalUnitPriceSet": _bag(line["price"], currency)}

    def fulfillment_node(order: Record, f: dict[str, Any]) -> dict[str, Any]:
        tracking = [{"company": f.get("tracking_company"), "number": f.get("tracking_number"), "url": None}]
        shown = (f.get("shipment_status") or "fulfilled").upper()
        return {"id": gid("Fulfillment", f["id"]), "legacyResourceId": str(f["id"]),
                "name": f"{order.props['name']}-F1", "status": f["status"].upper(), "displayStatus": shown,
                "trackingInfo": tracking if f.get("tracking_number") or f.get("tracking_company") else [],
                "createdAt": iso_utc(f["created_ms"]), "updatedAt": iso_utc(f["updated_ms"])}

    def order_node(record: Record) -> dict[str, Any]:
        p, currency = record.props, record.props.get("currency", "EUR")
        address = p.get("shipping_address")
        done = p.get("fulfillments") or []
        lines = [line_node(li, currency) for li in p["line_items"]]
        return {"__typename": "Order", "id": gid("Order", record.id), "legacyResourceId": str(record.id),
                "name": p["name"], "email": p.get("email"), "createdAt": iso_utc(record.created_ms),
                "updatedAt": iso_utc(record.updated_ms), "currencyCode": currency,
                "totalPriceSet": _bag(p["total_price"], currency),
                "displayFinancialStatus": str(p.get("financial_status") or "pending").upper(),
                "displayFulfillmentStatus": "FULFILLED" if done else "UNFULFILLED",
                "shippingAddress": address and {"id": gid("MailingAddress", record.id), "name": address.get("name"),
                                                "countryCodeV2": address.get("country_code"),
                                                "countryCode": address.get("country_code")},
                "lineItems": lambda info, **args: connection(lines, **args),
                "fulfillments": lambda info, first=None, **_: [fulfillment_node(record, f) for f in done][:first],
                "fulfillmentOrders": lambda info, **args: connection([{
                    "id": gid("FulfillmentOrder", record.id), "status": "CLOSED" if done else "OPEN",
                    "orderId": gid("Order", record.id), "orderName": p["name"]}], **args)}

    def variant_node(product: Record, v: dict[str, Any]) -> dict[str, Any]:
        return {"id": gid("ProductVariant", v["id"]), "legacyResourceId": str(v["id"]), "sku": v.get("sku"),
                "price": v.get("price", "0.00"), "inventoryQuantity": v.get("inventory_quantity", 0),
                "title": "Default Title", "displayName": f"{product.props.get('title')} - Default Title",
                "inventoryItem": {"id": gid("InventoryItem", v.get("inventory_item_id", v["id"])),
                                  "sku": v.get("sku"), "tracked": True}}

    def product_node(record: Record) -> dict[str, Any]:
        p = record.props
        variants = [variant_node(record, v) for v in p.get("variants", [])]
        return {"__typename": "Product", "id": gid("Product", record.id), "legacyResourceId": str(record.id),
                "title": p.get("title"), "vendor": p.get("vendor", ""), "status": str(p.get("status", "active")).upper(),
                "createdAt": iso_utc(record.created_ms), "updatedAt": iso_utc(record.updated_ms),
                "variants": lambda info, **args: connection(variants, **args)}

    def event_node(record: Record) -> dict[str, Any]:
        p = record.props
        return {"__typename": "BasicEvent", "id": gid("BasicEvent", record.id), "action": p["verb"],
                "message": p["message"], "createdAt": iso_utc(record.created_ms), "subjectType": "ORDER",
                "subjectId": gid("Order", p["subject_id"]), "attributeToApp": False, "attributeToUser": False,
                "criticalAlert": False, "hasAdditionalContent": False}

    def one(kind: str, node: Callable[[Record], dict[str, Any]]) -> Callable[..., dict[str, Any] | None]:
        def find(info: GraphQLResolveInfo, id: str) -> dict[str, Any] | None:  # noqa: A002 - the schema's name
            number = parse_gid(id, kind.removesuffix("s").title())
            record = store.get(kind, number) if number is not None else None
            return None if record is None else node(record)
        return find

    location = {"id": LOCATION, "legacyResourceId": "1", "name": "Sandbox Warehouse", "isActive": True,
                "isPrimary": True, "fulfillsOnlineOrders": True}
    query = {
        "orders": lambda info, **args: listing("orders", order_node, info, **args),
        "products": lambda info, **args: listing("products", product_node, info, **args),
        "events": lambda info, **args: listing("events", event_node, info, **args),
        "order": one("orders", order_node),
        "product": one("products", product_node),
        "locations": lambda info, **args: connection([location], **args),
    }

    # -- writing -------------------------------------------------------------------------------
    def variant_of(product: Record, variant_gid: Any) -> dict[str, Any] | None:
        number = parse_gid(variant_gid, "ProductVariant")
        return next((v for v in product.props.get("variants", []) if v["id"] == number), None)

    def product_set(info: GraphQLResolveInfo, input: dict[str, Any], synchronous: bool = True,  # noqa: A002
                    identifier: dict[str, Any] | None = None) -> dict[str, Any]:
        if identifier or input.get("id"):
            return {"product": None, "userErrors": [user_error(["identifier"], "The sandbox shop creates products "
                                                               "with productSet; update them with productUpdate")]}
        if not (input.get("title") or "").strip():
            return {"product": None, "userErrors": [user_error(["input", "title"], "Title can't be blank", "INVALID_INPUT")]}
        options = {o.get("name"): [v.get("name") for v in o.get("values") or []] for o in input.get("productOptions") or []}
        variants: list[dict[str, Any]] = []
        for n, v in enumerate(input.get("variants") or []):
            chosen = {o.get("optionName"): o.get("name") for o in v["optionValues"]}
            if not options or any(options.get(k) is None or value not in options[k] for k, value in chosen.items()):
                return {"product": None, "userErrors": [user_error(
                    ["input", "variants", str(n), "optionValues"],
                    "Option values must be among the product's productOptions", "INVALID_INPUT")]}
            price = _amount(v.get("price", "0"))
            if price is None:
                return {"product": None, "userErrors": [user_error(["input", "variants", str(n), "price"],
                                                                   "Price is invalid", "INVALID_VARIANT")]}
            variants.append({"sku": v.get("sku") or (v.get("inventoryItem") or {}).get("sku"), "price": price,
                             "inventory_quantity": 0})
        fields = {"title": input["title"], "vendor": input.get("vendor") or "", "status":
                  str(input.get("status") or "ACTIVE").lower(), "variants": variants}
        record = store.create("products", fields, now_ms())
        for v in variants:  # one variant a product here: it shares the product's number
            v["id"] = v["inventory_item_id"] = record.id
        record = store.update("products", record.id, {"variants": variants}, record.updated_ms) or record
        notify(record, "products/create")
        return {"product": product_node(record), "productSetOperation": None, "userErrors": []}

    def product_update(info: GraphQLResolveInfo, product: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        number = parse_gid((product or {}).get("id"), "Product") if product and product.get("id") else None
        record = store.get("products", number) if number is not None else None
        if record is None:
            return {"product": None, "userErrors": [user_error(["id"], "Product does not exist")]}
        changes = {k: v for k, v in (("title", product.get("title")), ("vendor", product.get("vendor")),  # type: ignore[union-attr]
                                     ("status", str(product.get("status") or "").lower() or None)) if v is not None}  # type: ignore[union-attr]
        if "title" in changes and not str(changes["title"]).strip():
            return {"product": None, "userErrors": [user_error(["title"], "Title can't be blank")]}
        record = store.update("products", record.id, changes, now_ms()) or record
        notify(record, "products/update")
        return {"product": product_node(record), "userErrors": []}

    def variants_update(info: GraphQLResolveInfo, productId: str, variants: list[dict[str, Any]],  # noqa: N803
                        **_: Any) -> dict[str, Any]:
        number = parse_gid(productId, "Product")
        record = store.get("products", number) if number is not None else None
        if record is None:
            return {"product": None, "productVariants": None, "userErrors": [
                user_error(["productId"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")]}
        held = [dict(v) for v in record.props.get("variants", [])]
        for n, change in enumerate(variants):
            where = ["variants", str(n)]
            target = next((v for v in held if change.get("id") and v["id"] == parse_gid(change["id"], "ProductVariant")), None)
            if target is None:
                return {"product": None, "productVariants": None, "userErrors": [
                    user_error([*where, "id"], "Product variant does not exist", "PRODUCT_VARIANT_DOES_NOT_EXIST")]}
            if change.get("inventoryQuantities") is not None or change.get("quantityAdjustments") is not None:
                return {"product": None, "productVariants": None, "userErrors": [user_error(
                    [*where, "inventoryQuantities"], "Inventory quantities can only be provided during create. "
                    "To update inventory for existing variants, use inventorySetQuantities.",
                    "NO_INVENTORY_QUANTITIES_ON_VARIANTS_UPDATE")]}
            if "price" in change:
                price = _amount(change["price"])
                if price is None:
                    return {"product": None, "productVariants": None, "userErrors": [
                        user_error([*where, "price"], "Price is invalid", "INVALID_INPUT")]}
                target["price"] = price
            if (change.get("inventoryItem") or {}).get("sku") is not None:
                target["sku"] = change["inventoryItem"]["sku"]
        record = store.update("products", record.id, {"variants": held}, now_ms()) or record
        notify(record, "products/update")
        return {"product": product_node(record), "productVariants": [variant_node(record, v) for v in held],
                "userErrors": []}

    def set_quantities(info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        directive = next((d for d in info.field_nodes[0].directives if d.name.value == "idempotent"), None)
        if directive is None:
            raise GraphQLError("The @idempotent directive is required for this mutation.", info.field_nodes,
                               extensions={"code": "BAD_REQUEST"})
        definition = info.schema.get_directive("idempotent")
        assert definition is not None
        key = str(get_argument_values(definition, directive, info.variable_values)["key"])
        if key in done_keys:
            return done_keys[key]
        if input["name"] not in ("available", "on_hand"):
            return {"inventoryAdjustmentGroup": None, "userErrors": [
                user_error(["input", "name"], "The quantity name must be 'available' or 'on_hand'.", "INVALID_NAME")]}
        if input["reason"] not in REASONS:
            return {"inventoryAdjustmentGroup": None, "userErrors": [
                user_error(["input", "reason"], "The specified reason is invalid.", "INVALID_REASON")]}
        changes = []
        for n, q in enumerate(input["quantities"]):
            where = ["input", "quantities", str(n)]
            item = parse_gid(q["inventoryItemId"], "InventoryItem")
            record = store.find("products", "variants[0].inventory_item_id", item) if item is not None else None
            if record is None:
                return {"inventoryAdjustmentGroup": None, "userErrors": [user_error(
                    [*where, "inventoryItemId"], "The specified inventory item could not be found.",
                    "INVALID_INVENTORY_ITEM")]}
            if q["locationId"] != LOCATION:
                return {"inventoryAdjustmentGroup": None, "userErrors": [user_error(
                    [*where, "locationId"], "The specified location could not be found.", "INVALID_LOCATION")]}
            if not 0 <= q["quantity"] <= 1_000_000_000:
                return {"inventoryAdjustmentGroup": None, "userErrors": [user_error(
                    [*where, "quantity"], "The quantity is out of range.", "INVALID_QUANTITY_TOO_HIGH")]}
            if "changeFromQuantity" not in q:  # required since 2026-04 (null opts out of the compare)
                return {"inventoryAdjustmentGroup": None, "userErrors": [user_error(
                    [*where, "changeFromQuantity"], "changeFromQuantity is required; pass null to skip the "
                    "compare-and-set check.", "COMPARE_QUANTITY_REQUIRED")]}
            variants = [dict(v) for v in record.props["variants"]]
            before = variants[0].get("inventory_quantity", 0)
            if q.get("changeFromQuantity") is not None and q["changeFromQuantity"] != before:
                return {"inventoryAdjustmentGroup": None, "userErrors": [user_error(
                    [*where, "changeFromQuantity"], "The specified compare quantity does not match the current "
                    "quantity.", "CHANGE_FROM_QUANTITY_STALE")]}
            variants[0]["inventory_quantity"] = q["quantity"]
            store.update("products", record.id, {"variants": variants}, now_ms())
            changes.append({"name": input["name"], "delta": q["quantity"] - before, "quantityAfterChange": q["quantity"]})
        done_keys[key] = {"inventoryAdjustmentGroup": {
            "id": gid("InventoryAdjustmentGroup", len(done_keys) + 1), "reason": input["reason"],
            "createdAt": iso_utc(now_ms()), "changes": changes}, "userErrors": []}
        return done_keys[key]

    def fulfilled(record: Record, changes: dict[str, Any]) -> list[dict[str, Any]]:
        done = [dict(f) for f in record.props.get("fulfillments") or []]
        done[0].update(changes, updated_ms=now_ms())
        updated = store.update("orders", record.id, {"fulfillments": done}, now_ms()) or record
        log(updated, "update")
        notify(updated, "orders/updated")
        return done

    def by_fulfillment(value: Any) -> Record | None:
        number = parse_gid(value, "Fulfillment")
        return store.find("orders", "fulfillments[0].id", number) if number is not None else None

    def fulfillment_create(info: GraphQLResolveInfo, fulfillment: dict[str, Any], **_: Any) -> dict[str, Any]:
        groups = fulfillment["lineItemsByFulfillmentOrder"]
        if not groups:
            return {"fulfillment": None, "userErrors": [user_error(
                ["fulfillment", "lineItemsByFulfillmentOrder"], "Line items by fulfillment order can't be blank")]}
        orders = {parse_gid(g["fulfillmentOrderId"], "FulfillmentOrder") for g in groups}
        record = store.get("orders", orders.pop()) if len(orders) == 1 and None not in orders else None  # type: ignore[arg-type]
        if record is None:
            return {"fulfillment": None, "userErrors": [user_error(
                ["fulfillment", "lineItemsByFulfillmentOrder", "0", "fulfillmentOrderId"],
                "Fulfillment order does not exist.")]}
        if record.props.get("fulfillments"):
            return {"fulfillment": None, "userErrors": [user_error(
                ["fulfillment"], f"Fulfillment order {gid('FulfillmentOrder', record.id)} has an unfulfillable "
                "status= closed.")]}
        tracking = fulfillment.get("trackingInfo") or {}
        now = now_ms()
        made = {"id": record.id, "status": "success", "tracking_company": tracking.get("company"),
                "tracking_number": tracking.get("number"), "shipment_status": None, "created_ms": now,
                "updated_ms": now}
        updated = store.update("orders", record.id, {"fulfillments": [made], "fulfillment_status": "fulfilled"},
                               now) or record
        log(updated, "update")
        notify(updated, "orders/fulfilled")
        return {"fulfillment": fulfillment_node(updated, made), "userErrors": []}

    def tracking_update(info: GraphQLResolveInfo, fulfillmentId: str, trackingInfoInput: dict[str, Any],  # noqa: N803
                        **_: Any) -> dict[str, Any]:
        record = by_fulfillment(fulfillmentId)
        if record is None:
            return {"fulfillment": None, "userErrors": [user_error(["fulfillmentId"], "Fulfillment does not exist.")]}
        done = fulfilled(record, {"tracking_company": trackingInfoInput.get("company"),
                                  "tracking_number": trackingInfoInput.get("number")})
        return {"fulfillment": fulfillment_node(record, done[0]), "userErrors": []}

    def fulfillment_event(info: GraphQLResolveInfo, fulfillmentEvent: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        record = by_fulfillment(fulfillmentEvent["fulfillmentId"])
        if record is None:
            return {"fulfillmentEvent": None, "userErrors": [user_error(
                ["fulfillmentEvent", "fulfillmentId"], "Fulfillment does not exist.")]}
        fulfilled(record, {"shipment_status": fulfillmentEvent["status"].lower()})
        now = iso_utc(now_ms())
        return {"fulfillmentEvent": {"id": gid("FulfillmentEvent", now_ms()), "status": fulfillmentEvent["status"],
                                     "happenedAt": now, "createdAt": now}, "userErrors": []}

    def order_create(info: GraphQLResolveInfo, order: dict[str, Any], **_: Any) -> dict[str, Any]:
        lines = []
        for n, li in enumerate(order.get("lineItems") or []):
            price = _amount(((li.get("priceSet") or {}).get("shopMoney") or {}).get("amount", "0"))
            if price is None or not 1 <= li["quantity"] <= 100_000:
                return {"order": None, "userErrors": [user_error(["order", "lineItems", str(n)],
                                                                 "Line item is invalid", "INVALID")]}
            lines.append({"sku": li.get("sku"), "title": li.get("title") or "", "quantity": li["quantity"],
                          "price": price})
        if not lines:
            return {"order": None, "userErrors": [user_error(["order", "lineItems"], "Line items must have at "
                                                             "least one line item", "INVALID")]}
        address = order.get("shippingAddress") or {}
        names = [address.get("firstName") or "", address.get("lastName") or ""]
        props: dict[str, Any] = {"email": order.get("email"), "currency": order.get("currency") or "EUR",
                 "total_price": f"{sum(Decimal(li['price']) * li['quantity'] for li in lines):.2f}",
                 "financial_status": str(order.get("financialStatus") or "PENDING").lower(),
                 "fulfillment_status": None, "fulfillments": [],
                 "customer": {"first_name": names[0], "last_name": names[1], "email": order.get("email")},
                 "shipping_address": {"country_code": address.get("countryCode"), "name": " ".join(names).strip()},
                 "line_items": []}
        record = store.create("orders", props, now_ms())
        numbered = [{"id": record.id * 10 + n, **li} for n, li in enumerate(lines)]
        record = store.update("orders", record.id, {"name": f"#{record.id}", "line_items": numbered},
                              record.updated_ms) or record
        log(record, "create")
        notify(record, "orders/create")
        return {"order": order_node(record), "userErrors": []}

    def order_delete(info: GraphQLResolveInfo, orderId: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        """Shopify deletes the order for good (its Events and deletionEvents keep no trace of it):
        only the `orders/delete` webhook, posting `{"id": ...}`, tells."""
        oid = parse_gid(orderId, "Order")
        record = store.get("orders", oid) if oid is not None else None
        if record is None:
            return {"deletedId": None, "userErrors": [user_error(["orderId"], "Order does not exist", "NOT_FOUND")]}
        store.archive("orders", record.id, now_ms())
        store.enqueue([event(str(uuid.uuid4()), "orders/delete", {"id": record.id})], now_ms() / 1000)
        return {"deletedId": gid("Order", record.id), "userErrors": []}

    mutation = {"productSet": product_set, "productUpdate": product_update,
                "productVariantsBulkUpdate": variants_update, "inventorySetQuantities": set_quantities,
                "fulfillmentCreate": fulfillment_create, "fulfillmentTrackingInfoUpdate": tracking_update,
                "fulfillmentEventCreate": fulfillment_event, "orderCreate": order_create,
                "orderDelete": order_delete}
    graphql = Endpoint(load_schema(SCHEMA), query, mutation, bucket)

    async def throttle(request: Request) -> Response:
        if request.method == "PUT":
            changes = await parse_body(request, _Throttle)
            bucket.level()
            bucket.maximum = changes.maximumAvailable or bucket.maximum
            bucket.restore = changes.restoreRate or bucket.restore
            bucket.available = min(bucket.maximum, changes.currentlyAvailable if changes.currentlyAvailable
                                   is not None else bucket.available)
        return JSONResponse(bucket.status())

    served = _Served(served=config.options.get("served_version"))

    async def admin_api(request: Request) -> Response:
        """A GraphQL document answered, naming the version that served it (as Shopify does)."""
        response = await graphql.handle(request)
        response.headers["X-Shopify-API-Version"] = served.served or VERSION
        return response

    async def api_version(request: Request) -> Response:
        nonlocal served
        if request.method == "PUT":
            served = await parse_body(request, _Served)
        return JSONResponse({"pinned": VERSION, "served": served.served or VERSION})

    async def unknown_version(request: Request) -> Response:
        raise BadRequest(404, "Not Found")

    routes = [Route(f"/admin/api/{VERSION}/graphql.json", admin_api, methods=["POST"]),
              Route("/_sandbox/api-version", api_version, methods=["GET", "PUT"]),
              Route("/admin/api/{version}/graphql.json", unknown_version, methods=["POST"]),
              Route("/_sandbox/throttle", throttle, methods=["GET", "PUT"]), *issuer.routes()]
    return sandbox_app(config, routes, store, issuer.authenticate, error_body, signer("shopify", config.webhook_secret))


def _time(text: str) -> int:
    try:
        return parse_time(text, "updated_at")
    except BadRequest:
        raise GraphQLError(f"Invalid date in search query: '{text}'", extensions={"code": "BAD_REQUEST"}) from None
