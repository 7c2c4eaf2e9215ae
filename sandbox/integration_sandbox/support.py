"""The sandbox support desk (Zendesk-like): tickets, users and custom object records under `/api/v2`.

Users are upserted with `POST /users/create_or_update.json` (matched by external_id, else email);
custom object records (the order history agents see) with `PATCH /custom_objects/{key}/records?external_id=`.

Auth as Zendesk takes an API token: `Basic {email}/token:{api_token}`; `Bearer` carries only OAuth
access tokens, which this desk does not issue, so Bearer with the API token is refused (401). Lists
page by cursor (`page[size]`, `page[after]`; `meta.has_more`, absolute `links.next`) or by offset
(`page`/`per_page`, absolute `next_page`), which Zendesk refuses past the first 10,000 records with
400 (option `offset_limit`, default 10,000); users are looked up by id with `users/show_many.json`
(at most 100 ids); an incremental cursor export serves extraction. The account's rate limit is
Zendesk's (option `rate_limit_per_minute`, default 700, the Enterprise plan's; 0: none; in a window
of `rate_limit_window_seconds`, default 60): `X-Rate-Limit-Remaining` and `ratelimit-reset` on every
answer, 429 with `Retry-After` beyond. Not modelled: the endpoints' own limits (the incremental
exports' 10 a minute).
Webhooks are signed with the generic `hmac` scheme (Zendesk's own header is not among the shared schemes).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import _fake
from ._app import (
    BadRequest,
    basic_credentials,
    bounded,
    int_param,
    iso_utc,
    now_ms,
    parse_body,
    path_id,
    sandbox_app,
)
from ._config import SystemConfig
from ._ratelimit import RateLimit
from ._store import Record, Store, objects
from ._webhooks import event, signer

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
PROBLEM_RATES = {"invalid_email": 0.03, "duplicate": 0.03, "missing_requester": 0.02}
INCREMENTAL_PAGE = 1000
OFFSET_LIMIT = 10_000  # records: Zendesk answers 400 to an offset page reaching past them (since 2024-05)
SHOW_MANY = 100  # ids a users/show_many call may name


def error_body(status: int, message: str) -> dict[str, Any]:
    """Zendesk's error shapes."""
    if status == 401:
        return {"error": "Couldn't authenticate you"}
    if status == 404:
        return {"error": "RecordNotFound", "description": "Not found"}
    return {"error": "InvalidValue" if status == 400 else "Error", "description": message}


def authenticate(request: Request, token: str) -> bool:
    """An API token as Zendesk takes one: `Basic {email}/token:{token}` (never as Bearer)."""
    user, password = basic_credentials(request)
    return user.endswith("/token") and len(user) > len("/token") and hmac.compare_digest(password, token)


def seed(store: Store, seed_: int, size: int) -> dict[str, Any]:
    """`size` end users and `size` tickets; returns the seed report."""
    rng = random.Random(seed_ + 3)
    user_ids = range(101, 101 + size)
    ticket_ids = range(101, 101 + size)
    user_problems = _fake.pick_problems(rng, user_ids, {k: PROBLEM_RATES[k] for k in ("invalid_email", "duplicate")})
    ticket_problems = _fake.pick_problems(rng, ticket_ids, {"missing_requester": PROBLEM_RATES["missing_requester"]})
    invalid, duplicate = set(user_problems["invalid_email"]), set(user_problems["duplicate"])
    no_requester = set(ticket_problems["missing_requester"])
    duplicate_of: dict[str, str] = {}

    def records() -> Iterator[Record]:
        for uid in user_ids:
            p = _fake.person(uid, seed_)
            email = p.email
            if uid in invalid:
                email = p.email.replace("@", "")
            elif uid in duplicate:
                # the original keeps its own, valid email, or the two would not be one person twice
                original = rng.choice([i for i in (uid - 1, uid + 1)
                                       if i in user_ids and i not in duplicate and i not in invalid] or [101])
                duplicate_of[str(uid)] = str(original)
                email = _fake.person(original, seed_).email
            created = _fake.created_ms(rng)
            yield Record("users", uid, created, created + rng.randrange(1, 86_400_000), {
                "name": f"{p.first} {p.last}", "email": email, "role": "end-user", "phone": p.phone,
                "locale": "en-US"})
        for tid in ticket_ids:
            created = _fake.created_ms(rng)
            yield Record("tickets", tid, created, created + rng.randrange(1, 5 * 86_400_000), {
                "subject": f"Question about order {rng.randrange(1000, 9999)}",
                "description": "Where is my parcel?", "status": rng.choice(STATUSES),
                "priority": rng.choice(PRIORITIES), "type": "question", "tags": ["sandbox"],
                "requester_id": None if tid in no_requester else rng.choice(user_ids)})

    store.bulk_insert(records())
    report = {"system": "support", "seed": seed_, "size": size, "counts": {"users": size, "tickets": size},
              "rates": PROBLEM_RATES,
              "problems": {"users": {k: [str(i) for i in v] for k, v in user_problems.items()},
                           "tickets": {k: [str(i) for i in v] for k, v in ticket_problems.items()}},
              "duplicate_of": duplicate_of}
    store.set_meta("seed_report", json.dumps(report))
    return report


