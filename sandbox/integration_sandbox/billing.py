"""The sandbox billing system: the third-party Stripe emulator `localstripe`, run on loopback.

localstripe (GPL-3.0, the optional `sandbox` extra) is imported and run unmodified; this module only
binds its aiohttp app to the socket it is given (its own CLI listens on every interface), moves its
pickle file from the fixed `/tmp/localstripe.pickle` into the data folder, seeds customers, and
registers a relay through localstripe's `/_config/webhooks` mechanism: localstripe posts each event
once to the relay, which queues it; the sandbox's deliverer then posts it to the receiver at least
once (retries with backoff, occasional duplicates), freshly Stripe-signed per attempt. It adds the
sandbox's fault injection as an aiohttp middleware, with `GET|PUT /_sandbox/faults` (the account's
key, as on every path), and what Stripe enforces that localstripe does not (_stripe.py): only the
configured secret key (Stripe's 401 otherwise), Stripe's sandbox rate limit (option
`rate_limit_per_second`, default 25, 0 off, in any `rate_limit_window_seconds`, default 1; 429 as
Stripe answers it; `GET /_sandbox/requests` counts), Stripe's events for every change of an invoice
or a charge, `GET /v1/events` with Stripe's filters, and Stripe's InvoicePayments (`GET
/v1/invoice_payments`, and one by id), derived from the invoices paid through a PaymentIntent.

localstripe's answers predate the pinned Stripe version; a middleware (`as_pinned`) reshapes them,
and the events' objects, into that version's shape (fields removed since, fields added, integers;
an event says it is rendered in the pinned version).

localstripe ignores `Idempotency-Key`; this module answers it as Stripe does, in a middleware: a
POST with a key seen before (per API key, for 24 hours, while the process runs) gets the first
answer again, with `Idempotent-Replayed: true`, and nothing is done twice; the same key with other
parameters is refused (400 `idempotency_error`), as is one still in flight (409).

Known gaps of localstripe (the billing connector must cope): it ignores `Stripe-Version`, has no
`/v1/prices`, delivers each webhook once after one second with no retry (hence the relay), forgets
webhook registrations on restart (this module re-registers), emits few events (this module emits the
rest for invoices and charges), and only invoices customers that have a subscription.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import pickle
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from integration_project.errors import WebhookError
from integration_project.webhooks.signatures import SCHEMES

from . import _fake
from ._config import SystemConfig
from ._faults import ADMIN_PREFIX, MALFORMED_BODY, Faults, draw, rename_fields, renames_for
from ._store import Store
from ._stripe import Emitter, authenticate, emitting, events_list, invoice_payments, rate_limited
from ._webhooks import Deliverer, event, signer

# localstripe leaves its own /_config/ paths unauthenticated, and its webhook sender sends no key.
RELAY_PATH = "/_config/sandbox/relay"


def _load(store: dict[str, Any], path: Path) -> None:
    if path.exists():
        with path.open("rb") as f:
            saved = pickle.load(f)
        store.clear()
        dict.update(store, saved)


def _dump(store: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)


def seed(config: SystemConfig) -> dict[str, Any]:
    """Create customers (one per five CRM contacts, at most 2,000) in localstripe's store; returns the report."""
    from localstripe.resources import Customer

    random.seed(config.seed)  # localstripe draws its object ids from the module-level generator
    count = min(2_000, max(1, config.size // 5))
    ids = []
    for index in range(101, 101 + count):
        p = _fake.person(index, config.seed)
        customer = Customer._api_create(
            name=f"{p.first} {p.last}", email=p.email, phone=p.phone,
            address={"country": p.country}, metadata={"crm_contact_id": str(index)})
        ids.append(customer.id)
    return {"system": "billing", "seed": config.seed, "size": config.size, "counts": {"customers": count},
            "customers": ids, "problems": {}}


def _faults(initial: Faults) -> tuple[Any, Any]:
    """An aiohttp middleware applying the current faults, and the `/_sandbox/faults` handler changing them."""
    from aiohttp import web

    @dataclass
    class State:
        faults: Faults
        rng: random.Random

    state = State(initial, random.Random(initial.seed))

    def stripe_error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"error": {"type": kind, "message": message}}, status=status, headers=headers)

    @web.middleware
    async def inject(request: web.Request, handler: Any) -> web.StreamResponse:
        f = state.faults
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        match draw(f, state.rng):
            case "error":
                return stripe_error(state.rng.choice([500, 502, 503]), "api_error", "sandbox: injected server error")
            case "rate_limit":
                return stripe_error(429, "rate_limit_error", "sandbox: injected rate limit",
                                    {"Retry-After": str(f.retry_after_seconds)})
            case "timeout":
                await asyncio.sleep(f.timeout_seconds)
                return stripe_error(504, "api_error", "sandbox: injected timeout")
            case "reset":
                if request.transport is not None:
                    request.transport.abort()  # the client sees a reset; the answer below goes nowhere
                return web.Response(status=500)
            case "malformed":
                return web.Response(body=MALFORMED_BODY, content_type="application/json")
        response = await handler(request)
        if f.deprecation:
            response.headers["Deprecation"] = f.deprecation
        if f.sunset:
            response.headers["Sunset"] = f.sunset
        renames = renames_for(f, request.path, request.headers)
        if (renames and isinstance(response, web.Response) and response.content_type == "application/json"
                and isinstance(response.body, bytes)):
            response.body = json.dumps(rename_fields(json.loads(response.body), renames)).encode()
        return response

    async def faults(request: web.Request) -> web.Response:
        if request.method == "PUT":
            try:
                state.faults = Faults.model_validate_json(await request.read() or b"{}")
            except ValidationError as exc:
                return stripe_error(400, "invalid_request_error", str(exc.errors()[0]["msg"]))
            state.rng = random.Random(state.faults.seed)
        return web.json_response(state.faults.model_dump())

    return inject, faults


