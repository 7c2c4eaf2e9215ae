"""What Stripe enforces that localstripe does not, as aiohttp middlewares for the sandbox billing:
its keys, its rate limit, its events (emitted for every change of an invoice or a charge) and the
events list with Stripe's filters.

- **Keys**: only the configured secret key, as `Authorization: Bearer <key>` or Basic with the key
  as the user name; anything else is answered 401 with Stripe's error body: no key (or one sent
  another way), a publishable `pk_` key, a key that is not the account's (masked in the message as
  Stripe masks it). localstripe's own client-side paths (a token made with a publishable key in
  the form) are left to localstripe.
- **Rate limit**: Stripe's sandbox limit, 25 requests in any second on `/v1/` (its docs: "Sandbox:
  25 operations"; older ones said 25 reads and 25 writes), answered 429 with Stripe's body (code
  `rate_limit`) and `Stripe-Rate-Limited-Reason: global-rate`, no Retry-After.
- **Events**: localstripe emits a few (`invoice.created`, `invoice.payment_succeeded`, ...); after
  each write, and before the events list answers, the invoices and charges are compared with how
  they were and Stripe's events for the differences are emitted (through localstripe, so webhooks
  carry them too): `invoice.updated` with `finalized`, `paid`, `voided`; `invoice.deleted` for a
  deleted draft, its object the invoice as it was; `charge.<status>` for a new charge,
  `charge.updated` with `refunded`, `captured`.
- **Events list**: `GET /v1/events` newest first with `type` (`*` wildcards), `types[]` (up to 20,
  not with `type`), `created` (an integer or `gt`/`gte`/`lt`/`lte`), `limit` (1 to 100),
  `starting_after` and `ending_before`; another parameter is refused as Stripe refuses it.
- **Invoice payments**: `GET /v1/invoice_payments` (and one by id), which localstripe lacks, derived
  from the invoices localstripe's `pay` gave a PaymentIntent, with the list's filters and paging.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import re
import time
from collections import deque
from typing import Any

from ._faults import ADMIN_PREFIX
from ._ratelimit import Rolling

NO_KEY = ("You did not provide an API key. You need to provide your API key in the Authorization header, "
          "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#"
          "authentication for details, or we can help at https://support.stripe.com/.")
PUBLISHABLE = ("This API call cannot be made with a publishable API key. Please use a secret API key. You can "
               "find a list of your API keys at https://dashboard.stripe.com/account/apikeys.")
RATE_LIMITED = ("Request rate limit exceeded. You can learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.")
UNAUTHENTICATED = ("/_config/", "/js.stripe.com/")  # localstripe's own (its webhook relay), sent without a key
CLIENT_SIDE = re.compile(r"^/v1/(tokens|sources|payment_intents/\w+/_authenticate|setup_intents/\w+/(confirm|cancel))$")
WATCHED = ("invoice", "charge")  # the objects whose changes are emitted as events
MAX_TYPES = 20


def _error(status: int, message: str, headers: dict[str, str] | None = None, **fields: str) -> Any:
    from aiohttp import web

    return web.json_response({"error": {**fields, "message": message, "type": "invalid_request_error"}},
                             status=status, headers=headers)


def masked(key: str) -> str:
    """A key as Stripe shows it in an error: its kind and mode, stars, its last four characters."""
    prefix = m.group(0) if (m := re.match(r"^[a-z]{2}_(test|live)_", key)) else key[:3]
    tail = key[-4:] if len(key) > len(prefix) + 4 else ""
    return prefix + "*" * (len(key) - len(prefix) - len(tail)) + tail


def presented_key(authorization: str) -> str | None:
    """The key in an Authorization header as Stripe takes it (Bearer, or Basic with the key as user), else None."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    return None


def authenticate(secret: str) -> Any:
    """An aiohttp middleware letting through only requests made with the account's secret key."""
    from aiohttp import web

    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(UNAUTHENTICATED):
            return await handler(request)
        key = presented_key(request.headers.get("Authorization", ""))
        if (key is None or key.startswith("pk_")) and request.method == "POST" and CLIENT_SIDE.match(request.path):
            return await handler(request)  # a publishable key's own calls: localstripe checks them
        if key == secret:
            return await handler(request)
        if key is None:
            return _error(401, NO_KEY)
        if key.startswith("pk_"):
            return _error(401, PUBLISHABLE)
        return _error(401, f"Invalid API Key provided: {masked(key)}")

    return check


