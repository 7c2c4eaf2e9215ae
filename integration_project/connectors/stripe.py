"""Stripe: customers and invoice items written idempotently; invoices and charges read.

Stripe's emulator (localstripe) ignores Idempotency-Key, and a crash between a create and our
record of it would otherwise duplicate the customer. So the engine marks a send as pending first;
on a rerun, `index` lists the system's records and finds ours by the id we store in metadata. A
create whose answer is lost is looked up the same way before it is sent again.

Stripe counts money in the currency's minor unit (cents) and writes currencies in lower case;
the connector speaks decimal amounts and ISO codes (EUR) to the hub, both ways.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx

from integration_project.connectors.base import HttpConnector, Ours, Page
from integration_project.connectors.http import Reply
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


# Currencies without a minor unit (https://docs.stripe.com/currencies#zero-decimal).
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                          "vnd", "vuv", "xaf", "xof", "xpf"})
MONEY = ("amount", "amount_due", "amount_paid", "amount_remaining", "subtotal", "total", "amount_refunded")


def _digits(currency: str) -> int:
    return 0 if currency.lower() in ZERO_DECIMAL else 2


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
    money = {k: int(Decimal(str(payload[k])).scaleb(digits)) for k in MONEY if payload.get(k) is not None}
    return {**payload, **money, "currency": currency.lower()}


class Stripe(HttpConnector):
    """Customers and invoice items into Stripe; invoices and charges out of it.

    Stripe's lists have no modified-since filter (changes arrive as events), so extraction reads
    the whole list, newest first, and commits no cursor: unchanged records are skipped in the hub
    by their content hash.
    """

    extracts = frozenset({"invoices", "charges"})
    loads = frozenset({"customers", "invoiceitems"})

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None):
        super().__init__(api, transport, headers={"Stripe-Version": api.version})

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
        """POST to create, or POST to the record's URL to update; returns the Stripe id."""
        payload = to_minor(payload)
        if external_id:
            return str(self._update(resource, external_id, payload).body["id"])
        # not idempotent: after a lost answer the record is found by our id before a resend
        recover = self.recovery(resource, ours, lambda found: self._update(resource, found, payload))
        return str(self.http.request("POST", f"/v1/{resource}", data=dict(form(payload)), idempotent=False,
                                     recover=recover).body["id"])

    def _update(self, resource: str, external_id: str, payload: dict[str, Any]) -> Reply:
        if resource == "invoiceitems":  # an item's customer and currency are fixed
            payload = {k: v for k, v in payload.items() if k not in ("customer", "currency")}
        return self.http.request("POST", f"/v1/{resource}/{external_id}", data=dict(form(payload)))