IDEMPOTENCY_TTL = 24 * 3600.0  # seconds Stripe keeps a key's answer


def _idempotency() -> Any:
    """An aiohttp middleware replaying a POST's first answer for its `Idempotency-Key`, as Stripe does."""
    from aiohttp import web

    answers: dict[tuple[str, str], tuple[float, str, int, bytes, str]] = {}  # -> (at, params, status, body, type)
    in_flight: set[tuple[str, str]] = set()

    def refuse(status: int, message: str) -> web.Response:
        return web.json_response({"error": {"type": "idempotency_error", "message": message}}, status=status)

    @web.middleware
    async def replay(request: web.Request, handler: Any) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key or request.path.startswith(("/_", ADMIN_PREFIX)):
            return await handler(request)
        slot = (request.headers.get("Authorization", ""), key)
        params = hashlib.sha256(await request.read()).hexdigest()
        now = time.time()
        for old in [k for k, v in answers.items() if now - v[0] > IDEMPOTENCY_TTL]:
            del answers[old]
        if slot in answers:
            _, sent, status, body, content_type = answers[slot]
            if sent != params:
                return refuse(400, f"Keys for idempotent requests can only be used with the same parameters "
                                   f"they were first used with. Try using a key other than '{key}'.")
            return web.Response(status=status, body=body, content_type=content_type,
                                headers={"Idempotent-Replayed": "true", "Idempotency-Key": key})
        if slot in in_flight:
            return refuse(409, "There is currently another in-progress request using this Stripe token "
                               "(probably the same idempotency key).")
        in_flight.add(slot)
        try:
            response = await handler(request)
        finally:
            in_flight.discard(slot)
        if isinstance(response, web.Response) and isinstance(response.body, bytes) and response.status < 500:
            answers[slot] = (now, params, response.status, response.body, response.content_type)
            response.headers["Idempotency-Key"] = key
        return response

    return replay


# localstripe's model predates the pinned Stripe version: per object type, what it answers that
# Stripe no longer does, and what Stripe answers that it lacks (tests/contracts/test_stripe.py
# checks every answer against the `stripe` package's types for the pinned version).
_DROPPED: dict[str, tuple[str, ...]] = {"customer": ("account_balance", "business_vat_id"),
                                        "charge": ("invoice",),  # since 2025-03-31.basil: Invoice.payments
                                        # basil moved an invoice's payment to `payments`, its subscription to
                                        # `parent`, its tax to `total_taxes`; `date`, `discount` went earlier
                                        "invoice": ("application_fee", "charge", "date", "discount", "payment_intent",
                                                    "subscription", "tax", "tax_percent", "total_tax_amounts"),
                                        "invoiceitem": ("created", "plan", "subscription")}
