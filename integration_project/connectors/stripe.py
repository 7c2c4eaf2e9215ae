"""Stripe: customers and invoice items written idempotently; invoices and charges read.

Every create carries an `Idempotency-Key` derived from the hub record and the payload, so a create
sent again (a retry after a lost answer, a rerun within Stripe's 24 hours) is answered with the
first one's result instead of making a second record, and nothing is listed first. A crash between
a create and our record of it is still covered by the engine: it marks a send as pending first and,
on a rerun, `index` finds ours by the id we store in metadata.

Stripe counts money in the currency's minor unit, per currency: none for JPY, cents for EUR,
thousandths for KWD; the connector speaks decimal amounts and ISO codes (EUR) to the hub, both
ways. A key Stripe answers 403 (a restricted key lacking a permission) stops the run: every call of
its kind would be refused the same way.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from integration_project.connectors.base import HttpConnector, Ours, Page
from integration_project.connectors.http import Reply
from integration_project.errors import PermanentError
from integration_project.model import Api
from integration_project.model.mapping import get_path


def form(payload: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Stripe's form encoding of nested fields: address[country]=DE, metadata[crm_id]=7."""
    for key, value in payload.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, dict):
            yield from form(value, name)
        elif value is not None:
            yield name, str(value)


# Stripe's published exponents (https://docs.stripe.com/currencies#minor-units): currencies without
# a minor unit, and three-decimal ones, whose amounts Stripe takes in thousandths rounded to tens.
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                          "vnd", "vuv", "xaf", "xof", "xpf"})
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
MONEY = ("amount", "amount_due", "amount_paid", "amount_remaining", "subtotal", "total", "amount_refunded")
VERSION_HEADER = "Stripe-Version"
EVENTS = {"invoices": "invoice.*", "charges": "charge.*"}  # the events each extracted list changes with
DELETED = {"invoices": "invoice.deleted"}  # the event of a record deleted (a draft invoice; charges stay)
EVENTS_KEPT = 30 * 86400  # seconds Stripe lists an event (https://docs.stripe.com/api/events)
MARGIN = 86400  # a cursor this close to the end of its events' life is read in full instead


def _digits(currency: str) -> int:
    code = currency.lower()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


def to_decimal(record: dict[str, Any]) -> dict[str, Any]:
    """A Stripe object with its amounts in decimal units and its currency as an ISO code."""
    currency = record.get("currency")
    if not isinstance(currency, str):
        return record
    digits = _digits(currency)
    money = {k: str(Decimal(record[k]).scaleb(-digits)) for k in MONEY if isinstance(record.get(k), int)}
    return {**record, **money, "currency": currency.upper()}


