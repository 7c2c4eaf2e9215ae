"""The sandbox shop (Shopify-like): orders, products, fulfillments and the Events API (an order's
`create` and later `update` events) under `/admin/api/{version}`.

Auth with `X-Shopify-Access-Token`. Lists page with a `Link` header (`rel="next"`/`rel="previous"`,
an opaque `page_info`), `limit` up to 250, `updated_at_min` for incremental reads; times carry the
shop's UTC offset (option `timezone`, default Europe/Berlin). Webhooks are signed Shopify style
(base64 HMAC of the body in `X-Shopify-Hmac-Sha256`, with `X-Shopify-Topic` and `X-Shopify-Webhook-Id`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import _fake
from ._app import BadRequest, bounded, int_param, iso_local, now_ms, parse_body, parse_time, path_id, sandbox_app
from ._config import SystemConfig
from ._store import Record, Store, objects
from ._webhooks import event, signer

VERSIONS = ("2024-10", "2025-01")
PROBLEM_RATES = {"missing_email": 0.03, "invalid_email": 0.03, "updated_twice": 0.04}


def error_body(status: int, message: str) -> dict[str, Any]:
    """Shopify's error shapes."""
    if status == 401:
        return {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    if status == 404:
        return {"errors": "Not Found"}
    return {"errors": message}


def authenticate(request: Request, token: str) -> bool:
    """`X-Shopify-Access-Token: <token>`."""
    return hmac.compare_digest(request.headers.get("x-shopify-access-token", ""), token)


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
                              "inventory_quantity": rng.randrange(0, 200)}]})
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
                "financial_status": rng.choice(["paid", "paid", "pending", "refunded"]), "fulfillment_status": None,
                "customer": {"first_name": p.first, "last_name": p.last, "email": email},
                "shipping_address": {"country_code": p.country, "name": f"{p.first} {p.last}"},
                "line_items": lines})

    store.bulk_insert(records())
    store.bulk_insert(_event(n, oid, verb, ms) for n, (ms, oid, verb) in enumerate(sorted(events), start=1))
    report = {"system": "shop", "seed": seed_, "size": size, "counts": {"orders": size, "products": products},
              "rates": PROBLEM_RATES, "problems": {k: [str(i) for i in v] for k, v in problems.items()}}
    store.set_meta("seed_report", json.dumps(report))
    return report


PRICE = r"^\d{1,9}(\.\d{1,2})?$"


def _event(event_id: int, order_id: int, verb: str, ms: int) -> Record:
    """An entry of Shopify's Events API about an order: created, or edited afterwards."""
    return Record("events", event_id, ms, ms, {"subject_id": order_id, "subject_type": "Order", "verb": verb,
                                               "message": f"Order #{order_id} was {verb}d."})


class _Variant(BaseModel):
    sku: str
    price: str = Field("0.00", pattern=PRICE)
    inventory_quantity: int | None = None


class _ProductFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1)
    vendor: str | None = None
    status: str | None = None
    variants: list[_Variant] | None = None


class _ProductBody(BaseModel):
    product: _ProductFields


class _LineItem(BaseModel):
    sku: str
    quantity: int = Field(ge=1, le=100_000)
    price: str = Field(pattern=PRICE)
    title: str = ""


class _OrderFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = None
    currency: str = "EUR"
    line_items: list[_LineItem] = Field(min_length=1)
    customer: dict[str, Any] | None = None
    shipping_address: dict[str, Any] | None = None
    financial_status: str = "paid"


class _OrderBody(BaseModel):
    order: _OrderFields


class _Fulfillment(BaseModel):
    tracking_number: str | None = None
    tracking_company: str | None = None
    status: str = "success"
    shipment_status: str | None = None


class _FulfillmentBody(BaseModel):
    fulfillment: _Fulfillment


