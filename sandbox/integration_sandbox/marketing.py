"""The sandbox marketing automation (Mailchimp-like): one audience, members, campaigns, email activity.

Auth as Mailchimp: HTTP Basic with any user name and the API key as password (or `Bearer <key>`).
Lists page by `offset`/`count` with `total_items`; `since_last_changed` / `since` for incremental reads.
Members are addressed by subscriber hash (MD5 of the lower-cased email); `PATCH` at a member's hash
changes its email (and so its hash); `POST /3.0/lists/{id}` is the batch subscribe endpoint (up to 500
members). As Mailchimp, the audience's merge fields (`/3.0/lists/{id}/merge-fields`) must exist before a
member uses them: an unknown one is refused with a 400 listing it. Large member pages are slow at
Mailchimp: option `page_delay_ms` (default 0) holds each member list answer that long per 100
members in it. As Mailchimp, at most 10 requests are in flight at once (option `max_connections`,
0 off): one more is answered 429 "Too Many Requests". Engagement: `member_rating` (1-5) on each member and
per-campaign email activity (open, click, bounce). Mailchimp's own webhooks are unsigned; the sandbox
signs them with the generic `hmac` scheme.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import re
import uuid
from collections.abc import Iterator
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import _fake
from ._app import BadRequest, basic_password, bearer, int_param, iso_utc, now_ms, parse_body, parse_time, sandbox_app
from ._config import SystemConfig
from ._ratelimit import Simultaneous
from ._store import Record, Store, objects
from ._webhooks import event, signer

LIST_ID = "a1b2c3d4e5"
CAMPAIGNS = 5
PROBLEM_RATES = {"missing_name": 0.03, "inconsistent_country": 0.03}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_TAG = re.compile(r"^[A-Z][A-Z0-9_]{0,9}$")  # Mailchimp: up to 10 characters
# Mailchimp's defaults for a new audience, and the COUNTRY the seeded members carry
MERGE_FIELDS = (("FNAME", "First Name", "text"), ("LNAME", "Last Name", "text"), ("ADDRESS", "Address", "address"),
                ("PHONE", "Phone Number", "phone"), ("BIRTHDAY", "Birthday", "birthday"), ("COUNTRY", "Country", "text"))


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased email."""
    return hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's id, not security


def error_body(status: int, message: str) -> dict[str, Any]:
    """Mailchimp's problem-details shape."""
    titles = {400: "Invalid Resource", 401: "API Key Invalid", 404: "Resource Not Found", 405: "Method Not Allowed",
              429: "Too Many Requests"}
    detail = ("Your API key may be invalid, or you've attempted to access the wrong datacenter."
              if status == 401 else message)
    return {"type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": titles.get(status, "Error"),
            "status": status, "detail": detail, "instance": str(uuid.uuid4())}


def authenticate(request: Request, token: str) -> bool:
    """Basic auth with the key as password, or `Bearer <key>`."""
    password = basic_password(request)
    return bearer(request, token) or (password is not None and hmac.compare_digest(password, token))


