"""A sandbox for test suites: every chosen system on a free loopback port (pytest-agnostic), the
reads of the sandbox CRM's legacy `/crm/v3` routes the tests and benchmarks share, and a transport
that waits out a vendor's rate limit for a test's own calls."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from . import crm
from ._config import SYSTEMS
from ._runner import Sandbox


@contextlib.contextmanager
def free_port_sandbox(data_dir: Path, systems: Sequence[str] | None = None, **kwargs: Any) -> Iterator[Sandbox]:
    """Start `Sandbox(data_dir, systems, **kwargs)` on free ports; stop it on exit.

    In a conftest: `with free_port_sandbox(tmp_path_factory.mktemp("sandbox"), ["crm"]) as sb: yield sb`.
    """
    chosen = list(SYSTEMS if systems is None else systems)
    with Sandbox(data_dir, chosen, {s: 0 for s in chosen}, **kwargs) as sandbox:
        yield sandbox


class Patient(httpx.HTTPTransport):
    """A test's own calls to a sandbox vendor, each sent again after a 429 once the limit's second
    has passed (as Stripe's libraries do): the connectors' runs share the limit with them."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        while (response := super().handle_request(request)).status_code == 429:
            response.close()
            time.sleep(1)
        return response


def crm_params(object_type: str, **params: Any) -> dict[str, Any]:
    """Query parameters for a read of the sandbox CRM's `object_type` that returns every property
    its records hold, HubSpot's defaults too (HubSpot returns only those unless `properties` names
    others), and, for deals, their contact (an association, never a property), besides `params`."""
    names = sorted({*crm.DEFAULT_PROPERTIES[object_type], *crm.PROPERTIES[object_type]})
    linked = {"associations": "contacts"} if object_type == "deals" else {}
    return {"properties": ",".join(names), **linked, **params}


def crm_records(client: httpx.Client, object_type: str) -> list[dict[str, Any]]:
    """Every record of `object_type`, with every property (`crm_params`), through `/crm/v3`, page by page."""
    records: list[dict[str, Any]] = []
    after = None
    while True:
        params = crm_params(object_type, limit=100, **({"after": after} if after else {}))
        page = client.get(f"/crm/v3/objects/{object_type}", params=params).raise_for_status().json()
        records += page["results"]
        if not (after := page.get("paging", {}).get("next", {}).get("after")):
            return records


def crm_contact(deal: dict[str, Any]) -> str | None:
    """The id of a deal's contact, as a read asking for `associations=contacts` shows it."""
    linked = deal.get("associations", {}).get("contacts", {}).get("results", [])
    return str(linked[0]["id"]) if linked else None


def billing_invoice(client: httpx.Client, customer: str, cents: int) -> str:
    """A draft invoice of one item of `cents` euro cents for `customer` of the sandbox billing
    (`client` holds its base URL and key); localstripe invoices only a customer with a subscription
    and a card, so the customer gets a free plan and a test card first."""
    card = client.post("/v1/payment_methods", data={
        "type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12", "card[exp_year]": "2030",
        "card[cvc]": "123"}).raise_for_status().json()["id"]
    client.post(f"/v1/payment_methods/{card}/attach", data={"customer": customer}).raise_for_status()
    client.post(f"/v1/customers/{customer}", data={"invoice_settings[default_payment_method]": card}).raise_for_status()
    client.post("/v1/plans", data={"id": "free", "amount": "0", "currency": "eur", "interval": "month",
                                   "product[name]": "Free plan"})  # made once: later posts are refused
    client.post("/v1/subscriptions", data={"customer": customer, "items[0][plan]": "free"}).raise_for_status()
    client.post("/v1/invoiceitems", data={"customer": customer, "amount": str(cents), "currency": "eur"}
                ).raise_for_status()
    return str(client.post("/v1/invoices", data={"customer": customer}).raise_for_status().json()["id"])
