"""The sandbox CRM (HubSpot-like): contacts, companies and deals under a date-based version
(`/crm/objects/2026-03/...`, deals also as `0-3`) and, for the tests' and benchmarks' own reads, the
legacy `/crm/v3/objects`.

Bearer-token auth; cursor pagination (`after`) on lists; the search endpoint with modification-date
filters and sorts (capped at 10,000 results, as HubSpot's is); creates and PATCH updates that bump the
modification date and keep each property's past values (`propertiesWithHistory` on reads); webhooks
signed HubSpot v3 style, one JSON array per delivery.

Both APIs return what HubSpot's do: only the properties asked for (HubSpot's defaults otherwise,
empty ones left out), a deal's contact as an association (set by a create's `associations`, read
with `associations=contacts` or the associations batch read, never a property); a create or update
naming a property the object lacks is refused with HubSpot's 400 (`PROPERTY_DOESNT_EXIST`). The
dated API is as strict as HubSpot's published spec for it besides: deals and companies filter on
`hs_lastmodifieddate` only, a search names `properties` and `after` and sorts by property name, and
contacts are updated in batches of up to 100, by id or by email (an invalid input refuses the batch,
naming it; one not found is an error of a 207 answer, the rest are written). A change shows in
search results only after the search-indexing delay (option `search_delay_ms`, changed at run time
with `PUT /_sandbox/search-delay {"ms": N}`), as HubSpot's search index lags its writes.

The dated API is rate limited as HubSpot limits a private app (each limit 0: none):
`rate_limit_per_10s` requests (default 190, the Professional and Enterprise limit) in any
`rate_limit_window_seconds` (10), searches aside, with HubSpot's `X-HubSpot-RateLimit-*` headers;
its searches to `rate_limit_search_per_second` (5) in any second, answered without rate-limit
headers as HubSpot's are; and every request to `rate_limit_daily` a day (625,000, Professional),
counted from midnight in the portal's `time_zone` (UTC), with `X-HubSpot-RateLimit-Daily` and
`-Daily-Remaining`. Beyond a limit: HubSpot's 429 body naming its policy (`TEN_SECONDLY_ROLLING`,
`SECONDLY`, `DAILY`), no Retry-After.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import random
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.middleware import Middleware
from starlette.routing import Route

from . import _fake
from ._app import BadRequest, bearer, bounded, int_param, iso_utc, now_ms, parse_body, path_id, sandbox_app
from ._config import SystemConfig
from ._ratelimit import DailyQuota, RollingRateLimit
from ._store import Record, Store, objects
from ._webhooks import event, signer

OBJECT_TYPES = ("contacts", "companies", "deals")
SINGULAR = {"contacts": "CONTACT", "companies": "COMPANY", "deals": "DEAL"}  # as HubSpot's messages name them
OBJECT_TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals"}
# What HubSpot returns when no `properties` are asked for (its documented defaults).
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
              "pipeline"),
}
# The properties the seeded records hold beyond HubSpot's own dates and id (the lead score: the
# example's load writes it), for readers that want them all.
PROPERTIES = {
    "contacts": ("company", "country", "email", "firstname", "hs_lead_score", "lastname", "phone"),
    "companies": ("country", "domain", "industry", "name"),
    "deals": ("amount", "closedate", "dealname", "dealstage", "pipeline"),
}
# The properties each object has in the sandbox's portal: a write naming another is refused.
KNOWN = {t: frozenset({*DEFAULT_PROPERTIES[t], *PROPERTIES[t]}) for t in DEFAULT_PROPERTIES}
LINK = "contact_id"  # where the store keeps a deal's associated contact; no property of HubSpot's
DEAL_TO_CONTACT = 3  # HubSpot's association type id (HUBSPOT_DEFINED, deal to contact)
# HubSpot names the modification date `lastmodifieddate` on contacts, `hs_lastmodifieddate` elsewhere.
MODIFIED = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate"}
DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
               "contractsent", "closedwon", "closedlost")
SEARCH_CAP = 10_000
DATED_API = r"/crm/(objects|associations)/"  # the paths HubSpot's limits apply to here (regular expressions)
SEARCHES = r"/crm/objects/[^/]+/[^/]+/search$"
HISTORY_LIMIT = 50  # HubSpot lists at most 50 records a page when asked for property history
PROBLEM_RATES = {
    "invalid_email": 0.04,
    "missing_email": 0.03,
    "duplicate": 0.04,
    "inconsistent_country": 0.05,
    "updated_twice": 0.03,
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 404: "OBJECT_NOT_FOUND",
               405: "METHOD_NOT_ALLOWED", 409: "CONFLICT"}


def iso(ms: int) -> str:
    """Epoch milliseconds as HubSpot's ISO 8601 UTC with milliseconds and `Z`."""
    return iso_utc(ms, millis=True)


