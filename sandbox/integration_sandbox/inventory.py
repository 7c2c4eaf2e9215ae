"""The sandbox warehouse (inventory): stock levels per SKU under `/v1/stock`, a plain JSON API.

Bearer-token auth; cursor pagination ordered by modification time (`updated_since`, `cursor`);
stock set by PUT, moved by adjustments honouring `Idempotency-Key`; Standard Webhooks signatures.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import _fake
from ._app import BadRequest, bearer, iso_utc, now_ms, parse_body, sandbox_app
from ._config import SystemConfig
from ._jsonapi import cursor_list, emit, error_body
from ._store import Record, Store
from ._webhooks import signer

PROBLEM_RATES = {"negative_stock": 0.02, "missing_name": 0.02}
_SKU = re.compile(r"^SKU-(\d{6})$")


def seed(store: Store, seed_: int, size: int) -> dict[str, Any]:
    """One stock level per catalogue product; returns the seed report."""
    rng = random.Random(seed_ + 5)
    ids = range(1, 1 + _fake.product_count(size))
    problems = _fake.pick_problems(rng, ids, PROBLEM_RATES)
    negative, nameless = set(problems["negative_stock"]), set(problems["missing_name"])

    def records() -> Iterator[Record]:
        for i in ids:
            created = _fake.created_ms(rng)
            on_hand = -rng.randint(1, 5) if i in negative else rng.randrange(0, 500)
            yield Record("stock", i, created, created + rng.randrange(1, 86_400_000), {
                "sku": _fake.sku(i), "name": None if i in nameless else _fake.product_name(i),
                "warehouse": rng.choice(["WH-NORTH", "WH-SOUTH"]), "on_hand": on_hand,
                "reserved": min(max(on_hand, 0), rng.randrange(0, 5))})

    store.bulk_insert(records())
    report = {"system": "inventory", "seed": seed_, "size": size, "counts": {"stock": len(ids)},
              "rates": PROBLEM_RATES, "problems": {k: [_fake.sku(i) for i in v] for k, v in problems.items()}}
    store.set_meta("seed_report", json.dumps(report))
    return report


class _Set(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_hand: int | None = Field(None, ge=0)
    name: str | None = None
    warehouse: str | None = None


class _Adjustment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delta: int
    reason: str = Field(min_length=1, max_length=200)
    reference: str | None = None


def sku_id(sku: str) -> int:
    """The record id of a SKU (`SKU-000123` -> 123); 404 for anything else."""
    match = _SKU.match(sku)
    if not match:
        raise BadRequest(404, f"no stock item {sku!r}")
    return int(match.group(1))


def build_app(config: SystemConfig) -> Starlette:
    """The inventory app for a config; seeds its SQLite file on first start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.database)
    if store.is_empty():
        config.seed_report.write_text(json.dumps(seed(store, config.seed, config.size), indent=1))

    def shape(record: Record) -> dict[str, Any]:
        p = record.props
        return {**p, "available": p["on_hand"] - p["reserved"], "updated_at": iso_utc(record.updated_ms)}

    def changed(record: Record) -> None:
        emit(store, "stock.updated", shape(record), f"msg_stock_{record.id}_{record.updated_ms}")

    async def listing(request: Request) -> Response:
        return cursor_list(request, store, "stock", shape)

    async def show(request: Request) -> Response:
        record = store.get("stock", sku_id(request.path_params["sku"]))
        if record is None:
            raise BadRequest(404, "no such stock item")
        return JSONResponse(shape(record))

    async def put(request: Request) -> Response:
        sku = request.path_params["sku"]
        id_ = sku_id(sku)
        body = await parse_body(request, _Set)
        changes = body.model_dump(exclude_none=True)
        record = store.update("stock", id_, changes, now_ms())
        status = 200
        if record is None:
            props = {"sku": sku, "name": None, "warehouse": "WH-NORTH", "on_hand": 0, "reserved": 0, **changes}
            store.bulk_insert([Record("stock", id_, now_ms(), now_ms(), props)])
            record, status = store.get("stock", id_), 201
        assert record is not None
        changed(record)
        return JSONResponse(shape(record), status)

    async def adjust(request: Request) -> Response:
        id_ = sku_id(request.path_params["sku"])
        key = request.headers.get("idempotency-key")
        if key:
            seen = store.get_meta(f"idempotency:{key}")
            if seen is not None:
                return JSONResponse(json.loads(seen), headers={"Idempotent-Replayed": "true"})
        body = await parse_body(request, _Adjustment)
        record = store.get("stock", id_)
        if record is None:
            raise BadRequest(404, "no such stock item")
        on_hand = record.props["on_hand"] + body.delta
        if on_hand < 0:
            raise BadRequest(409, f"insufficient stock: {record.props['on_hand']} on hand, {-body.delta} requested")
        updated = store.update("stock", id_, {"on_hand": on_hand}, now_ms())
        assert updated is not None
        result = shape(updated)
        if key:
            store.set_meta(f"idempotency:{key}", json.dumps(result))
        changed(updated)
        return JSONResponse(result)

    routes = [
        Route("/v1/stock", listing, methods=["GET"]),
        Route("/v1/stock/{sku}", show, methods=["GET"]),
        Route("/v1/stock/{sku}", put, methods=["PUT"]),
        Route("/v1/stock/{sku}/adjustments", adjust, methods=["POST"]),
    ]
    return sandbox_app(config, routes, store, bearer, error_body, signer("standard_webhooks", config.webhook_secret))