def seed(store: Store, seed_: int, size: int) -> dict[str, Any]:
    """`size` members, five campaigns and one activity row per member; returns the seed report."""
    rng = random.Random(seed_ + 7)
    ids = range(101, 101 + size)
    problems = _fake.pick_problems(rng, ids, PROBLEM_RATES)
    nameless, bad_country = set(problems["missing_name"]), set(problems["inconsistent_country"])
    campaign_ids = [f"c{seed_ % 1000:03d}{n:05d}" for n in range(1, CAMPAIGNS + 1)]

    def records() -> Iterator[Record]:
        for n, cid in enumerate(campaign_ids, start=1):
            sent = _fake.SEED_EPOCH_MS + n * 20 * 86_400_000
            yield Record("campaigns", n, sent, sent, {"id": cid, "status": "sent", "emails_sent": size,
                                                      "settings": {"title": f"Newsletter {n}",
                                                                   "subject_line": f"News #{n}"},
                                                      "send_time": iso_utc(sent)})
        for i in ids:
            p = _fake.person(i, seed_)
            created = _fake.created_ms(rng)
            merge = {"FNAME": "" if i in nameless else p.first, "LNAME": "" if i in nameless else p.last,
                     "COUNTRY": _fake.BAD_COUNTRIES[p.country] if i in bad_country else p.country}
            yield Record("members", i, created, created + rng.randrange(1, 86_400_000), {
                "id": subscriber_hash(p.email), "email_address": p.email,
                "status": rng.choice(["subscribed"] * 8 + ["unsubscribed", "cleaned"]),
                "merge_fields": merge, "member_rating": rng.randint(1, 5), "list_id": LIST_ID})
            n = rng.randrange(CAMPAIGNS)
            sent = _fake.SEED_EPOCH_MS + (n + 1) * 20 * 86_400_000
            actions = [{"action": a, "timestamp": iso_utc(sent + rng.randrange(1, 7 * 86_400_000))}
                       for a in rng.sample(["open", "click", "bounce"], rng.randint(1, 2))]
            yield Record("activity", i, sent, sent + 7 * 86_400_000, {
                "campaign_id": campaign_ids[n], "list_id": LIST_ID, "email_id": subscriber_hash(p.email),
                "email_address": p.email, "activity": actions})

    store.bulk_insert(records())
    report = {"system": "marketing", "seed": seed_, "size": size,
              "counts": {"members": size, "campaigns": CAMPAIGNS, "activity": size}, "list_id": LIST_ID,
              "campaigns": campaign_ids, "rates": PROBLEM_RATES,
              "problems": {k: [str(i) for i in v] for k, v in problems.items()}}
    store.set_meta("seed_report", json.dumps(report))
    return report