_INTEGERS: dict[str, tuple[str, ...]] = {"invoiceitem": ("amount", "quantity", "unit_amount")}  # localstripe keeps an update's form strings
# by path, for its delete answers
_OBJECTS = {"customers": "customer", "invoiceitems": "invoiceitem", "invoices": "invoice"}
# what the pinned version's invoice has that localstripe's lacks, as Stripe fills it for a plain invoice
_INVOICE_DEFAULTS: dict[str, Any] = {
    "amount_overpaid": 0, "amount_shipping": 0, "discounts": [], "issuer": {"type": "self"},
    "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None, "provider": None, "status": None},
    "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
    "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0}
PINNED_VERSION = "2026-10-28.endive"  # the Stripe version the answers are shaped as (an event's `api_version`)


def as_pinned(value: Any, resource: str | None = None) -> Any:
    """localstripe's answer (or an event's object) as Stripe answers it at the pinned version."""
    if isinstance(value, list):
        return [as_pinned(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("deleted") is True and resource in _OBJECTS:
        return {"id": value["id"], "object": _OBJECTS[resource], "deleted": True}  # what a delete answers
    kind = value["object"] if isinstance(value.get("object"), str) else ""  # an event's `data` holds one
    out = {k: as_pinned(v) for k, v in value.items() if k not in _DROPPED.get(kind, ())}
    if kind == "customer" and "account_balance" in value:
        out["balance"] = value["account_balance"]
    for key in _INTEGERS.get(kind, ()):
        if isinstance(out.get(key), str) and out[key].lstrip("-").isdigit():
            out[key] = int(out[key])
    if kind == "charge":
        out.setdefault("amount_captured", out.get("amount", 0) if out.get("captured") else 0)
        out.setdefault("billing_details", dict.fromkeys(("address", "email", "name", "phone", "tax_id")))
        out.setdefault("disputed", False)
    if kind == "invoice":
        for key, value in _INVOICE_DEFAULTS.items():
            out.setdefault(key, value)
        out["default_tax_rates"] = out.get("default_tax_rates") or []
        out.setdefault("amount_remaining", max(0, int(out.get("amount_due", 0)) - int(out.get("amount_paid", 0))))
    if kind == "event":  # its object is reshaped into the pinned version, so it is rendered in that one
        out.update(api_version=PINNED_VERSION, pending_webhooks=out.get("pending_webhooks", 0))
    if kind == "invoiceitem":
        out.setdefault("discountable", True)
        out.setdefault("quantity_decimal", str(out.get("quantity", 1)))
    return out


def _versioned() -> Any:
    """An aiohttp middleware answering JSON as the pinned Stripe version does (`as_pinned`)."""
    from aiohttp import web

    @web.middleware
    async def shape(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if (request.path.startswith("/v1/") and isinstance(response, web.Response)
                and response.content_type == "application/json" and isinstance(response.body, bytes)):
            parts = request.path.split("/")
            response.body = json.dumps(as_pinned(json.loads(response.body), parts[2] if len(parts) > 2 else None)).encode()
        return response

    return shape


def _relay(outbox: Store, secret: str) -> Any:
    """The handler localstripe delivers to: check its Stripe signature, queue the event for at-least-once delivery."""
    from aiohttp import web

    async def relay(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            SCHEMES["stripe"].verify(request.headers, body, SecretStr(secret))
            payload = as_pinned(json.loads(body))  # the event's object, as the pinned version has it
            outbox.enqueue([event(str(payload["id"]), str(payload["type"]), payload)], time.time())
        except (WebhookError, ValueError, KeyError, TypeError):
            return web.Response(status=400)
        return web.Response(status=204)

    return relay


def serve(config: SystemConfig, sock: socket.socket) -> None:
    """Run localstripe on an already bound socket until terminated."""
    from aiohttp import web
    from localstripe import server
    from localstripe.resources import store
    from localstripe.webhooks import register_webhook

    config.data_dir.mkdir(parents=True, exist_ok=True)
    path = config.data_dir / "billing.pickle"
    # Instance attributes shadow the Store methods that hard-code /tmp/localstripe.pickle.
    store.try_load_from_disk = lambda: _load(store, path)
    store.dump_to_disk = lambda: None
    store.try_load_from_disk()
    fresh = not path.exists()
    outbox = Store(config.database)
    emitter = Emitter(store)
    deliverer = Deliverer(outbox, config.webhook_url or "", signer("stripe", config.webhook_secret),
                          config.webhook_duplicate_rate, config.seed)

    async def on_startup(_: web.Application) -> None:
        if fresh:
            report = seed(config)
            config.seed_report.write_text(json.dumps(report, indent=1))
        store.dump_to_disk = lambda: _dump(store, path)
        store.dump_to_disk()
        emitter.start()
        if config.webhook_url:
            # localstripe posts each event once; the relay queues it and the sandbox's deliverer
            # posts it on with retries, duplicates and a fresh Stripe signature per attempt.
            relay_url = f"http://127.0.0.1:{sock.getsockname()[1]}{RELAY_PATH}"
            register_webhook("sandbox", relay_url, config.webhook_secret, None)
            deliverer.start()

    async def on_cleanup(_: web.Application) -> None:
        await deliverer.stop()
        outbox.close()

    inject, faults = _faults(config.faults)
    # Stripe's limit in a sandbox (test mode): 25 requests a second; 0 turns it off
    limit, requests = rate_limited(int(config.options.get("rate_limit_per_second", 25)),
                                   float(config.options.get("rate_limit_window_seconds", 1)))
    server.app.middlewares.insert(0, authenticate(config.token))  # before localstripe's own, which takes any sk_
    server.app.middlewares.insert(1, limit)  # a refused key is not counted; a throttled request reaches nothing
    server.app.middlewares.append(inject)
    server.app.middlewares.append(_idempotency())  # inside the faults: an injected failure is not kept
    server.app.middlewares.append(emitting(emitter))  # a write's changes become events; a replay changes nothing
    server.app.middlewares.append(_versioned())  # a replayed answer is the shaped one, events too
    server.app.middlewares.append(events_list(store))  # answers GET /v1/events itself
    server.app.middlewares.append(invoice_payments(store))  # innermost: the invoice payments localstripe lacks
    server.app.router.add_route("GET", ADMIN_PREFIX + "requests", requests)
    server.app.router.add_route("GET", ADMIN_PREFIX + "faults", faults)
    server.app.router.add_route("PUT", ADMIN_PREFIX + "faults", faults)
    server.app.router.add_route("POST", RELAY_PATH, _relay(outbox, config.webhook_secret))
    server.app.on_startup.append(on_startup)
    server.app.on_cleanup.append(on_cleanup)
    web.run_app(server.app, sock=sock, print=None, access_log=None, handle_signals=True)
