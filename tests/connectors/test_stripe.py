"""Stripe invoice items in and invoices/charges out, against localstripe."""

from __future__ import annotations

from decimal import Decimal

import httpx

from integration_project.connectors.stripe import to_decimal, to_minor
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
