"""The sandbox 3PL (fulfilment): shipment instructions under `/v1/shipments`, a plain JSON API.

OAuth2 client credentials (`POST /oauth/token`, tokens live `token_ttl_seconds`, default 3600; the
static token still works as an admin's API key); cursor pagination by modification time; one shipment per order (a second
instruction for the same order answers 409 with the existing id). Shipments move on by themselves,
received -> picked -> shipped -> delivered (seeded ones stay as seeded), one step every
`advance_seconds` (option, default 10), each step announced by a Standard Webhooks event `shipment.updated`.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import _fake
from ._app import BadRequest, iso_utc, now_ms, parse_body, path_id, sandbox_app
from ._config import SystemConfig
from ._jsonapi import cursor_list, emit, error_body
from ._oauth import TokenIssuer
from ._store import Record, Store, objects
from ._webhooks import signer

FLOW = ("received", "picked", "shipped", "delivered")
FINAL = ("delivered", "cancelled")
PROBLEM_RATES = {"missing_tracking": 0.03}


def seed(store: Store, seed_: int, size: int) -> dict[str, Any]:
    """Shipments for half of the shop's seeded orders; returns the seed report."""
    rng = random.Random(seed_ + 6)
    ids = range(1, 1 + max(1, size // 2))
    problems = _fake.pick_problems(rng, ids, PROBLEM_RATES)
    untracked = set(problems["missing_tracking"])

    def records() -> Iterator[Record]:
        for i in ids:
            created = _fake.created_ms(rng)
            status = rng.choice(FLOW[2:]) if i in untracked else rng.choice(FLOW)
            tracked = status in ("shipped", "delivered") and i not in untracked
            yield Record("shipments", i, created, created + rng.randrange(1, 3 * 86_400_000), {
                "order_id": str(1001 + i - 1), "status": status, "carrier": "DHL" if tracked else None,
                "tracking_number": f"00340434{rng.randrange(10**9, 10**10)}" if tracked else None,
                "lines": [{"sku": _fake.sku(rng.randrange(1, 1 + _fake.product_count(size))), "quantity": 1}]})

    store.bulk_insert(records())
    report = {"system": "fulfilment", "seed": seed_, "size": size, "counts": {"shipments": len(ids)},
              "rates": PROBLEM_RATES, "problems": {k: [str(i) for i in v] for k, v in problems.items()}}
    store.set_meta("seed_report", json.dumps(report))
    return report


class _Line(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(ge=1)


class _Instruction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=64)
    lines: list[_Line] = Field(min_length=1)
    address: dict[str, str] = Field(default_factory=dict)


def build_app(config: SystemConfig) -> Starlette:
    """The fulfilment app for a config; seeds its SQLite file on first start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.database)
    if store.is_empty():
        config.seed_report.write_text(json.dumps(seed(store, config.seed, config.size), indent=1))
    store.index_property("shipments", "order_id")
    step_seconds = float(config.options.get("advance_seconds", 10))
    seeded = int(json.loads(store.get_meta("seed_report") or "{}").get("counts", {}).get("shipments", 0))
    rng = random.Random(config.seed)

    def shape(record: Record) -> dict[str, Any]:
        return {"id": str(record.id), **record.props, "created_at": iso_utc(record.created_ms),
                "updated_at": iso_utc(record.updated_ms)}

    def changed(record: Record) -> None:
        emit(store, "shipment.updated", shape(record), f"msg_shipment_{record.id}_{record.updated_ms}")

    async def listing(request: Request) -> Response:
        return cursor_list(request, store, "shipments", shape)

    async def show(request: Request) -> Response:
        record = store.get("shipments", path_id(request))
        if record is None:
            raise BadRequest(404, "no such shipment")
        return JSONResponse(shape(record))

    async def create(request: Request) -> Response:
        body = await parse_body(request, _Instruction)
        existing = store.find("shipments", "order_id", body.order_id)
        if existing is not None:
            conflict = {**error_body(409, "a shipment for this order exists"), "shipment_id": str(existing.id)}
            return JSONResponse(conflict, 409)
        record = store.create("shipments", {**body.model_dump(), "status": "received", "carrier": None,
                                            "tracking_number": None}, now_ms())
        changed(record)
        return JSONResponse(shape(record), 201)

    async def cancel(request: Request) -> Response:
        record = store.get("shipments", path_id(request))
        if record is None:
            raise BadRequest(404, "no such shipment")
        if record.props["status"] not in ("received", "picked"):
            raise BadRequest(409, f"a {record.props['status']} shipment cannot be cancelled")
        updated = store.update("shipments", record.id, {"status": "cancelled"}, now_ms())
        assert updated is not None
        changed(updated)
        return JSONResponse(shape(updated))

    async def advance() -> None:
        while True:
            await asyncio.sleep(step_seconds)
            # Seeded shipments are history and stay as seeded; only new instructions move on.
            moving = sa.func.json_extract(objects.c.props, "$.status").in_(FLOW[:-1])
            _, records = store.page("shipments", 0, 100, [moving, objects.c.id > seeded], by_modified=True)
            for record in records:
                if record.updated_ms > now_ms() - step_seconds * 1000:
                    continue
                status = FLOW[FLOW.index(record.props["status"]) + 1]
                changes: dict[str, Any] = {"status": status}
                if status == "shipped":
                    changes.update(carrier="DHL", tracking_number=f"00340434{rng.randrange(10**9, 10**10)}")
                updated = store.update("shipments", record.id, changes, now_ms())
                if updated is not None:
                    changed(updated)

    issuer = TokenIssuer(config.token, float(config.options.get("token_ttl_seconds", 3600)))
    routes = [
        *issuer.routes(),
        Route("/v1/shipments", listing, methods=["GET"]),
        Route("/v1/shipments", create, methods=["POST"]),
        Route("/v1/shipments/{id}", show, methods=["GET"]),
        Route("/v1/shipments/{id}/cancel", cancel, methods=["POST"]),
    ]
    return sandbox_app(config, routes, store, issuer.authenticate, error_body, signer("standard_webhooks", config.webhook_secret),
                       background=advance)