def rate_limited(limit: int, window: float = 1.0) -> tuple[Any, Any]:
    """An aiohttp middleware answering 429 as Stripe does beyond `limit` requests in any `window`
    seconds on /v1/ (0: no limit), and the `/_sandbox/requests` handler: arrival times and 429s."""
    from aiohttp import web

    rolling = Rolling(limit, window)
    arrived: deque[float] = deque(maxlen=100_000)
    refused = [0]

    @web.middleware
    async def limit_(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        arrived.append(time.time())
        if not rolling.admit():
            refused[0] += 1
            return _error(429, RATE_LIMITED, {"Stripe-Rate-Limited-Reason": "global-rate"}, code="rate_limit",
                          doc_url="https://stripe.com/docs/error-codes/rate-limit")
        return await handler(request)

    async def requests(_: web.Request) -> web.Response:
        return web.json_response({"arrived": list(arrived), "rate_limited": refused[0], "limit": limit,
                                  "window_seconds": window})

    return limit_, requests


def _watched(store: dict[str, Any]) -> dict[str, Any]:
    """The invoices and charges in localstripe's store, by store key."""
    return {k: v for k, v in list(store.items()) if k.split(":", 1)[0] in WATCHED}


def _emitted(store: dict[str, Any]) -> set[tuple[str, str]]:
    """(type, object id) of every event in the store."""
    return {(v.type, v.data["object"].get("id")) for k, v in list(store.items()) if k.startswith("event:")}


def _changes(kind: str, before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """The event types Stripe sends for this change of an invoice or a charge."""
    if before is None:
        return ["invoice.created"] if kind == "invoice" else [f"charge.{after.get('status')}"]
    types = [f"{kind}.updated"]
    if kind == "invoice" and before.get("status") != after.get("status"):
        types += {"open": ["invoice.finalized"], "paid": ["invoice.paid"], "void": ["invoice.voided"]}.get(
            str(after.get("status")), [])
    if kind == "charge":
        types += [f"charge.{flag}" for flag in ("refunded", "captured") if after.get(flag) and not before.get(flag)]
        if before.get("status") != after.get("status") and after.get("status") in ("succeeded", "failed"):
            types.append(f"charge.{after['status']}")
    return types


class _Snapshot:
    """An object as it was last seen, for an event about it once it is gone (localstripe's `Event`
    exports its object)."""

    def __init__(self, exported: dict[str, Any]):
        self.exported = exported

    def _export(self) -> dict[str, Any]:
        return self.exported


class Emitter:
    """Emits Stripe's events for the invoices and charges changed since it last looked."""

    def __init__(self, store: dict[str, Any]):
        self.store = store
        self.seen: dict[str, Any] = {}

    def start(self) -> None:
        """Take the current invoices and charges as they are (nothing emitted for them)."""
        self.seen = {k: json.loads(json.dumps(v._export(), default=str)) for k, v in _watched(self.store).items()}

    def emit(self) -> None:
        """Compare each invoice and charge with how it was; emit what Stripe would have for the changes."""
        from localstripe.resources import Event
        from localstripe.webhooks import schedule_webhook

        already: set[tuple[str, str]] | None = None
        watched = _watched(self.store)
        for key in [k for k in self.seen if k not in watched]:  # deleted: Stripe deletes draft invoices only
            gone = self.seen.pop(key)
            if key.startswith("invoice:"):
                schedule_webhook(Event("invoice.deleted", _Snapshot(gone)))
        for key, obj in watched.items():
            now = json.loads(json.dumps(obj._export(), default=str))
            before = self.seen.get(key)
            if now == before:
                continue
            self.seen[key] = now
            kind = key.split(":", 1)[0]
            for type_ in _changes(kind, before, now):
                if before is None and (type_, now.get("id")) in (already := already or _emitted(self.store)):
                    continue  # localstripe emitted it itself
                event = Event(type_, obj)
                if before is not None:
                    event.data["previous_attributes"] = {k: before.get(k) for k in now if before.get(k) != now[k]}
                schedule_webhook(event)


def emitting(emitter: Emitter) -> Any:
    """An aiohttp middleware running the emitter after every write and before every events list."""
    from aiohttp import web

    @web.middleware
    async def emit(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/v1/events" and request.method == "GET":
            emitter.emit()
            return await handler(request)
        response = await handler(request)
        if request.path.startswith("/v1/") and request.method in ("POST", "DELETE"):
            emitter.emit()
        return response

    return emit


def _query(request: Any) -> tuple[dict[str, str], list[str]]:
    """The list's parameters, and the `types` array (types[] or types[0], types[1], ...)."""
    params: dict[str, str] = {}
    types: list[str] = []
    for name, value in request.query.items():
        if re.fullmatch(r"types\[\d*\]", name):
            types.append(value)
        else:
            params[name] = value
    return params, types


def _integer(name: str, value: str) -> int:
    from localstripe.errors import UserError

    if not re.fullmatch(r"-?\d+", value):
        raise UserError(400, f"Invalid integer: {value}", {"param": name})
    return int(value)


def _filters(params: dict[str, str], types: list[str]) -> list[Any]:
    """Each event filter the parameters ask for; a parameter Stripe does not take is refused."""
    from localstripe.errors import UserError

    ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
    filters: list[Any] = []
    for name, value in params.items():
        if name in ("limit", "starting_after", "ending_before"):
            continue
        if name == "type":
            filters.append(lambda e, v=value: fnmatch.fnmatchcase(e.type, v))
        elif name == "created":
            filters.append(lambda e, v=_integer(name, value): e.created == v)
        elif (m := re.fullmatch(r"created\[(gt|gte|lt|lte)\]", name)):
            filters.append(lambda e, op=ops[m.group(1)], v=_integer(name, value): op(e.created, v))
        else:
            raise UserError(400, f"Received unknown parameter: {name}", {"param": name})
    if types:
        if "type" in params:
            raise UserError(400, "You may pass either `type` or `types`, but not both.", {"param": "types"})
        if len(types) > MAX_TYPES:
            raise UserError(400, f"You may pass at most {MAX_TYPES} `types`.", {"param": "types"})
        filters.append(lambda e: e.type in types)
    return filters


def _ranked(rank: dict[str, tuple[int, int]], object_id: str, param: str, kind: str) -> tuple[int, int]:
    from localstripe.errors import UserError

    if object_id not in rank:
        raise UserError(404, f"No such {kind}: '{object_id}'", {"code": "resource_missing", "param": param})
    return rank[object_id]


def _limit(params: dict[str, str]) -> int:
    from localstripe.errors import UserError

    limit = _integer("limit", params.get("limit", "10"))
    if not 1 <= limit <= 100:
        raise UserError(400, "This value must be between 1 and 100.", {"param": "limit"})
    return limit


def _page(listed: list[tuple[str, Any]], rank: dict[str, tuple[int, int]], params: dict[str, str],
          kind: str) -> tuple[list[Any], bool]:
    """Stripe's page of a list (`(id, object)`, newest first): after `starting_after` the older ones,
    before `ending_before` the page just newer; and whether there are more."""
    limit = _limit(params)
    if (after := params.get("starting_after")) is not None:
        anchor = _ranked(rank, after, "starting_after", kind)
        listed = [(i, o) for i, o in listed if rank[i] < anchor]
        page = listed[:limit]
    elif (before := params.get("ending_before")) is not None:
        anchor = _ranked(rank, before, "ending_before", kind)
        listed = [(i, o) for i, o in listed if rank[i] > anchor]
        page = listed[-limit:]
    else:
        page = listed[:limit]
    return [o for _, o in page], len(listed) > limit


def events_list(store: dict[str, Any]) -> Any:
    """An aiohttp middleware answering `GET /v1/events` as Stripe does (localstripe's matches types exactly,
    in storage order, and takes neither `types` nor `ending_before`)."""
    from aiohttp import web

    @web.middleware
    async def answer(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/v1/events" or request.method != "GET":
            return await handler(request)
        params, types = _query(request)
        filters = _filters(params, types)
        stored = [v for k, v in list(store.items()) if k.startswith("event:")]
        rank = {e.id: (e.created, i) for i, e in enumerate(stored)}
        events = sorted((e for e in stored if all(f(e) for f in filters)), key=lambda e: rank[e.id], reverse=True)
        page, more = _page([(e.id, e) for e in events], rank, params, "event")
        return web.json_response({"object": "list", "url": "/v1/events", "has_more": more,
                                  "data": [e._export() for e in page]})

    return answer


PAYMENT_TYPES = ("payment_intent", "payment_record")  # what `payment[type]` filters on
STATUSES = ("canceled", "open", "paid")


def invoice_payment(invoice: Any, intent: Any) -> dict[str, Any]:
    """The InvoicePayment Stripe keeps for an invoice paid through a PaymentIntent (localstripe's
    `pay` makes one, finalizing the invoice): its status follows the intent's, its id the invoice's."""
    status = {"succeeded": "paid", "canceled": "canceled"}.get(intent.status, "open")
    transitions = invoice.status_transitions
    return {"id": "inpay_" + invoice.id.removeprefix("in_"), "object": "invoice_payment",
            "amount_paid": intent.amount if status == "paid" else None, "amount_requested": intent.amount,
            "created": intent.created, "currency": invoice.currency, "invoice": invoice.id, "is_default": True,
            "livemode": False, "status": status,
            "payment": {"type": "payment_intent", "payment_intent": intent.id, "charge": None, "payment_record": None},
            "status_transitions": {"paid_at": transitions.get("paid_at") if status == "paid" else None,
                                   "canceled_at": transitions.get("voided_at") if status == "canceled" else None}}


def _payment_filters(params: dict[str, str]) -> list[Any]:
    """Each invoice payment filter the list's parameters ask for; one Stripe does not take is refused."""
    from localstripe.errors import UserError

    ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
    filters: list[Any] = []
    for name, value in params.items():
        if name in ("limit", "starting_after", "ending_before", "payment[type]"):
            continue
        if name == "invoice":
            filters.append(lambda p, v=value: p["invoice"] == v)
        elif name == "status":
            if value not in STATUSES:
                raise UserError(400, f"Invalid status: must be one of {', '.join(STATUSES[:-1])}, or {STATUSES[-1]}",
                                {"param": name})
            filters.append(lambda p, v=value: p["status"] == v)
        elif name in ("payment[payment_intent]", "payment[payment_record]"):
            filters.append(lambda p, k=name[8:-1], v=value: p["payment"][k] == v)
        elif name == "created":
            filters.append(lambda p, v=_integer(name, value): p["created"] == v)
        elif (m := re.fullmatch(r"created\[(gt|gte|lt|lte)\]", name)):
            filters.append(lambda p, op=ops[m.group(1)], v=_integer(name, value): op(p["created"], v))
        else:
            raise UserError(400, f"Received unknown parameter: {name}", {"param": name})
    kind = params.get("payment[type]")
    if kind is None and any(n.startswith("payment[") for n in params):
        raise UserError(400, "Missing required param: payment[type].", {"param": "payment[type]"})
    if kind is not None:
        if kind not in PAYMENT_TYPES:
            raise UserError(400, "Invalid payment[type]: must be one of payment_intent or payment_record",
                            {"param": "payment[type]"})
        filters.append(lambda p: p["payment"]["type"] == kind)
    return filters


def invoice_payments(store: dict[str, Any]) -> Any:
    """An aiohttp middleware answering `GET /v1/invoice_payments` (newest first, with Stripe's filters
    `invoice`, `payment[type]` with `payment[payment_intent]` or `payment[payment_record]`, `status`,
    `created`, and its paging) and `GET /v1/invoice_payments/{id}`, derived from the invoices paid
    so far (localstripe has no such object); `expand` is not emulated, so refused."""
    from aiohttp import web
    from localstripe.errors import UserError

    @web.middleware
    async def answer(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method != "GET" or not re.fullmatch(r"/v1/invoice_payments(/[^/]+)?", request.path):
            return await handler(request)
        stored = list(store.items())
        payments = [invoice_payment(v, intent) for k, v in stored if k.startswith("invoice:") and v.payment_intent
                    and (intent := store.get(f"payment_intent:{v.payment_intent}")) is not None]
        if request.path != "/v1/invoice_payments":
            wanted = request.path.rsplit("/", 1)[1]
            found = next((p for p in payments if p["id"] == wanted), None)
            if found is None:
                raise UserError(404, f"No such invoice payment: '{wanted}'", {"code": "resource_missing", "param": "id"})
            return web.json_response(found)
        params = dict(request.query)
        filters = _payment_filters(params)
        rank = {p["id"]: (p["created"], i) for i, p in enumerate(payments)}
        listed = sorted((p for p in payments if all(f(p) for f in filters)), key=lambda p: rank[p["id"]], reverse=True)
        page, more = _page([(p["id"], p) for p in listed], rank, params, "invoice payment")
        return web.json_response({"object": "list", "url": "/v1/invoice_payments", "has_more": more, "data": page})

    return answer