class _TicketFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(None, max_length=500)
    description: str | None = None
    comment: dict[str, Any] | None = None
    status: Literal[STATUSES] | None = None  # type: ignore[valid-type]
    priority: Literal[PRIORITIES] | None = None  # type: ignore[valid-type]
    type: Literal["question", "incident", "problem", "task"] | None = None
    requester_id: int | None = None
    external_id: str | None = None
    tags: list[str] | None = None


class _TicketBody(BaseModel):
    ticket: _TicketFields


class _UserFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    email: str | None = None
    phone: str | None = None
    organization: str | None = None
    role: Literal["end-user", "agent", "admin"] = "end-user"
    external_id: str | None = None


class _UserBody(BaseModel):
    user: _UserFields


class _RecordFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    external_id: str | None = None
    custom_object_fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class _RecordBody(BaseModel):
    custom_object_record: _RecordFields


def build_app(config: SystemConfig) -> Starlette:
    """The support desk app for a config; seeds its SQLite file on first start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.database)
    if store.is_empty():
        config.seed_report.write_text(json.dumps(seed(store, config.seed, config.size), indent=1))
    singular = {"tickets": "ticket", "users": "user"}

    def shape(record: Record) -> dict[str, Any]:
        return {"id": record.id, **record.props, "created_at": iso_utc(record.created_ms),
                "updated_at": iso_utc(record.updated_ms)}

    offset_limit = int(config.options.get("offset_limit", OFFSET_LIMIT))

    def paged(request: Request, kind: str) -> Response:
        """Cursor paging when `page[size]` or `page[after]` is given, else offset paging (capped)."""
        if {"page[size]", "page[after]"} & request.query_params.keys():
            return cursor_paged(request, kind)
        page = int_param(request, "page", 1, 1, 10**9)
        per_page = int_param(request, "per_page", 100, 1, 100)
        if page * per_page > offset_limit:
            raise BadRequest(400, f"Offset pagination is limited to the first {offset_limit} records; "
                             "use cursor pagination (page[size]) to read further")
        total, records = store.page(kind, (page - 1) * per_page, per_page)
        last = (page - 1) * per_page + len(records) >= total

        def link(n: int) -> str:
            return str(request.url.include_query_params(page=n, per_page=per_page))

        return JSONResponse({kind: [shape(r) for r in records], "count": total,
                             "next_page": None if last else link(page + 1),
                             "previous_page": link(page - 1) if page > 1 else None})

    def cursor_paged(request: Request, kind: str) -> Response:
        """Zendesk's cursor pagination: by id, `meta.after_cursor` and an absolute `links.next`."""
        size = int_param(request, "page[size]", 100, 1, 100)
        after = _cursor_id(request.query_params.get("page[after]"))
        records = store.after_id(kind, after, size + 1)
        more, records = len(records) > size, records[:size]
        after_cursor = _encode(0, records[-1].id) if records else None
        before_cursor = _encode(0, records[0].id) if records else None
        following = {"page[size]": size, "page[after]": after_cursor}
        next_link = str(request.url.replace_query_params(**following)) if more else None
        return JSONResponse({kind: [shape(r) for r in records],
                             "meta": {"has_more": more, "after_cursor": after_cursor, "before_cursor": before_cursor},
                             "links": {"next": next_link, "prev": None}})

    def notify(record: Record, kind: str) -> None:
        event_id = f"{record.type}-{record.id}-{record.updated_ms}"
        type_ = f"zen:event-type:{singular[record.type]}.{kind}"
        payload = {"id": event_id, "type": type_, "detail": shape(record)}
        store.enqueue([event(event_id, type_, payload)], now_ms() / 1000)

    async def list_tickets(request: Request) -> Response:
        return paged(request, "tickets")

    async def list_users(request: Request) -> Response:
        return paged(request, "users")

    async def show_many(request: Request) -> Response:
        """`GET /users/show_many.json?ids=1,2,3`: the users found among at most 100 ids."""
        try:
            ids = [int(i) for i in request.query_params.get("ids", "").split(",") if i.strip()]
        except ValueError:
            raise BadRequest(400, "ids must be a comma-separated list of user ids") from None
        if not ids or len(ids) > SHOW_MANY:
            raise BadRequest(400, f"ids must name 1 to {SHOW_MANY} users")
        found = [shape(r) for r in (store.get("users", i) for i in dict.fromkeys(ids)) if r is not None]
        return JSONResponse({"users": found, "next_page": None, "previous_page": None, "count": len(found)})

    async def show(request: Request) -> Response:
        kind = request.url.path.split("/")[3]
        record = store.get(kind, path_id(request))
        if record is None:
            raise BadRequest(404, "not found")
        return JSONResponse({singular[kind]: shape(record)})

    async def delete_user(request: Request) -> Response:
        """Zendesk's `DELETE /users/{id}.json`: the user is soft-deleted (inactive, gone from lists)."""
        record = store.archive("users", path_id(request), now_ms())
        if record is None:
            raise BadRequest(404, "not found")
        notify(record, "deleted")
        return JSONResponse({"user": {**shape(record), "active": False}})

    async def create_ticket(request: Request) -> Response:
        fields = (await parse_body(request, _TicketBody)).ticket
        if not (fields.subject or fields.comment):
            raise BadRequest(400, "a ticket needs a subject or a comment")
        props = fields.model_dump(exclude_none=True)
        comment = props.pop("comment", None)  # a ticket's first comment is its description
        if comment and "description" not in props:
            props["description"] = str(comment.get("body", ""))
        props.setdefault("status", "new")
        props.setdefault("priority", "normal")
        record = store.create("tickets", props, now_ms())
        notify(record, "created")
        return JSONResponse({"ticket": shape(record)}, 201)

    async def update_ticket(request: Request) -> Response:
        fields = (await parse_body(request, _TicketBody)).ticket
        record = store.update("tickets", path_id(request), fields.model_dump(exclude_none=True), now_ms())
        if record is None:
            raise BadRequest(404, "not found")
        notify(record, "updated")
        return JSONResponse({"ticket": shape(record)})

    async def create_user(request: Request) -> Response:
        fields = (await parse_body(request, _UserBody)).user
        record = store.create("users", fields.model_dump(exclude_none=True), now_ms())
        notify(record, "created")
        return JSONResponse({"user": shape(record)}, 201)

    async def create_or_update_user(request: Request) -> Response:
        """Zendesk's upsert: the user with this external_id (else this email) is updated, or created."""
        fields = (await parse_body(request, _UserBody)).user
        props = fields.model_dump(exclude_none=True)
        found = (store.find("users", "external_id", fields.external_id) if fields.external_id else None) or \
            (store.find("users", "email", fields.email) if fields.email else None)
        if found is None:
            record = store.create("users", props, now_ms())
            notify(record, "created")
            return JSONResponse({"user": shape(record)}, 201)
        updated = store.update("users", found.id, props, now_ms())
        if updated is None:  # deleted between the lookup and the update
            raise BadRequest(404, "user not found")
        notify(updated, "updated")
        return JSONResponse({"user": shape(updated)})

    def record_shape(record: Record) -> dict[str, Any]:
        return {"id": str(record.id), "custom_object_key": record.type.removesuffix("_records"),
                **record.props, "created_at": iso_utc(record.created_ms), "updated_at": iso_utc(record.updated_ms)}

    async def upsert_record(request: Request) -> Response:
        """Zendesk's `PATCH .../records?external_id=`: set the record with that external id."""
        kind = f"{request.path_params['key']}_records"
        external_id = request.query_params.get("external_id")
        if not external_id:
            raise BadRequest(400, "external_id is required")
        fields = (await parse_body(request, _RecordBody)).custom_object_record
        props = {**fields.model_dump(exclude_none=True), "external_id": external_id}
        found = store.find(kind, "external_id", external_id)
        if found is None:
            return JSONResponse({"custom_object_record": record_shape(store.create(kind, props, now_ms()))}, 201)
        updated = store.update(kind, found.id, props, now_ms())
        if updated is None:  # deleted between the lookup and the update
            raise BadRequest(404, "record not found")
        return JSONResponse({"custom_object_record": record_shape(updated)})

    async def list_records(request: Request) -> Response:
        """Records of a custom object, cursor-paginated as Zendesk does (`page[size]`, `page[after]`)."""
        kind = f"{request.path_params['key']}_records"
        size = int_param(request, "page[size]", 100, 1, 100)
        after = int(request.query_params.get("page[after]") or 0)
        records = store.after_id(kind, after, size + 1)
        more = len(records) > size
        return JSONResponse({"custom_object_records": [record_shape(r) for r in records[:size]],
                             "meta": {"has_more": more, "after_cursor": str(records[size - 1].id) if more else None}})

    async def incremental(request: Request) -> Response:
        kind = request.url.path.split("/")[4]
        cursor = request.query_params.get("cursor")
        if cursor:
            since_ms, after_id = _decode(cursor)
        elif "start_time" in request.query_params:
            start = int_param(request, "start_time", 0, 0, 10**11)
            since_ms, after_id = start * 1000, 0
        else:
            raise BadRequest(400, "start_time or cursor is required")
        per_page = int_param(request, "per_page", INCREMENTAL_PAGE, 1, INCREMENTAL_PAGE)
        after = ((objects.c.updated_ms == since_ms) & (objects.c.id > after_id)) | (objects.c.updated_ms > since_ms)
        _, records = store.page(kind, 0, per_page, [after], by_modified=True)
        end = len(records) < per_page
        last = records[-1] if records else None
        next_cursor = _encode(last.updated_ms, last.id) if last else _encode(since_ms, after_id)
        return JSONResponse({kind: [shape(r) for r in records], "after_cursor": next_cursor,
                             "after_url": str(request.url.replace_query_params(cursor=next_cursor, per_page=per_page)),
                             "end_of_stream": end})

    routes = [
        Route("/api/v2/tickets.json", list_tickets, methods=["GET"]),
        Route("/api/v2/tickets.json", create_ticket, methods=["POST"]),
        Route("/api/v2/tickets/{id}.json", show, methods=["GET"]),
        Route("/api/v2/tickets/{id}.json", update_ticket, methods=["PUT"]),
        Route("/api/v2/users.json", list_users, methods=["GET"]),
        Route("/api/v2/users.json", create_user, methods=["POST"]),
        Route("/api/v2/users/create_or_update.json", create_or_update_user, methods=["POST"]),
        Route("/api/v2/users/show_many.json", show_many, methods=["GET"]),
        Route("/api/v2/users/{id}.json", show, methods=["GET"]),
        Route("/api/v2/users/{id}.json", delete_user, methods=["DELETE"]),
        Route("/api/v2/custom_objects/{key}/records", upsert_record, methods=["PATCH"]),
        Route("/api/v2/custom_objects/{key}/records", list_records, methods=["GET"]),
        Route("/api/v2/incremental/tickets/cursor.json", incremental, methods=["GET"]),
        Route("/api/v2/incremental/users/cursor.json", incremental, methods=["GET"]),
    ]
    limit = Middleware(RateLimit, limit=int(config.options.get("rate_limit_per_minute", 700)),
                       window=float(config.options.get("rate_limit_window_seconds", 60)))
    return sandbox_app(config, routes, store, authenticate, error_body, signer("hmac", config.webhook_secret),
                       middleware=[limit])


def _encode(ms: int, id_: int) -> str:
    return base64.urlsafe_b64encode(f"{ms}:{id_}".encode()).decode()


def _cursor_id(cursor: str | None) -> int:
    """The last id read, from a `page[after]` cursor (none: from the start)."""
    return _decode(cursor)[1] if cursor else 0


def _decode(cursor: str) -> tuple[int, int]:
    try:
        ms, _, id_ = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        return bounded(int(ms), "cursor"), bounded(int(id_), "cursor")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest(400, f"invalid cursor {cursor!r}") from None
