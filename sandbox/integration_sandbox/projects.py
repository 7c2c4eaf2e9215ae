"""The sandbox project tool (projects, a Harvest-like professional-services API) under `/api/v2`.

Its own style, not the other systems' envelopes: an API key in `X-Api-Key`; lists are bare JSON
arrays in (modification time, id) order, paged by `page` / `per_page` with RFC 8288 `Link` headers
(`rel="next"`), filtered by `updated_since` (ISO 8601, inclusive); `X-RateLimit-Remaining` /
`X-RateLimit-Reset` on every answer. Projects are its own; clients are created by POST, and a
second client with the same `reference` answers 409 naming the existing one
(`{"error": ..., "existing": {"id": ...}}`); PATCH changes one. No webhooks.
"""

from __future__ import annotations

import hmac
import json
import random
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import _fake
from ._app import BadRequest, bearer, int_param, iso_utc, now_ms, parse_body, parse_time, path_id, sandbox_app
from ._config import SystemConfig
from ._faults import ADMIN_PREFIX
from ._store import Record, Store, objects

PROBLEM_RATES = {"missing_name": 0.04, "negative_budget": 0.03}
STATUSES = ("planned", "active", "closed")
QUOTA = 1000  # requests a window, announced in the rate-limit headers (never enforced)


def error_body(status: int, message: str) -> dict[str, Any]:
    """`{"error": ..., "message": ...}`, the tool's error shape."""
    return {"error": {409: "conflict", 404: "not_found", 401: "unauthorized"}.get(status, "invalid"), "message": message}


def api_key(request: Request, token: str) -> bool:
    """`X-Api-Key: <token>`; the sandbox's admin face (`/_sandbox/`) takes the Bearer token too."""
    admin = request.url.path.startswith(ADMIN_PREFIX) and bearer(request, token)
    return admin or hmac.compare_digest(request.headers.get("x-api-key", ""), token)


def seed(store: Store, seed_: int, size: int) -> dict[str, Any]:
    """One project per two seed units; returns the seed report."""
    rng = random.Random(seed_ + 9)
    ids = range(1, 1 + max(1, size // 2))
    problems = _fake.pick_problems(rng, ids, PROBLEM_RATES)
    nameless, negative = set(problems["missing_name"]), set(problems["negative_budget"])

    def records() -> Iterator[Record]:
        for i in ids:
            created = _fake.created_ms(rng)
            yield Record("projects", i, created, created + rng.randrange(1, 86_400_000), {
                "code": f"PRJ-{i:05d}", "name": None if i in nameless else f"Project {i}",
                "status": rng.choice(STATUSES), "budget": -100 if i in negative else rng.randrange(1, 500) * 100})

    store.bulk_insert(records())
    report = {"system": "projects", "seed": seed_, "size": size, "counts": {"projects": len(ids)},
              "rates": PROBLEM_RATES, "problems": {k: [str(i) for i in v] for k, v in problems.items()}}
    store.set_meta("seed_report", json.dumps(report))
    return report


class _Client(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    reference: str = Field(min_length=1, max_length=64)


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    email: EmailStr | None = None
    reference: str | None = Field(None, min_length=1, max_length=64)


def build_app(config: SystemConfig) -> Starlette:
    """The project tool's app for a config; seeds its SQLite file on first start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.database)
    if store.is_empty():
        config.seed_report.write_text(json.dumps(seed(store, config.seed, config.size), indent=1))
    store.index_property("clients", "reference")

    def shape(record: Record) -> dict[str, Any]:
        return {"id": record.id, **record.props, "created_at": iso_utc(record.created_ms),
                "updated_at": iso_utc(record.updated_ms)}

    def limits() -> dict[str, str]:
        return {"X-RateLimit-Limit": str(QUOTA), "X-RateLimit-Remaining": str(QUOTA - 1), "X-RateLimit-Reset": "60"}

    def listing(kind: str) -> Any:
        async def handle(request: Request) -> Response:
            page, per_page = int_param(request, "page", 1, 1, 10**6), int_param(request, "per_page", 50, 1, 200)
            raw = request.query_params.get("updated_since")
            conditions = [objects.c.updated_ms >= parse_time(raw, "updated_since")] if raw else []
            total, records = store.page(kind, (page - 1) * per_page, per_page, conditions, by_modified=True)
            headers = limits()
            if page * per_page < total:
                headers["Link"] = f'<{request.url.include_query_params(page=page + 1)}>; rel="next"'
            return JSONResponse([shape(r) for r in records], headers=headers)
        return handle

    async def create_client(request: Request) -> Response:
        body = await parse_body(request, _Client)
        existing = store.find("clients", "reference", body.reference)
        if existing is not None:
            conflict = {**error_body(409, "a client with this reference exists"), "existing": {"id": existing.id}}
            return JSONResponse(conflict, 409, headers=limits())
        record = store.create("clients", body.model_dump(), now_ms())
        return JSONResponse(shape(record), 201, headers=limits())

    async def change_client(request: Request) -> Response:
        changes = (await parse_body(request, _Change)).model_dump(exclude_none=True)
        record = store.update("clients", path_id(request), changes, now_ms())
        if record is None:
            raise BadRequest(404, "no such client")
        return JSONResponse(shape(record), headers=limits())

    routes = [
        Route("/api/v2/projects", listing("projects"), methods=["GET"]),
        Route("/api/v2/clients", listing("clients"), methods=["GET"]),
        Route("/api/v2/clients", create_client, methods=["POST"]),
        Route("/api/v2/clients/{id}", change_client, methods=["PATCH"]),
    ]
    return sandbox_app(config, routes, store, api_key, error_body)