class _Member(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email_address: str
    status: Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional"] | None = None
    status_if_new: Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional"] | None = None
    merge_fields: dict[str, str] = Field(default_factory=dict)


class _Change(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email_address: str | None = None
    status: Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional"] | None = None
    merge_fields: dict[str, str] = Field(default_factory=dict)


class _MergeField(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tag: str
    name: str
    type: Literal["text", "number", "address", "phone", "date", "url", "imageurl", "radio", "dropdown",
                  "birthday", "zip"]


class _Batch(BaseModel):
    members: list[_Member] = Field(max_length=500)
    update_existing: bool = False


def build_app(config: SystemConfig) -> Starlette:
    """The marketing app for a config; seeds its SQLite file on first start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.database)
    if store.is_empty():
        config.seed_report.write_text(json.dumps(seed(store, config.seed, config.size), indent=1))
    store.index_property("members", "id")
    page_delay = float(config.options.get("page_delay_ms", 0)) / 1000  # seconds per 100 members answered

    def audience(request: Request) -> None:
        if request.path_params["list_id"] != LIST_ID:
            raise BadRequest(404, "The requested resource could not be found.")

    def member(record: Record) -> dict[str, Any]:
        return {**record.props, "timestamp_opt": iso_utc(record.created_ms), "last_changed": iso_utc(record.updated_ms)}

    def window(request: Request) -> tuple[int, int]:
        return int_param(request, "offset", 0, 0, 10**9), int_param(request, "count", 10, 1, 1000)

    def merge_fields() -> list[dict[str, Any]]:
        stored = store.get_meta("merge_fields")
        if stored is not None:
            return list(json.loads(stored))
        return [{"merge_id": n, "tag": tag, "name": name, "type": type_, "required": False, "default_value": "",
                 "public": False, "display_order": n + 1, "options": {}, "help_text": "", "list_id": LIST_ID}
                for n, (tag, name, type_) in enumerate(MERGE_FIELDS, start=1)]

    def check_fields(values: dict[str, str]) -> None:
        known = {f["tag"] for f in merge_fields()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BadRequest(400, "Your merge fields were invalid.", [
                {"field": tag, "message": f"Merge field \"{tag}\" does not exist in this audience"} for tag in unknown])

    def check_email(email: str) -> None:
        if not _EMAIL.match(email):
            raise BadRequest(400, f"{email} looks fake or invalid, please enter a real email address.")

    def upsert(body: _Member, update_existing: bool) -> tuple[str, Record | None]:
        check_email(body.email_address)
        check_fields(body.merge_fields)
        if store.find("members", "id", subscriber_hash(body.email_address), archived=True) is not None:
            raise BadRequest(400, f"{body.email_address} was permanently deleted and cannot be re-imported. The "
                             "contact must re-subscribe to get back on the list.")
        existing = store.find("members", "id", subscriber_hash(body.email_address))
        if existing is not None:
            if not update_existing:
                return "exists", existing
            changes: dict[str, Any] = {"merge_fields": {**existing.props["merge_fields"], **body.merge_fields}}
            if body.status:
                changes["status"] = body.status
            return "updated", store.update("members", existing.id, changes, now_ms())
        props = {"id": subscriber_hash(body.email_address), "email_address": body.email_address,
                 "status": body.status_if_new or body.status or "subscribed", "merge_fields": body.merge_fields,
                 "member_rating": 2, "list_id": LIST_ID}
        return "created", store.create("members", props, now_ms())

    def notify(record: Record, kind: str) -> None:
        event_id = f"mc-{record.id}-{record.updated_ms}"
        payload = {"type": kind, "fired_at": iso_utc(record.updated_ms),
                   "data": {"id": record.props["id"], "email": record.props["email_address"], "list_id": LIST_ID,
                            "merges": record.props["merge_fields"]}}
        store.enqueue([event(event_id, kind, payload)], now_ms() / 1000)

    async def members(request: Request) -> Response:
        audience(request)
        offset, count = window(request)
        conditions = []
        if "since_last_changed" in request.query_params:
            since = parse_time(request.query_params["since_last_changed"], "since_last_changed")
            conditions.append(objects.c.updated_ms > since)
        if "status" in request.query_params:
            conditions.append(sa.func.json_extract(objects.c.props, "$.status") == request.query_params["status"])
        total, records = store.page("members", offset, count, conditions)
        await asyncio.sleep(page_delay * len(records) / 100)
        return JSONResponse({"members": [member(r) for r in records], "list_id": LIST_ID, "total_items": total})

    async def get_member(request: Request) -> Response:
        audience(request)
        record = store.find("members", "id", request.path_params["hash"].lower())
        if record is None:
            raise BadRequest(404, "The requested resource could not be found.")
        return JSONResponse(member(record))

    async def put_member(request: Request) -> Response:
        audience(request)
        body = await parse_body(request, _Member)
        if subscriber_hash(body.email_address) != request.path_params["hash"].lower():
            raise BadRequest(400, "The resource submitted could not be validated: the hash does not match the email.")
        outcome, record = upsert(body, update_existing=True)
        assert record is not None
        notify(record, "subscribe" if outcome == "created" else "profile")
        return JSONResponse(member(record))

    async def patch_member(request: Request) -> Response:
        audience(request)
        body = await parse_body(request, _Change)
        record = store.find("members", "id", request.path_params["hash"].lower())
        if record is None:
            raise BadRequest(404, "The requested resource could not be found.")
        check_fields(body.merge_fields)
        changes: dict[str, Any] = {"merge_fields": {**record.props["merge_fields"], **body.merge_fields}}
        if body.email_address and subscriber_hash(body.email_address) != record.props["id"]:
            check_email(body.email_address)
            if store.find("members", "id", subscriber_hash(body.email_address)) is not None:
                raise BadRequest(400, f"{body.email_address} is already a list member. Use PUT to insert or "
                                 "update list members.")
            changes.update(id=subscriber_hash(body.email_address), email_address=body.email_address)
        if body.status:
            changes["status"] = body.status
        updated = store.update("members", record.id, changes, now_ms())
        assert updated is not None
        notify(updated, "profile")
        return JSONResponse(member(updated))

    async def archive_member(request: Request) -> Response:
        """`DELETE .../members/{hash}` archives: the member stays, status `archived`, mailed no more."""
        audience(request)
        record = store.find("members", "id", request.path_params["hash"].lower())
        if record is None:
            raise BadRequest(404, "The requested resource could not be found.")
        store.update("members", record.id, {"status": "archived"}, now_ms())
        return Response(status_code=204)

    async def delete_permanent(request: Request) -> Response:
        """`POST .../members/{hash}/actions/delete-permanent`: erased; the email cannot be re-imported."""
        audience(request)
        record = store.find("members", "id", request.path_params["hash"].lower())
        if record is None:
            raise BadRequest(404, "The requested resource could not be found.")
        store.archive("members", record.id, now_ms())
        return Response(status_code=204)

    async def list_fields(request: Request) -> Response:
        audience(request)
        offset, count = window(request)
        fields = merge_fields()
        return JSONResponse({"merge_fields": fields[offset:offset + count], "list_id": LIST_ID,
                             "total_items": len(fields)})

    async def add_field(request: Request) -> Response:
        audience(request)
        body = await parse_body(request, _MergeField)
        fields = merge_fields()
        if not _TAG.match(body.tag):
            raise BadRequest(400, "The resource submitted could not be validated.",
                             [{"field": "tag", "message": "A tag is 1 to 10 capital letters, digits or _."}])
        if body.tag in {f["tag"] for f in fields}:
            raise BadRequest(400, f"A Merge Field with the tag \"{body.tag}\" already exists for this list.")
        field = {"merge_id": max(f["merge_id"] for f in fields) + 1, "tag": body.tag, "name": body.name,
                 "type": body.type, "required": False, "default_value": "", "public": False,
                 "display_order": len(fields) + 2, "options": {}, "help_text": "", "list_id": LIST_ID}
        store.set_meta("merge_fields", json.dumps([*fields, field]))
        return JSONResponse(field)

    async def batch(request: Request) -> Response:
        audience(request)
        body = await parse_body(request, _Batch)
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in body.members:
            try:
                outcome, record = upsert(item, body.update_existing)
            except BadRequest as exc:
                errors.append({"email_address": item.email_address, "error": exc.message,
                               "error_code": "ERROR_GENERIC"})
                continue
            if outcome == "exists":
                errors.append({"email_address": item.email_address,
                               "error": f"{item.email_address} is already a list member",
                               "error_code": "ERROR_CONTACT_EXISTS"})
            elif record is not None:
                (created if outcome == "created" else updated).append(member(record))
                notify(record, "subscribe" if outcome == "created" else "profile")
        return JSONResponse({"new_members": created, "updated_members": updated, "errors": errors,
                             "total_created": len(created), "total_updated": len(updated), "error_count": len(errors)})

    async def campaigns(request: Request) -> Response:
        offset, count = window(request)
        total, records = store.page("campaigns", offset, count)
        return JSONResponse({"campaigns": [r.props for r in records], "total_items": total})

    async def activity(request: Request) -> Response:
        offset, count = window(request)
        campaign = request.path_params["campaign_id"]
        if store.find("campaigns", "id", campaign) is None:
            raise BadRequest(404, "The requested resource could not be found.")
        conditions = [sa.func.json_extract(objects.c.props, "$.campaign_id") == campaign]
        if "since" in request.query_params:
            conditions.append(objects.c.updated_ms > parse_time(request.query_params["since"], "since"))
        total, records = store.page("activity", offset, count, conditions)
        return JSONResponse({"emails": [r.props for r in records], "campaign_id": campaign, "total_items": total})

    routes = [
        Route("/3.0/lists/{list_id}", batch, methods=["POST"]),
        Route("/3.0/lists/{list_id}/members", members, methods=["GET"]),
        Route("/3.0/lists/{list_id}/members/{hash}", get_member, methods=["GET"]),
        Route("/3.0/lists/{list_id}/members/{hash}", put_member, methods=["PUT"]),
        Route("/3.0/lists/{list_id}/members/{hash}", patch_member, methods=["PATCH"]),
        Route("/3.0/lists/{list_id}/members/{hash}", archive_member, methods=["DELETE"]),
        Route("/3.0/lists/{list_id}/members/{hash}/actions/delete-permanent", delete_permanent, methods=["POST"]),
        Route("/3.0/lists/{list_id}/merge-fields", list_fields, methods=["GET"]),
        Route("/3.0/lists/{list_id}/merge-fields", add_field, methods=["POST"]),
        Route("/3.0/campaigns", campaigns, methods=["GET"]),
        Route("/3.0/reports/{campaign_id}/email-activity", activity, methods=["GET"]),
    ]
    # Mailchimp's limit: 10 simultaneous connections per user (option `max_connections`, 0 off)
    limit = Middleware(Simultaneous, limit=int(config.options.get("max_connections", 10)), error_body=error_body)
    return sandbox_app(config, routes, store, authenticate, error_body, signer("hmac", config.webhook_secret),
                       middleware=[limit])
