"""Billing is the real localstripe on loopback: the official `stripe` client works against it."""

from __future__ import annotations

import httpx
import pytest
import stripe

from integration_sandbox import Sandbox


def _client(sandbox: Sandbox) -> stripe.StripeClient:
    return stripe.StripeClient(sandbox.token("billing"), base_addresses={"api": sandbox.url("billing")})


@pytest.mark.server
def test_seeded_customers_list_with_the_stripe_library(sandbox: Sandbox) -> None:
    customers = list(_client(sandbox).v1.customers.list({"limit": 100}).auto_paging_iter())
    report = sandbox.seed_report("billing")
    assert set(report["customers"]) <= {c.id for c in customers}
    assert report["counts"]["customers"] == 10
    assert all(c.email.endswith("@example.com") for c in customers if c.id in report["customers"])


@pytest.mark.server
def test_customer_subscription_and_paid_invoice(sandbox: Sandbox) -> None:
    # localstripe only invoices customers with a subscription (and a payment method); noted as a gap.
    client = _client(sandbox)
    customer = client.v1.customers.create({"email": "billing.test@example.com", "name": "Billing Test"})
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    method = client.v1.payment_methods.create({"type": "card", "card": card})
    client.v1.payment_methods.attach(method.id, {"customer": customer.id})
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": method.id}})
    plan = client.v1.plans.create({"amount": 1000, "currency": "eur", "interval": "month", "product": {"name": "Plan"}})
    subscription = client.v1.subscriptions.create({"customer": customer.id, "items": [{"plan": plan.id}]})
    invoices = client.v1.invoices.list({"customer": customer.id}).data
    assert subscription.status == "active"
    assert [(i.id, i.status, i.amount_due) for i in invoices] == [(subscription.latest_invoice, "paid", 1000)]
    [paid] = client.v1.invoice_payments.list({"invoice": subscription.latest_invoice}).data
    assert (paid.status, paid.amount_paid, paid.payment.type) == ("paid", 1000, "payment_intent")
    [charge] = client.v1.charges.list({"customer": customer.id}).data
    assert paid.payment.payment_intent == charge.payment_intent  # the intent that paid it
    assert client.v1.invoice_payments.retrieve(paid.id).invoice == subscription.latest_invoice
    assert client.v1.customers.retrieve(customer.id).email == "billing.test@example.com"


@pytest.mark.server
def test_billing_rejects_missing_key_and_listens_on_loopback_only(sandbox: Sandbox) -> None:
    assert httpx.get(sandbox.url("billing") + "/v1/customers").status_code == 401
    assert sandbox.url("billing").startswith("http://127.0.0.1:")


@pytest.mark.server
def test_billing_faults_live_through_its_admin_endpoint(sandbox: Sandbox) -> None:
    headers = {"Authorization": f"Bearer {sandbox.token('billing')}"}
    url = sandbox.url("billing")
    assert httpx.put(url + "/_sandbox/faults", headers=headers, json={"error_rate": 7}).status_code == 400
    try:
        httpx.put(url + "/_sandbox/faults", headers=headers, json={"rate_limit_rate": 1, "retry_after_seconds": 3,
                                                                    "sunset": "Thu, 31 Dec 2026 23:59:59 GMT"})
        limited = httpx.get(url + "/v1/customers", headers=headers)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
        with pytest.raises(stripe.RateLimitError):
            _client(sandbox).v1.customers.list({"limit": 1}, {"max_network_retries": 0})
        httpx.put(url + "/_sandbox/faults", headers=headers, json={"reset_rate": 1})
        with pytest.raises(httpx.TransportError):
            httpx.get(url + "/v1/customers", headers=headers)
        httpx.put(url + "/_sandbox/faults", headers=headers, json={"sunset": "Thu, 31 Dec 2026 23:59:59 GMT",
                                                                    "renamed_fields": {"email": "email_address"}})
        ok = httpx.get(url + "/v1/customers", headers=headers, params={"limit": 1})
        assert ok.headers["sunset"] == "Thu, 31 Dec 2026 23:59:59 GMT" and "email_address" in ok.json()["data"][0]
    finally:
        httpx.put(url + "/_sandbox/faults", headers=headers, json={})


@pytest.mark.server
def test_the_webhook_relay_refuses_unsigned_posts(sandbox: Sandbox) -> None:
    url = sandbox.url("billing") + "/_config/sandbox/relay"
    assert httpx.post(url, content=b'{"id": "evt_1", "type": "x"}').status_code == 400
    assert httpx.post(url, content=b"not json", headers={"Stripe-Signature": "t=1,v1=00"}).status_code == 400


@pytest.mark.server
def test_billing_answers_an_idempotency_key_as_stripe_does(sandbox: Sandbox) -> None:
    """localstripe ignores the key; the sandbox replays the first answer, refuses other parameters."""
    url, key = sandbox.url("billing") + "/v1/customers", "sandbox-idem-test-1"
    headers = {"Authorization": f"Bearer {sandbox.token('billing')}", "Idempotency-Key": key}
    form = {"email": "idem.sandbox@example.com", "metadata[crm_contact_id]": "idem-sb"}
    first, again = (httpx.post(url, headers=headers, data=form) for _ in range(2))
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    other = httpx.post(url, headers=headers, data={**form, "email": "other@example.com"})
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    listed = httpx.get(url, headers={"Authorization": headers["Authorization"]}, params={"limit": 100}).json()["data"]
    assert [c["id"] for c in listed if c["metadata"].get("crm_contact_id") == "idem-sb"] == [first.json()["id"]]