def build_app(config: SystemConfig) -> Starlette:
    """The shop app for a config; seeds its SQLite file on first start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.database)
    if store.is_empty():
        config.seed_report.write_text(json.dumps(seed(store, config.seed, config.size), indent=1))
    tz = ZoneInfo(str(config.options.get("timezone", "Europe/Berlin")))
    singular = {"orders": "order", "products": "product", "events": "event"}

    def version(request: Request) -> None:
        if request.path_params["version"] not in VERSIONS:
            raise BadRequest(404, "unknown API version")

    def shape(record: Record) -> dict[str, Any]:
        return {"id": record.id, **record.props, "created_at": iso_local(record.created_ms, tz),
                "updated_at": iso_local(record.updated_ms, tz),
                "admin_graphql_api_id": f"gid://shopify/{singular[record.type].title()}/{record.id}"}

    def log(order: Record, verb: str) -> None:
        event_ = _event(0, order.id, verb, order.updated_ms)
        store.create("events", event_.props, order.updated_ms)

    def notify(record: Record, topic: str) -> None:
        webhook_id = str(uuid.uuid4())
        store.enqueue([event(webhook_id, topic, shape(record))], now_ms() / 1000)

    async def listing(request: Request) -> Response:
        version(request)
        kind = request.url.path.rsplit("/", 1)[1].removesuffix(".json")
        limit = int_param(request, "limit", 50, 1, 250)
        page_info = request.query_params.get("page_info")
        if page_info:
            extra = set(request.query_params) - {"page_info", "limit"}
            if extra:
                raise BadRequest(400, f"page_info cannot be combined with {', '.join(sorted(extra))}")
            since, after, before = _decode(page_info)
        else:
            raw = request.query_params.get("updated_at_min")
            since = parse_time(raw, "updated_at_min") if raw is not None else 0
            after, before = 0, None
        changed = objects.c.updated_ms >= since
        if before is None:
            _, records = store.page(kind, 0, limit + 1, [changed, objects.c.id > after])
            has_next, has_previous = len(records) > limit, after > 0
            records = records[:limit]
        else:
            _, records = store.page(kind, 0, limit + 1, [changed, objects.c.id < before], descending=True)
            has_next, has_previous = True, len(records) > limit
            records = list(reversed(records[:limit]))
        base = request.url.remove_query_params(["page_info", "updated_at_min"])
        links = []
        if records and has_previous:
            previous = base.include_query_params(page_info=_encode(since, 0, records[0].id), limit=limit)
            links.append(f'<{previous}>; rel="previous"')
        if records and has_next:
            following = base.include_query_params(page_info=_encode(since, records[-1].id, None), limit=limit)
            links.append(f'<{following}>; rel="next"')
        headers = {"Link": ", ".join(links)} if links else {}
        return JSONResponse({kind: [shape(r) for r in records]}, headers=headers)

    async def show(request: Request) -> Response:
        version(request)
        kind = request.url.path.split("/")[4]
        record = store.get(kind, path_id(request))
        if record is None:
            raise BadRequest(404, "Not Found")
        return JSONResponse({singular[kind]: shape(record)})

    async def create_order(request: Request) -> Response:
        version(request)
        fields = (await parse_body(request, _OrderBody)).order
        total = sum(float(li.price) * li.quantity for li in fields.line_items)
        props = {**fields.model_dump(), "total_price": f"{total:.2f}", "fulfillment_status": None}
        record = store.create("orders", props, now_ms())
        props["name"] = f"#{record.id}"
        record = store.update("orders", record.id, {"name": props["name"]}, record.updated_ms) or record
        log(record, "create")
        notify(record, "orders/create")
        return JSONResponse({"order": shape(record)}, 201)

    async def create_product(request: Request) -> Response:
        version(request)
        fields = (await parse_body(request, _ProductBody)).product
        if not fields.title:
            raise BadRequest(422, "title can't be blank")
        record = store.create("products", fields.model_dump(exclude_none=True), now_ms())
        notify(record, "products/create")
        return JSONResponse({"product": shape(record)}, 201)

    async def update_product(request: Request) -> Response:
        version(request)
        fields = (await parse_body(request, _ProductBody)).product
        record = store.update("products", path_id(request), fields.model_dump(exclude_none=True), now_ms())
        if record is None:
            raise BadRequest(404, "Not Found")
        notify(record, "products/update")
        return JSONResponse({"product": shape(record)})

    async def fulfil(request: Request) -> Response:
        version(request)
        fulfillment = (await parse_body(request, _FulfillmentBody)).fulfillment
        order_id = path_id(request)
        status = "fulfilled" if fulfillment.status == "success" else None
        record = store.update("orders", order_id, {"fulfillment_status": status,
                                                    "fulfillment": fulfillment.model_dump(exclude_none=True)}, now_ms())
        if record is None:
            raise BadRequest(404, "Not Found")
        log(record, "update")
        notify(record, "orders/fulfilled" if status else "orders/updated")
        return JSONResponse({"fulfillment": {"order_id": order_id, **fulfillment.model_dump()}}, 201)

    prefix = "/admin/api/{version}"
    routes = [
        Route(prefix + "/orders.json", listing, methods=["GET"]),
        Route(prefix + "/orders.json", create_order, methods=["POST"]),
        Route(prefix + "/orders/{id}.json", show, methods=["GET"]),
        Route(prefix + "/orders/{id}/fulfillments.json", fulfil, methods=["POST"]),
        Route(prefix + "/products.json", listing, methods=["GET"]),
        Route(prefix + "/events.json", listing, methods=["GET"]),
        Route(prefix + "/products.json", create_product, methods=["POST"]),
        Route(prefix + "/products/{id}.json", show, methods=["GET"]),
        Route(prefix + "/products/{id}.json", update_product, methods=["PUT"]),
    ]
    return sandbox_app(config, routes, store, authenticate, error_body, signer("shopify", config.webhook_secret))


def _encode(since: int, after: int, before: int | None) -> str:
    raw = json.dumps([since, after, before]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(page_info: str) -> tuple[int, int, int | None]:
    try:
        since, after, before = json.loads(base64.urlsafe_b64decode(page_info + "=" * (-len(page_info) % 4)))
        if not (isinstance(since, int) and isinstance(after, int) and (before is None or isinstance(before, int))):
            raise ValueError
        for value in (since, after, before or 0):
            bounded(value, "page_info")
        return since, after, before
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise BadRequest(400, "Invalid page_info") from None