def error_body(status: int, message: str) -> dict[str, Any]:
    """HubSpot's error shape."""
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
            "category": _CATEGORIES.get(status, "ERROR")}


# --- seed ------------------------------------------------------------------------------------------


def seed(store: Store, seed_: int, size: int) -> dict[str, Any]:
    """Fill an empty store with `size` contacts (plus companies and deals); returns the seed report."""
    rng = random.Random(seed_)
    contact_ids = range(101, 101 + size)
    problems = _fake.pick_problems(rng, contact_ids, PROBLEM_RATES)
    duplicate_of = {}
    clean = sorted(set(contact_ids) - {i for ids in problems.values() for i in ids})
    for dup in problems["duplicate"]:
        duplicate_of[dup] = rng.choice(clean) if clean else contact_ids[0]
    flags = {i: name for name, ids in problems.items() for i in ids}
    earlier: list[tuple[str, int, str, int, Any]] = []  # the phone numbers the "updated twice" replaced
    companies = max(1, size // 10)
    deals = max(1, size // 5)

    def contacts() -> Iterator[Record]:
        for cid in contact_ids:
            p = _fake.person(cid, seed_)
            created = _fake.created_ms(rng)
            updated = created + 1 + int(rng.random() * 30 * 86_400_000)
            props: dict[str, Any] = {"email": p.email, "firstname": p.first, "lastname": p.last,
                                     "company": p.company, "country": p.country, "phone": p.phone}
            match flags.get(cid):
                case "invalid_email":
                    props["email"] = rng.choice([p.email.replace("@", " at "), p.email.split("@")[0] + "@",
                                                 p.email.replace("@", "@@"), p.email.replace(".com", "")])
                case "missing_email":
                    props["email"] = None
                case "duplicate":
                    original = _fake.person(duplicate_of[cid], seed_)
                    props.update(email=original.email.upper() if rng.random() < 0.5 else original.email,
                                 firstname=original.first, lastname=original.last, company=original.company,
                                 country=original.country)
                case "inconsistent_country":
                    props["country"] = _fake.BAD_COUNTRIES[p.country]
                case "updated_twice":
                    props["phone"] = p.phone[:-2] + "00"
                    updated += rng.randrange(1, 86_400_000)
                    earlier.extend([("contacts", cid, "phone", created, p.phone),
                                    ("contacts", cid, "phone", updated, props["phone"])])
            yield Record("contacts", cid, created, updated, props)
        for i in range(101, 101 + companies):
            name = rng.choice(_fake.COMPANIES) + f" {i}"
            created = _fake.created_ms(rng)
            yield Record("companies", i, created, created + rng.randrange(1, 86_400_000), {
                "name": name, "domain": name.lower().replace(" ", "-") + ".example.com",
                "country": rng.choice(_fake.COUNTRIES),
                "industry": rng.choice(["RETAIL", "MANUFACTURING", "SOFTWARE"])})
        for i in range(101, 101 + deals):
            created = _fake.created_ms(rng)
            yield Record("deals", i, created, created + rng.randrange(1, 86_400_000), {
                "dealname": f"Deal {i}", "amount": f"{rng.randrange(100, 50_000)}.00",
                "dealstage": rng.choice(DEAL_STAGES[:5]), "pipeline": "default",
                "closedate": iso(created + rng.randrange(1, 60) * 86_400_000),
                LINK: str(rng.choice(contact_ids))})

    store.bulk_insert(contacts())
    store.bulk_history(earlier)
    report = {
        "system": "crm",
        "seed": seed_,
        "size": size,
        "counts": {"contacts": size, "companies": companies, "deals": deals},
        "rates": PROBLEM_RATES,
        "problems": {name: [str(i) for i in ids] for name, ids in problems.items()},
        "duplicate_of": {str(k): str(v) for k, v in duplicate_of.items()},
    }
    store.set_meta("seed_report", json.dumps(report))
    return report


# --- API -------------------------------------------------------------------------------------------


class _Properties(BaseModel):
    model_config = ConfigDict(extra="forbid")

    properties: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class _AssociationSpec(BaseModel):
    associationCategory: Literal["HUBSPOT_DEFINED", "INTEGRATOR_DEFINED", "USER_DEFINED", "WORK"]
    associationTypeId: int


class _ObjectId(BaseModel):
    id: str


class _Association(BaseModel):
    to: _ObjectId
    types: list[_AssociationSpec]


class _Create(_Properties):
    """A create names the new record's associations, if only as [] (HubSpot's schema requires them)."""

    associations: list[_Association] | None = None


class _Filter(BaseModel):
    propertyName: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
    operator: Literal["EQ", "NEQ", "GT", "GTE", "LT", "LTE"]
    value: str | int | float


class _FilterGroup(BaseModel):
    filters: list[_Filter] = Field(default_factory=list, max_length=6)


class _Sort(BaseModel):
    propertyName: str
    direction: Literal["ASCENDING", "DESCENDING"] = "ASCENDING"


class _Search(BaseModel):
    filterGroups: list[_FilterGroup] = Field(default_factory=list, max_length=5)
    sorts: list[_Sort | str] = Field(default_factory=list, max_length=1)
    limit: int = Field(10, ge=1, le=200)
    after: str | None = None
    properties: list[str] | None = None


def _as_ms(value: str | int | float) -> int:
    text = str(value)
    if text.isdigit():
        return bounded(int(text), "filter value")
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise BadRequest(400, f"{text!r} is neither epoch milliseconds nor an ISO 8601 date") from None


class _BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    idProperty: str | None = None
    objectWriteTraceId: str | None = None
    properties: dict[str, str]


class _BatchUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: list[_BatchItem] = Field(min_length=1, max_length=100)


class _AssociationInput(BaseModel):
    id: str
    after: str | None = None


class _AssociationRead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: list[_AssociationInput] = Field(min_length=1, max_length=1000)


def _no_such_properties(names: list[str]) -> BadRequest:
    """HubSpot's refusal of a write naming properties the object does not have."""
    invalid = [{"isValid": False, "message": f'Property "{name}" does not exist', "error": "PROPERTY_DOESNT_EXIST",
                "name": name} for name in names]
    return BadRequest(400, f"Property values were not valid: {json.dumps(invalid, separators=(',', ':'))}")


def _modified_names(type_: str, dated: bool) -> tuple[str, ...]:
    """The names a filter or sort on the modification date may use (the legacy API takes either)."""
    return (MODIFIED[type_],) if dated else (MODIFIED[type_], "lastmodifieddate", "hs_lastmodifieddate")


def _condition(type_: str, f: _Filter, dated: bool = False) -> sa.ColumnElement[bool]:
    ops = {"EQ": "__eq__", "NEQ": "__ne__", "GT": "__gt__", "GTE": "__ge__", "LT": "__lt__", "LTE": "__le__"}
    if f.propertyName in _modified_names(type_, dated):
        column: Any = objects.c.updated_ms
        value: Any = _as_ms(f.value)
    elif f.propertyName in ("createdate", "hs_createdate"):
        column, value = objects.c.created_ms, _as_ms(f.value)
    elif f.propertyName == "hs_object_id":
        column, value = objects.c.id, int(_as_ms(f.value))
    elif f.propertyName == LINK:  # the store's, no property: matches nothing, as another unknown name
        return sa.false()
    else:
        column, value = sa.func.json_extract(objects.c.props, f"$.{f.propertyName}"), str(f.value)
    return getattr(column, ops[f.operator])(value)


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.isdigit():
        raise BadRequest(400, f"invalid paging cursor {cursor!r}")
    return bounded(int(text), "paging cursor")


def build_app(config: SystemConfig) -> Starlette:
    """The CRM app for a config; seeds its SQLite file on first start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.database)
    store.keep_history = True
    store.index_property("contacts", "email")
    if store.is_empty():
        report = seed(store, config.seed, config.size)
        config.seed_report.write_text(json.dumps(report, indent=1))
    search_cap = int(config.options.get("search_cap", SEARCH_CAP))
    delay = {"ms": int(config.options.get("search_delay_ms", 0))}
    unindexed: dict[tuple[str, int], int] = {}  # a write not yet in the search index -> when it will be
    event_ids = itertools.count(time.time_ns() // 1000)

    def object_type(request: Request) -> str:
        if dated(request) and not re.fullmatch(r"20[0-9]{2}-(03|09)", request.path_params["version"]):
            raise BadRequest(404, f"no API version {request.path_params['version']!r}")
        given = request.path_params["object_type"]
        type_ = OBJECT_TYPE_IDS.get(given, given)
        if type_ not in OBJECT_TYPES:
            raise BadRequest(404, f"unknown object type {given!r}")
        return type_

    def archived(request: Request) -> bool:
        value = request.query_params.get("archived", "false")
        if value not in ("true", "false"):
            raise BadRequest(400, f"archived must be true or false, not {value!r}")
        return value == "true"

    def dated(request: Request) -> bool:
        return "version" in request.path_params

    def written(record: Record) -> Record:
        """A write, searchable only once the indexing delay has passed."""
        if delay["ms"] > 0:
            unindexed[(record.type, record.id)] = now_ms() + delay["ms"]
        return record

    def asked(request: Request, type_: str, names: list[str] | None = None) -> tuple[str, ...]:
        """The properties a read returns: those asked for, else HubSpot's defaults."""
        if names is None:
            names = [n for value in request.query_params.getlist("properties") for n in value.split(",") if n]
        return tuple(names) if names else DEFAULT_PROPERTIES[type_]

    def shape(record: Record, only: tuple[str, ...] | None = None, links: tuple[str, ...] = ()) -> dict[str, Any]:
        props = {**{k: v for k, v in record.props.items() if k != LINK}, "createdate": iso(record.created_ms),
                 MODIFIED[record.type]: iso(record.updated_ms), "hs_object_id": str(record.id)}
        if only is not None:  # what was asked for, empty values left out
            props = {k: str(props[k]) for k in only if props.get(k) is not None}
        body: dict[str, Any] = {"id": str(record.id), "properties": props, "createdAt": iso(record.created_ms),
                                "updatedAt": iso(record.updated_ms), "archived": record.archived}
        if "contacts" in links and record.type == "deals":
            body["associations"] = {"contacts": {"results": [{"id": str(record.props[LINK]), "type": "deal_to_contact"}]
                                                 if record.props.get(LINK) else []}}
        return body

    def links(request: Request) -> tuple[str, ...]:
        return tuple(n for value in request.query_params.getlist("associations") for n in value.split(",") if n)

    def with_history(request: Request, records: list[Record]) -> list[dict[str, Any]]:
        """Records as HubSpot shows them, with `propertiesWithHistory` for the properties asked for."""
        wanted = [k for k in request.query_params.get("propertiesWithHistory", "").split(",") if k]
        type_ = records[0].type if records else "contacts"
        only, linked = asked(request, type_), links(request)
        if not wanted:
            return [shape(r, only, linked) for r in records]
        past = store.history(records[0].type, [r.id for r in records], wanted) if records else {}
        shaped = []
        for record in records:
            body = shape(record, only, linked)
            current = shape(record)["properties"]
            body["propertiesWithHistory"] = {key: [
                {"value": None if value is None else str(value), "timestamp": iso(ms), "sourceType": "API"}
                for ms, value in past.get((record.id, key)) or [(record.created_ms, current.get(key))]
                if value is not None] for key in wanted}
            shaped.append(body)
        return shaped

    def notify(record: Record, kind: str, changes: dict[str, Any]) -> None:
        singular = {"contacts": "contact", "companies": "company", "deals": "deal"}[record.type]
        base = {"portalId": 1234567, "appId": 7654321, "subscriptionId": 1, "attemptNumber": 0,
                "objectId": record.id, "occurredAt": record.updated_ms, "changeSource": "API"}
        items: list[dict[str, Any]] = (
            [{**base, "eventId": next(event_ids), "subscriptionType": f"{singular}.{kind}"}]
            if kind in ("creation", "deletion")
            else [{**base, "eventId": next(event_ids), "subscriptionType": f"{singular}.propertyChange",
                   "propertyName": name, "propertyValue": value} for name, value in changes.items()]
        )
        store.enqueue([event(str(i["eventId"]), i["subscriptionType"], [i]) for i in items], time.time())

    def validate(type_: str, props: dict[str, Any]) -> dict[str, Any]:
        clean = {k: None if v is None else str(v) for k, v in props.items()}
        for read_only in ("hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate"):
            if read_only in clean:
                raise BadRequest(400, f"property {read_only!r} is read-only")
        if unknown := sorted(set(clean) - KNOWN[type_]):
            raise _no_such_properties(unknown)
        if type_ == "contacts" and clean.get("email") is not None and not _EMAIL.match(clean["email"] or ""):
            raise BadRequest(400, f"Property values were not valid: email {clean['email']!r} is not a valid email")
        if type_ == "deals" and "dealstage" in clean and clean["dealstage"] not in DEAL_STAGES:
            raise BadRequest(400, f"Property values were not valid: dealstage must be one of {', '.join(DEAL_STAGES)}")
        if type_ == "deals" and clean.get("amount") is not None:
            try:
                float(clean["amount"] or "")
            except ValueError:
                raise BadRequest(400, "Property values were not valid: amount must be a number") from None
        return clean

    def associated_contact(type_: str, associations: list[_Association]) -> str | None:
        """The contact a new deal is associated with (HubSpot's deal to contact type), if any; the
        sandbox keeps no other association, so it refuses any other rather than drop it."""
        if not associations:
            return None
        specs = [[(t.associationCategory, t.associationTypeId) for t in a.types] for a in associations]
        if type_ != "deals" or specs != [[("HUBSPOT_DEFINED", DEAL_TO_CONTACT)]]:
            raise BadRequest(400, f"the sandbox keeps a deal's one contact only, not the associations {specs}")
        to = associations[0].to.id
        found = store.get("contacts", bounded(int(to), "association id")) if to.isdigit() else None
        if found is None:
            raise BadRequest(400, f"no contact {to!r} to associate with")
        return str(found.id)

    async def list_objects(request: Request) -> Response:
        type_ = object_type(request)
        history = "propertiesWithHistory" in request.query_params
        limit = int_param(request, "limit", 10, 1, HISTORY_LIMIT if history else 100)
        after = request.query_params.get("after")
        records = store.after_id(type_, _decode_cursor(after) if after else 0, limit + 1, archived(request))
        body: dict[str, Any] = {"results": with_history(request, records[:limit])}
        if len(records) > limit:
            cursor = _encode_cursor(records[limit - 1].id)
            link = str(request.url.include_query_params(after=cursor))
            body["paging"] = {"next": {"after": cursor, "link": link}}
        return JSONResponse(body)

    async def search(request: Request) -> Response:
        type_ = object_type(request)
        query = await parse_body(request, _Search)
        strict = dated(request)
        if strict and (query.after is None or query.properties is None):
            raise BadRequest(400, "a search names `after` and `properties`")
        offset = 0
        if query.after is not None:
            if not query.after.isdigit():
                raise BadRequest(400, f"invalid paging cursor {query.after!r}")
            offset = int(query.after)
        if offset + query.limit > search_cap:
            raise BadRequest(400, f"the search endpoint returns at most {search_cap} results; narrow the filter")
        groups = [sa.and_(*(_condition(type_, f, strict) for f in g.filters)) for g in query.filterGroups if g.filters]
        conditions = [sa.or_(*groups)] if groups else []
        now = now_ms()
        for key, at in list(unindexed.items()):
            if at <= now:
                unindexed.pop(key, None)
        hidden = [id_ for (t, id_), at in unindexed.items() if t == type_ and at > now]
        if hidden:
            conditions.append(objects.c.id.not_in(hidden))
        by_modified, descending = False, False
        if query.sorts:
            sort = query.sorts[0]
            if strict and not isinstance(sort, str):
                raise BadRequest(400, "sorts are property names (a leading '-' sorts descending)")
            name, descending = ((sort.lstrip("-"), sort.startswith("-")) if isinstance(sort, str)
                                else (sort.propertyName, sort.direction == "DESCENDING"))
            if name in _modified_names(type_, strict):
                by_modified = True
            elif name not in ("hs_object_id", "id"):
                raise BadRequest(400, f"cannot sort by {name!r}")
        total, records = store.page(type_, offset, query.limit, conditions, by_modified, descending)
        body: dict[str, Any] = {"total": total, "results": [shape(r, asked(request, type_, query.properties))
                                                             for r in records]}
        if offset + len(records) < total:
            body["paging"] = {"next": {"after": str(offset + len(records))}}
        return JSONResponse(body)

    async def get_object(request: Request) -> Response:
        type_ = object_type(request)
        record = store.get(type_, path_id(request), archived(request))
        if record is None:
            raise BadRequest(404, "Object not found")
        return JSONResponse(with_history(request, [record])[0])

    async def archive(request: Request) -> Response:
        """HubSpot's DELETE archives: the record leaves lists and searches, `archived=true` lists it."""
        type_ = object_type(request)
        record = store.archive(type_, path_id(request), now_ms())
        if record is not None:  # archiving an archived or unknown record is answered 204 too
            notify(record, "deletion", {})
        return Response(status_code=204)

    async def create(request: Request) -> Response:
        type_ = object_type(request)
        body = await parse_body(request, _Create)
        if dated(request) and body.associations is None:
            raise BadRequest(400, "invalid request body: associations: Field required")
        props = validate(type_, body.properties)
        if type_ == "deals":
            props.setdefault("dealstage", DEAL_STAGES[0])
            props.setdefault("pipeline", "default")
        links = {LINK: contact} if (contact := associated_contact(type_, body.associations or [])) else {}
        record = written(store.create(type_, {**props, **links}, now_ms()))
        notify(record, "creation", props)
        return JSONResponse(shape(record, asked(request, type_, list(props))), 201)

    async def update(request: Request) -> Response:
        type_ = object_type(request)
        changes = validate(type_, (await parse_body(request, _Properties)).properties)
        record = store.update(type_, path_id(request), changes, now_ms())
        if record is None:
            raise BadRequest(404, "Object not found")
        notify(written(record), "propertyChange", changes)
        return JSONResponse(shape(record, asked(request, type_, list(changes))))

    def refused(item: _BatchItem, message: str) -> Response:
        """HubSpot refuses a whole batch for one invalid input, naming it (its id as sent)."""
        return JSONResponse({**error_body(400, message), "context": {"ids": [item.id]}}, 400)

    async def batch_update(request: Request) -> Response:
        """HubSpot's batch update: each input by id or by a unique property (email); none created.

        Every input is checked before any is written: an invalid one refuses the whole batch (400,
        naming it); inputs whose record is not found are listed in one OBJECT_NOT_FOUND error of a
        207 answer, the others updated. Each result carries its input's `objectWriteTraceId`."""
        type_ = object_type(request)
        started = iso(now_ms())
        inputs = (await parse_body(request, _BatchUpdate)).inputs
        repeated = sorted({i.id for i in inputs if [j.id for j in inputs].count(i.id) > 1})
        if repeated:
            raise BadRequest(400, f"Duplicate IDs found in batch input: {repeated}. IDs must be unique")
        checked = []
        for item in inputs:
            if item.idProperty not in (None, "hs_object_id", *(("email",) if type_ == "contacts" else ())):
                return refused(item, f"{item.idProperty!r} is not a unique property of {type_}")
            try:
                checked.append((item, validate(type_, item.properties)))
            except BadRequest as exc:
                return refused(item, exc.message)
        results, missing = [], []
        for item, changes in checked:
            found = (store.find(type_, "email", item.id) if item.idProperty == "email"
                     else store.get(type_, int(item.id)) if item.id.isdigit() else None)
            record = store.update(type_, found.id, changes, now_ms()) if found else None
            if record is None:
                missing.append(item.id)
                continue
            notify(written(record), "propertyChange", changes)
            traced = {"objectWriteTraceId": item.objectWriteTraceId} if item.objectWriteTraceId else {}
            results.append({**shape(record, tuple(changes)), **traced})
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                                "completedAt": iso(now_ms())}
        if not missing:
            return JSONResponse(body)
        body.update(numErrors=len(missing), errors=[{
            "status": "error", "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {SINGULAR[type_]} objects, they may be deleted or not exist. "
                       "Check that ids are valid.",
            "context": {"ids": missing}, "errors": [], "links": {}}])
        return JSONResponse(body, 207)

    async def associations_read(request: Request) -> Response:
        """Deal to contact associations, as HubSpot's batch read answers them."""
        from_type, to_type = object_type(request), request.path_params["to_type"]
        if (from_type, OBJECT_TYPE_IDS.get(to_type, to_type)) != ("deals", "contacts"):
            raise BadRequest(400, f"no associations from {from_type} to {to_type} here")
        started = iso(now_ms())
        results = []
        for item in (await parse_body(request, _AssociationRead)).inputs:
            record = store.get("deals", int(item.id)) if item.id.isdigit() else None
            if record is not None and record.props.get(LINK):
                results.append({"from": {"id": item.id}, "to": [{"toObjectId": str(record.props[LINK]),
                                "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": DEAL_TO_CONTACT}]}]})
        return JSONResponse({"status": "COMPLETE", "results": results, "startedAt": started,
                             "completedAt": iso(now_ms())})

    async def search_delay(request: Request) -> Response:
        if request.method == "PUT":
            delay["ms"] = bounded(int((await request.json())["ms"]), "search delay")
        return JSONResponse(delay)

    version = "{version}"  # a date-based version, e.g. 2026-03 (checked by object_type)
    routes: list[Route] = []
    for objects_path in ("/crm/v3/objects/{object_type}", f"/crm/objects/{version}/{{object_type}}"):
        routes += [
            Route(objects_path, list_objects, methods=["GET"]),
            Route(objects_path, create, methods=["POST"]),
            Route(objects_path + "/search", search, methods=["POST"]),
            Route(objects_path + "/{id}", get_object, methods=["GET"]),
            Route(objects_path + "/{id}", update, methods=["PATCH"]),
            Route(objects_path + "/{id}", archive, methods=["DELETE"]),
        ]
    routes.insert(0, Route(f"/crm/objects/{version}/{{object_type}}/batch/update", batch_update, methods=["POST"]))
    routes += [
        Route(f"/crm/associations/{version}/{{object_type}}/{{to_type}}/batch/read", associations_read, methods=["POST"]),
        Route("/_sandbox/search-delay", search_delay, methods=["GET", "PUT"]),
    ]
    # HubSpot's limits for a private app on Professional: 190 requests in any 10 s (searches aside),
    # 5 searches a second, 625,000 requests a day; the dated API only (not the tests' v3)
    options = config.options
    daily = Middleware(DailyQuota, limit=int(options.get("rate_limit_daily", 625_000)), paths=DATED_API,
                       bare=SEARCHES, time_zone=str(options.get("time_zone", "UTC")))
    ten_secondly = Middleware(RollingRateLimit, limit=int(options.get("rate_limit_per_10s", 190)),
                              window=float(options.get("rate_limit_window_seconds", 10)),
                              paths=f"(?!{SEARCHES}){DATED_API}")
    searches = Middleware(RollingRateLimit, limit=int(options.get("rate_limit_search_per_second", 5)), window=1.0,
                          paths=SEARCHES, policy="SECONDLY", headers=False)
    return sandbox_app(config, routes, store, bearer, error_body, signer("hubspot_v3", config.webhook_secret),
                       middleware=[daily, ten_secondly, searches])
