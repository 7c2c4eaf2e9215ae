"""Every system posts signed webhooks for its changes; each signature verifies, delivery is at least once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import Counter
from pathlib import Path

import pytest
import standardwebhooks
import stripe
from conftest import Delivery, Receiver
from pydantic import SecretStr
from sandbox_clients import client, shop_order

from integration_sandbox import Sandbox
from integration_sandbox.testing import free_port_sandbox
from integration_project.webhooks.signatures import SCHEMES

pytestmark = pytest.mark.server


def test_crm_deliveries_are_hubspot_v3_signed_and_retried_after_a_500(sandbox: Sandbox, receiver: Receiver) -> None:
    with client(sandbox, "crm") as http:
        contact = http.post("/crm/v3/objects/contacts", json={"properties": {"email": "hook.crm@example.com"}}).json()

    def mine(d: Delivery) -> bool:
        return "x-hubspot-signature-v3" in d.headers and json.loads(d.body)[0]["objectId"] == int(contact["id"])

    deliveries = receiver.wait_for(mine)
    assert [d.answered for d in deliveries][:2] == [500, 200]  # refused once, then retried
    for d in deliveries:
        SCHEMES["hubspot_v3"].verify(d.headers, d.body, SecretStr(sandbox.webhook_secret("crm")), url=receiver.url + "/crm")
    assert json.loads(deliveries[-1].body)[0]["subscriptionType"] == "contact.creation"


def test_billing_deliveries_verify_with_the_stripe_library_and_are_retried(sandbox: Sandbox,
                                                                           receiver: Receiver) -> None:
    stripe_client = stripe.StripeClient(sandbox.token("billing"), base_addresses={"api": sandbox.url("billing")})
    customer = stripe_client.v1.customers.create({"email": "hook.billing@example.com"})

    def mine(d: Delivery) -> bool:
        return "stripe-signature" in d.headers and json.loads(d.body)["data"]["object"]["id"] == customer.id

    deliveries = receiver.wait_for(mine)
    assert [d.answered for d in deliveries][:2] == [500, 200]  # refused once, then retried
    for delivery in deliveries:
        event = stripe.Webhook.construct_event(delivery.body.decode(), delivery.headers["stripe-signature"],
                                               sandbox.webhook_secret("billing"))
        assert event.type == "customer.created" and event.data.object.id == customer.id
        assert "account_balance" not in json.loads(delivery.body)["data"]["object"]  # the pinned version's shape


def test_shop_deliveries_carry_a_base64_body_hmac(sandbox: Sandbox, receiver: Receiver) -> None:
    with client(sandbox, "shop") as http:
        order = shop_order(http, "hook.shop@example.com", price="9.50")

    def mine(d: Delivery) -> bool:  # the REST resource shape, as Shopify's webhooks still post
        return d.headers.get("x-shopify-topic") == "orders/create" and json.loads(d.body)["id"] == int(
            order["legacyResourceId"]) and json.loads(d.body)["total_price"] == "9.50"

    delivery = receiver.wait_for(mine)[0]
    expected = base64.b64encode(hmac.new(sandbox.webhook_secret("shop").encode(), delivery.body, hashlib.sha256).digest())
    assert delivery.headers["x-shopify-hmac-sha256"] == expected.decode()
    assert delivery.headers["x-shopify-webhook-id"]


@pytest.mark.parametrize("system", ["inventory", "fulfilment"])
def test_standard_webhooks_verify_with_the_reference_library(sandbox: Sandbox, receiver: Receiver, system: str) -> None:
    with client(sandbox, system) as http:
        if system == "inventory":
            http.put("/v1/stock/SKU-900100", json={"on_hand": 3}).raise_for_status()
            key = "SKU-900100"
        else:
            key = http.post("/v1/shipments", json={"order_id": "HOOK-1", "lines": [{"sku": "SKU-1", "quantity": 1}]}).json()["id"]

    def mine(d: Delivery) -> bool:
        data = json.loads(d.body).get("data", {}) if "webhook-id" in d.headers else {}
        return key in (data.get("sku"), data.get("id"))

    delivery = receiver.wait_for(mine)[0]
    payload = standardwebhooks.Webhook(sandbox.webhook_secret(system)).verify(delivery.body, delivery.headers)
    assert payload["type"] in ("stock.updated", "shipment.updated")
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(sandbox.webhook_secret(system)).verify(delivery.body + b" ", delivery.headers)


@pytest.mark.parametrize(("system", "path", "body"), [
    ("support", "/api/v2/tickets.json", {"ticket": {"subject": "hook.support"}}),
    ("marketing", "/3.0/lists/a1b2c3d4e5", {"members": [{"email_address": "hook.marketing@example.com"}]}),
])
def test_support_and_marketing_sign_with_generic_hmac(sandbox: Sandbox, receiver: Receiver, system: str, path: str,
                                                      body: dict[str, object]) -> None:
    with client(sandbox, system) as http:
        assert http.post(path, json=body).status_code in (200, 201)
    marker = f"hook.{system}".encode()
    delivery = receiver.wait_for(lambda d: "x-signature" in d.headers and marker in d.body)[0]
    SCHEMES["hmac"].verify(delivery.headers, delivery.body, SecretStr(sandbox.webhook_secret(system)))
    expected = hmac.new(sandbox.webhook_secret(system).encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["x-signature"] == expected


def test_every_event_arrives_at_least_once_and_some_twice(sandbox: Sandbox, receiver: Receiver) -> None:
    with client(sandbox, "inventory") as http:
        for n in range(20):
            http.put(f"/v1/stock/SKU-9002{n:02d}", json={"on_hand": n}).raise_for_status()

    def batch(d: Delivery) -> bool:
        return "webhook-id" in d.headers and str(json.loads(d.body)["data"].get("sku")).startswith("SKU-9002")

    deadline = time.monotonic() + 15
    per_event: Counter[str] = Counter()
    while len(per_event) < 20 and time.monotonic() < deadline:
        per_event = Counter(d.headers["webhook-id"] for d in receiver.wait_for(batch, count=20, timeout=1))
    assert len(per_event) == 20
    assert {d.path for d in receiver.wait_for(batch, count=20, timeout=0)} == {"/hooks/inventory"}
    assert max(per_event.values()) >= 2  # duplicates happen (rate 0.3 here), as with the real vendors


def test_undelivered_events_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    with free_port_sandbox(tmp_path, ["inventory"], webhook_url="http://127.0.0.1:9/nobody-listens") as sb:
        with client(sb, "inventory") as http:
            http.put("/v1/stock/SKU-900300", json={"on_hand": 1}).raise_for_status()
    with free_port_sandbox(tmp_path, ["inventory"], webhook_url=receiver.url + "/{system}"):
        deliveries = receiver.wait_for(lambda d: b'"SKU-900300"' in d.body)
    assert deliveries and deliveries[0].path == "/hooks/inventory"
