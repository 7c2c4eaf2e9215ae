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
from collections.abc import Iterator
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


def idempotency_key(resource: str, ours: Ours | None, payload: dict[str, Any]) -> str:
    """The same key for the same record sent with the same payload (a retry, a rerun); another for
    a changed payload, which Stripe would refuse under the first one's key."""
    which = [ours.path, ours.id] if ours else None
    digest = hashlib.sha256(json.dumps([resource, which, payload], sort_keys=True, default=str).encode())
    return f"ih-{resource}-{digest.hexdigest()[:40]}"


class Stripe(HttpConnector):
    """Customers and invoice items into Stripe; invoices and charges out of it.

    Stripe's lists have no modified-since filter (changes arrive as events), so extraction reads
    the whole list, newest first, and commits no cursor: unchanged records are skipped in the hub
    by their content hash.
    """

    extracts = frozenset({"invoices", "charges"})
    loads = frozenset({"customers", "invoiceitems"})
    removes = {"delete": frozenset({"customers", "invoiceitems"})}  # an invoiced item Stripe refuses to delete

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None):
        super().__init__(api, transport, headers={VERSION_HEADER: api.version})
        # Stripe's 403: the key lacks a permission, for every record alike; its 409: a request still
        # in flight under the same Idempotency-Key, or a lock, worth another try (Stripe's SDKs retry it)
        rules = self.http.rules
        self.http.rules = rules.model_copy(update={"stop": sorted({*rules.stop, 403}),
                                                   "transient": sorted({*rules.transient, 409})})

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Every record of the list, a page at a time, amounts in decimal units."""
        after = None
        while True:
            params = {"limit": 100, **({"starting_after": after} if after else {})}
            data = self.http.request("GET", f"/v1/{resource}", params=params).body
            yield Page([to_decimal(r) for r in data["data"]], None)
            if not data.get("has_more") or not data["data"]:
                return
            after = data["data"][-1]["id"]

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