def to_minor(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload with its decimal amounts in the currency's minor unit and its currency in lower case."""
    currency = payload.get("currency")
    if not isinstance(currency, str):
        return payload
    digits = _digits(currency)
    money = {k: _minor(payload[k], currency, digits) for k in MONEY if payload.get(k) is not None}
    return {**payload, **money, "currency": currency.lower()}


def _minor(value: Any, currency: str, digits: int) -> int:
    """A decimal amount in minor units; one Stripe cannot take exactly is refused, never rounded."""
    try:
        minor = Decimal(str(value)).scaleb(digits)
    except InvalidOperation:
        raise PermanentError(f"amount {value!r} is not a number") from None
    if minor != minor.to_integral_value() or (digits == 3 and minor % 10):
        unit = "whole units" if digits == 0 else f"{digits - (digits == 3)} decimals"
        raise PermanentError(f"amount {value} {currency.upper()}: Stripe takes {currency.upper()} in {unit}")
    return int(minor)


def changed_id(kind: str, obj: dict[str, Any]) -> str | None:
    """The id of the invoice or charge an event's object is, or belongs to (a dispute's, a refund's
    `charge`); None for an upcoming invoice, which has none."""
    if obj.get("object") == kind:
        return obj.get("id")
    owner = obj.get(kind)
    return owner if isinstance(owner, str) else None


@dataclass(frozen=True)
class Cursor:
    """The newest event read (empty when there was none) and its creation time, as `evt_...@1700000000`."""

    event: str
    created: int

    def __str__(self) -> str:
        return f"{self.event}@{self.created}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """A stored cursor, None for none (or one this connector did not write)."""
        event, at, created = (text or "").partition("@")
        return cls(event, int(created)) if at and created.isdigit() else None


def idempotency_key(resource: str, ours: Ours | None, payload: dict[str, Any]) -> str:
    """The same key for the same record sent with the same payload (a retry, a rerun); another for
    a changed payload, which Stripe would refuse under the first one's key."""
    which = [ours.path, ours.id] if ours else None
    digest = hashlib.sha256(json.dumps([resource, which, payload], sort_keys=True, default=str).encode())
    return f"ih-{resource}-{digest.hexdigest()[:40]}"


class Stripe(HttpConnector):
    """Customers and invoice items into Stripe; invoices and charges out of it, each charge with the
    invoice it paid (`invoice`, from InvoicePayments: Stripe's charges no longer name it).

    Stripe's lists filter on `created` only, and an invoice changes after it is created (paid,
    voided), so a run reads the changes from the events list instead: every `invoice.*` (or
    `charge.*`) event newer than the cursor, oldest first via `ending_before`, and each record they
    name read as it is now. The first run, and one whose cursor is older than Stripe keeps events
    (30 days, less a day's margin), reads the whole list, after noting the newest event. A deleted
    draft invoice is known by its `invoice.deleted` event (`deleted`).
    """

    extracts = frozenset({"invoices", "charges"})
    tombstones = frozenset(DELETED)
    loads = frozenset({"customers", "invoiceitems"})
    removes = {"delete": frozenset({"customers", "invoiceitems"})}  # an invoiced item Stripe refuses to delete

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None):
        super().__init__(api, transport, headers={VERSION_HEADER: api.version})
        # Stripe's 403: the key lacks a permission, for every record alike; its 409: a request still
        # in flight under the same Idempotency-Key, or a lock, worth another try (Stripe's SDKs retry it)
        rules = self.http.rules
        self.http.rules = rules.model_copy(update={"stop": sorted({*rules.stop, 403}),
                                                   "transient": sorted({*rules.transient, 409})})
        self.invoices_read = False  # whether a binding maps a charge's `invoice` (InvoicePayments are read)

    def select(self, resource: str, paths: Collection[str]) -> None:
        """A binding mapping a charge's `invoice` has it read from InvoicePayments; else no call is made."""
        self.invoices_read |= resource == "charges" and any(p.split(".")[0] == "invoice" for p in paths)

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """The records changed since the cursor (the newest event seen, `evt_...@created`) as Stripe's
        events tell, each read as it is now; every record when there is no cursor, or the events
        after it may be gone (Stripe keeps them 30 days)."""
        cursor = Cursor.parse(since)
        if cursor is None or resource not in EVENTS or time.time() - cursor.created > EVENTS_KEPT - MARGIN:
            yield from self._full(resource)
            return
        for events in self._events_after(resource, cursor):
            if events is None:  # the cursor's event is gone: read everything again
                yield from self._full(resource)
                return
            newest = Cursor(events[-1]["id"], int(events[-1]["created"]))
            yield Page(self._with_invoices(resource, list(self._current(resource, events))), str(newest))

    def _full(self, resource: str) -> Iterator[Page]:
        """Every record of the list, a page at a time; for an extracted list the last page carries the
        newest event of its kind, read first: a change after it is an event newer than it (a scan of
        a loaded list, customers say, carries none)."""
        mark = self._newest_event(resource) if resource in EVENTS else None
        after = None
        while True:
            params = {"limit": 100, **({"starting_after": after} if after else {})}
            data = self.http.request("GET", f"/v1/{resource}", params=params).body
            last = not data.get("has_more") or not data["data"]
            records = self._with_invoices(resource, [to_decimal(r) for r in data["data"]])
            yield Page(records, str(mark) if last and mark else None)
            if last:
                return
            after = data["data"][-1]["id"]

    def _newest_event(self, resource: str) -> Cursor:
        """The newest event of the resource's kind, or the time when there is none."""
        found = self.http.request("GET", "/v1/events", params={"type": EVENTS[resource], "limit": 1}).body["data"]
        return Cursor(found[0]["id"], int(found[0]["created"])) if found else Cursor("", int(time.time()))

    def _events_after(self, resource: str, cursor: Cursor) -> Iterator[list[dict[str, Any]] | None]:
        """The resource's events newer than the cursor's, oldest first, a page (up to 100) at a time;
        None when the cursor's event is no longer listed."""
        params: dict[str, Any] = {"type": EVENTS[resource], "limit": 100}
        if not cursor.event:  # no event of the kind when the cursor was set: every one listed is newer
            pages, after = [], None
            while True:  # (no `created` filter: our clock is not Stripe's)
                data = self.http.request("GET", "/v1/events", params={
                    **params, **({"starting_after": after} if after else {})}).body
                pages.append(list(reversed(data["data"])))
                if not data.get("has_more") or not data["data"]:
                    break
                after = data["data"][-1]["id"]
            yield from (page for page in reversed(pages) if page)
            return
        before = cursor.event
        while True:
            reply = self.http.request("GET", "/v1/events", params={**params, "ending_before": before}, ok=(404,))
            if reply.response.status_code == 404:
                yield None
                return
            data = reply.body
            if not data["data"]:
                return
            yield list(reversed(data["data"]))  # Stripe lists newest first
            if not data.get("has_more"):
                return
            before = data["data"][0]["id"]

    def _current(self, resource: str, events: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Each record these events changed, read now (in the pinned version, whatever version an
        event was rendered in), once; one deleted since is left out."""
        kind = EVENTS[resource].split(".")[0]
        gone = DELETED.get(resource)  # a deletion's record cannot be read: `deleted` tombstones it
        ids = [i for e in events if e["type"] != gone and (i := changed_id(kind, e["data"]["object"]))]
        for record_id in dict.fromkeys(reversed(ids)):
            reply = self.http.request("GET", f"/v1/{resource}/{record_id}", ok=(404,))
            if reply.response.status_code != 404:
                yield to_decimal(reply.body)

    def deleted(self, resource: str) -> Iterator[dict[str, Any]]:
        """The records named by every deletion event Stripe lists (30 days of them), as they were when
        deleted (a deleted draft invoice cannot be read again); all of them each run, so a run stopped
        before its tombstones loses none."""
        after = None
        while True:
            params = {"type": DELETED[resource], "limit": 100, **({"starting_after": after} if after else {})}
            data = self.http.request("GET", "/v1/events", params=params).body
            yield from (to_decimal(e["data"]["object"]) for e in data["data"])
            if not data.get("has_more") or not data["data"]:
                return
            after = data["data"][-1]["id"]

    def _with_invoices(self, resource: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Charges with the invoice each paid as `invoice`, the field Stripe's charges had before
        2025-03-31, read from InvoicePayments when a binding maps it: one list call per payment intent
        among them (a charge without one pays no invoice); None for an intent paying none, or several."""
        if resource != "charges" or not self.invoices_read:
            return records
        intents = dict.fromkeys(i for r in records if isinstance(i := r.get("payment_intent"), str))
        paid = {intent: self._invoice_paid_by(intent) for intent in intents}
        return [{**r, "invoice": paid.get(str(r.get("payment_intent")))} for r in records]

    def _invoice_paid_by(self, intent: str) -> str | None:
        """The invoice a payment intent pays, if it pays exactly one."""
        params = {"payment[type]": "payment_intent", "payment[payment_intent]": intent, "limit": 2}
        found = {p["invoice"] for p in self.http.request("GET", "/v1/invoice_payments", params=params).body["data"]}
        return found.pop() if len(found) == 1 else None

    def index(self, resource: str, id_path: str) -> dict[str, str]:
        """Our id (read at `id_path`, e.g. metadata.crm_id) -> Stripe id, over every record."""
        found: dict[str, str] = {}
        after = None
        while True:
            params = {"limit": 100, **({"starting_after": after} if after else {})}
            data = self.http.request("GET", f"/v1/{resource}", params=params).body
            for item in data["data"]:
                if (ours := get_path(item, id_path)) is not None:
                    found[str(ours)] = item["id"]
            if not data.get("has_more") or not data["data"]:
                return found
            after = data["data"][-1]["id"]

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """POST to create (with its Idempotency-Key, so retried freely), or POST to the record's URL
        to update; returns the Stripe id."""
        payload = to_minor(payload)
        if external_id:
            return str(self._update(resource, external_id, payload).body["id"])
        key = idempotency_key(resource, ours, payload)
        return str(self.http.request("POST", f"/v1/{resource}", data=dict(form(payload)),
                                     headers={"Idempotency-Key": key}).body["id"])

    def remove(self, resource: str, external_id: str, action: str) -> None:
        """DELETE the customer (Stripe cancels its subscriptions) or the pending invoice item; gone already is done."""
        self.http.request("DELETE", f"/v1/{resource}/{external_id}", ok=(404,))

    def _update(self, resource: str, external_id: str, payload: dict[str, Any]) -> Reply:
        if resource == "invoiceitems":  # an item's customer and currency are fixed
            payload = {k: v for k, v in payload.items() if k not in ("customer", "currency")}
        return self.http.request("POST", f"/v1/{resource}/{external_id}", data=dict(form(payload)))
