"""Stripe invoice items in and invoices/charges out, against localstripe."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from integration_project.connectors import Ours, connector_class
from integration_project.connectors.stripe import to_decimal, to_minor
from integration_project.errors import PermanentError, StopRun
from tests.connectors.conftest import drain


def test_money_is_decimal_in_the_hub_and_minor_units_in_stripe():
    assert to_decimal({"amount_due": 123456, "currency": "eur"}) | {} == {"amount_due": "1234.56", "currency": "EUR"}
    assert to_minor({"amount": "1234.56", "currency": "EUR"}) == {"amount": 123456, "currency": "eur"}
    assert to_minor({"amount": "500", "currency": "JPY"}) == {"amount": 500, "currency": "jpy"}
    assert Decimal(to_decimal({"amount": 500, "currency": "jpy"})["amount"]) == 500


def test_a_deal_becomes_one_invoice_item_updated_in_place(connector, sandbox):
    stripe = connector("billing")
    customer = sandbox.seed_report("billing")["customers"][0]
    item = {"metadata": {"deal_id": "9101"}, "customer": customer, "amount": "1500.00", "currency": "EUR",
            "description": "Deal 9101"}
    created = stripe.upsert("invoiceitems", None, item)
    assert stripe.upsert("invoiceitems", created, {**item, "amount": "1750.50"}) == created
    assert stripe.index("invoiceitems", "metadata.deal_id")["9101"] == created
    auth = {"Authorization": f"Bearer {sandbox.token('billing')}"}
    with httpx.Client(base_url=sandbox.url("billing"), headers=auth) as api:
        held = api.get(f"/v1/invoiceitems/{created}").json()
        card = api.post("/v1/payment_methods", data={"type": "card", "card[number]": "4242424242424242",
                                                      "card[exp_month]": "12", "card[exp_year]": "2030",
                                                      "card[cvc]": "123"}).json()["id"]
        charge = api.post("/v1/charges", data={"amount": "2599", "currency": "eur", "source": card})
    assert int(held["amount"]) == 175050 and held["currency"] == "eur"  # localstripe echoes the form's text
    charges, cursor = drain(stripe, "charges", None)
    assert cursor is None  # Stripe lists cannot resume from a change time: every run reads them
    assert charge.status_code == 200, charge.text
    assert {"amount": "25.99", "currency": "EUR"}.items() <= next(
        c for c in charges if c["id"] == charge.json()["id"]).items()



def test_invoices_come_out_in_decimal_units_with_iso_currencies(connector, sandbox):
    stripe = connector("billing")
    customer = sandbox.seed_report("billing")["customers"][1]
    auth = {"Authorization": f"Bearer {sandbox.token('billing')}"}
    with httpx.Client(base_url=sandbox.url("billing"), headers=auth) as api:
        # localstripe invoices only customers with a subscription: give this one a free plan
        api.post("/v1/plans", data={"id": "free", "amount": "0", "currency": "eur", "interval": "month",
                                    "product[name]": "Free plan"})
        api.post("/v1/subscriptions", data={"customer": customer, "items[0][plan]": "free"}).raise_for_status()
        api.post("/v1/invoiceitems", data={"customer": customer, "amount": "4990", "currency": "eur"})
        created = api.post("/v1/invoices", data={"customer": customer}).json()["id"]
    invoices, cursor = drain(stripe, "invoices", None)
    assert cursor is None
    mine = next(i for i in invoices if i["id"] == created)
    assert (mine["amount_due"], mine["currency"], mine["status"]) == ("49.90", "EUR", "draft")


def test_amounts_follow_each_currencys_exponent_and_an_inexact_one_is_refused():
    """Stripe's published exponents: JPY none, EUR two, KWD/BHD three (in tens of thousandths)."""
    assert to_minor({"amount": "1.5", "currency": "KWD"})["amount"] == 1500
    assert to_decimal({"amount": 1500, "currency": "kwd"})["amount"] == "1.500"
    assert to_decimal({"amount_due": 12340, "currency": "bhd"})["amount_due"] == "12.340"
    assert to_minor({"amount": "500", "currency": "JPY"})["amount"] == 500
    for amount, currency in (("1.234", "KWD"), ("12.345", "EUR"), ("0.5", "JPY"), ("ten", "EUR")):
        with pytest.raises(PermanentError, match="amount"):
            to_minor({"amount": amount, "currency": currency})


class _LoseFirstCreateAnswer(httpx.BaseTransport):
    """The real sandbox behind it; the first create's answer is lost after Stripe acted on it."""

    def __init__(self) -> None:
        self.inner, self.sent, self.lost = httpx.HTTPTransport(), [], False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        response = self.inner.handle_request(request)
        response.read()
        if request.method == "POST" and not self.lost:
            self.lost = True
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_a_retried_create_reuses_its_idempotency_key_and_lists_nothing(env, landscape, sandbox):
    declared = landscape.systems["billing"]
    transport = _LoseFirstCreateAnswer()
    stripe = connector_class(declared)(declared.api, transport=transport)
    customer = {"email": "idem@example.com", "name": "Idem Potent", "metadata": {"crm_contact_id": "idem-1"}}
    try:
        created = stripe.upsert("customers", None, customer, Ours("metadata.crm_contact_id", "idem-1"))
    finally:
        stripe.close()
    posts = [r for r in transport.sent if r.method == "POST"]
    assert transport.lost and len(posts) == 2 and [r for r in transport.sent if r.method == "GET"] == []
    keys = {r.headers.get("Idempotency-Key") for r in posts}
    assert len(keys) == 1 and None not in keys
    auth = {"Authorization": f"Bearer {sandbox.token('billing')}"}
    with httpx.Client(base_url=sandbox.url("billing"), headers=auth) as api:
        mine = [c["id"] for c in api.get("/v1/customers", params={"limit": 100}).json()["data"]
                if c["metadata"].get("crm_contact_id") == "idem-1"]
    assert mine == [created]


def test_a_restricted_keys_403_stops_the_run_at_the_first_write(env, landscape):
    """localstripe has no restricted keys; Stripe's answer to one, as Stripe documents it."""
    refused = {"error": {"type": "invalid_request_error",
                         "message": "The provided key 'rk_test_...' does not have the required permissions "
                                    "for this endpoint on account 'acct_1'."}}
    declared = landscape.systems["billing"]
    stripe = connector_class(declared)(declared.api, transport=httpx.MockTransport(
        lambda request: httpx.Response(403, json=refused)))
    with pytest.raises(StopRun, match="403"):
        stripe.upsert("customers", None, {"email": "a@example.com"}, Ours("metadata.crm_contact_id", "1"))


def test_a_create_answered_409_in_flight_is_tried_again_under_the_same_key(env, landscape, monkeypatch):
    """Stripe's 409: the same Idempotency-Key still in flight; its SDKs retry it, so do we."""
    monkeypatch.setattr("integration_project.connectors.http._RetryAfter.__call__", lambda self, state: 0.0)
    answers = iter([httpx.Response(409, json={"error": {"type": "idempotency_error"}}),
                    httpx.Response(200, json={"id": "cus_409"})])
    sent: list[httpx.Request] = []
    declared = landscape.systems["billing"]
    stripe = connector_class(declared)(declared.api, transport=httpx.MockTransport(
        lambda request: sent.append(request) or next(answers)))
    assert stripe.upsert("customers", None, {"email": "a@example.com"}, Ours("metadata.crm_contact_id", "1")) == "cus_409"
    assert len({r.headers["Idempotency-Key"] for r in sent}) == 1 and len(sent) == 2
