"""Signature schemes: reference libraries agree, the known answer holds, every failure is a 401."""

from __future__ import annotations

import base64
import json
import random
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks
import stripe
from pydantic import SecretStr

from integration_project.errors import WebhookError
from integration_project.webhooks.signatures import (
    SCHEMES,
    TOLERANCE,
    Event,
    GenericHmac,
    HubSpot,
    StandardWebhooks,
    kept_headers,
)

SW_SECRET = SecretStr("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
SECRETS = {
    "standard_webhooks": SW_SECRET,
    "stripe": SecretStr("whsec_stripe_test_secret"),
    "hubspot_v3": SecretStr("hubspot-client-secret"),
    "shopify": SecretStr("shopify-app-secret"),
    "hmac": SecretStr("generic-shared-secret"),
}
URL = "https://hooks.example.com/webhooks/crm?x=1"
NOW = 1_800_000_000.0
TIMED = ["standard_webhooks", "stripe", "hubspot_v3"]


def body_for(scheme: str) -> bytes:
    """A realistic body for the scheme."""
    if scheme == "hubspot_v3":
        return json.dumps([{"eventId": 101, "subscriptionType": "contact.creation", "objectId": 7}]).encode()
    return json.dumps({"id": "evt_1", "type": "customer.updated", "data": {"name": "Zoë"}}).encode()


def signed(scheme: str, body: bytes, timestamp: float = NOW) -> dict[str, str]:
    """Headers signing `body` with the scheme's test secret."""
    return SCHEMES[scheme].sign(
        body, SECRETS[scheme], event_id="evt_1", event_type="customer.updated", timestamp=timestamp, url=URL
    )


def verify(scheme: str, headers: dict[str, str], body: bytes, now: float = NOW) -> None:
    """Verify with the scheme's test secret at `now`."""
    SCHEMES[scheme].verify(headers, body, SECRETS[scheme], now=now, url=URL)


def test_standard_webhooks_known_answer_vector() -> None:
    """The vector from the Standard Webhooks reference libraries' tests signs and verifies."""
    body = b'{"test": 2432232314}'
    headers = StandardWebhooks().sign(body, SW_SECRET, event_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    StandardWebhooks().verify(headers, body, SW_SECRET, now=1614265330)


def test_standard_webhooks_reference_library_both_ways() -> None:
    """Signatures from `standardwebhooks` verify here, and ours verify there."""
    body = '{"type": "customer.updated", "data": {"name": "Zoë"}}'
    reference = standardwebhooks.Webhook(SW_SECRET.get_secret_value())
    now = datetime.now(tz=UTC)
    theirs = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": reference.sign("msg_1", now, body),
    }
    StandardWebhooks().verify(theirs, body.encode(), SW_SECRET)
    ours = StandardWebhooks().sign(body.encode(), SW_SECRET, event_id="msg_2")
    assert reference.verify(body, ours)["type"] == "customer.updated"


def test_stripe_reference_library_both_ways() -> None:
    """`stripe.WebhookSignature` headers verify here, and ours verify there."""
    secret = SECRETS["stripe"]
    body = body_for("stripe")
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret.get_secret_value())
    SCHEMES["stripe"].verify({"Stripe-Signature": header}, body, secret)
    ours = SCHEMES["stripe"].sign(body, secret)["Stripe-Signature"]
    assert stripe.WebhookSignature.verify_header(body, ours, secret.get_secret_value(), tolerance=TOLERANCE)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_round_trip(scheme: str) -> None:
    """What a scheme signs, it verifies (header names in any case)."""
    body = body_for(scheme)
    headers = {name.upper(): value for name, value in signed(scheme, body).items()}
    verify(scheme, headers, body)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_tampered_body_is_refused(scheme: str) -> None:
    """One changed byte of the body fails verification with 401."""
    body = body_for(scheme)
    headers = signed(scheme, body)
    with pytest.raises(WebhookError) as refused:
        verify(scheme, headers, body.replace(b"1", b"2", 1))
    assert refused.value.status == 401


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_wrong_secret_is_refused(scheme: str) -> None:
    """A signature made with another secret fails with 401."""
    body = body_for(scheme)
    other = SecretStr("whsec_" + base64.b64encode(b"another key entirely").decode())
    headers = SCHEMES[scheme].sign(body, other, event_id="evt_1", timestamp=NOW, url=URL)
    with pytest.raises(WebhookError) as refused:
        verify(scheme, headers, body)
    assert refused.value.status == 401


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_rotation_accepts_old_and_new_secret(scheme: str) -> None:
    """With two secrets configured, a delivery signed with either verifies."""
    body = body_for(scheme)
    new = SecretStr("whsec_" + base64.b64encode(b"the new key").decode())
    for secret in (SECRETS[scheme], new):
        headers = SCHEMES[scheme].sign(body, secret, event_id="evt_1", timestamp=NOW, url=URL)
        SCHEMES[scheme].verify(headers, body, [new, SECRETS[scheme]], now=NOW, url=URL)


def test_standard_webhooks_several_signatures_in_one_header() -> None:
    """A space-separated list with unknown versions and wrong digests still finds the valid one."""
    body = body_for("standard_webhooks")
    headers = signed("standard_webhooks", body)
    junk = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    headers["webhook-signature"] = f"{junk} v2,{junk[3:]} {headers['webhook-signature']} {junk}"
    verify("standard_webhooks", headers, body)


@pytest.mark.parametrize("scheme", TIMED)
@pytest.mark.parametrize("offset", [-TOLERANCE - 1, TOLERANCE + 1, -86_400, 86_400])
def test_stale_and_future_timestamps_are_refused(scheme: str, offset: int) -> None:
    """Outside ±5 minutes, in either direction, a valid signature is still refused."""
    body = body_for(scheme)
    with pytest.raises(WebhookError) as refused:
        verify(scheme, signed(scheme, body, timestamp=NOW + offset), body)
    assert refused.value.status == 401


@pytest.mark.parametrize("scheme", TIMED)
@pytest.mark.parametrize("offset", [-TOLERANCE + 1, TOLERANCE - 1])
def test_timestamps_inside_the_window_pass(scheme: str, offset: int) -> None:
    """Just inside the window, either way, is accepted."""
    body = body_for(scheme)
    verify(scheme, signed(scheme, body, timestamp=NOW + offset), body)


def test_resigned_timestamp_without_the_secret_is_refused() -> None:
    """A replay with a fresh timestamp but the captured signature fails: the timestamp is signed."""
    body = body_for("stripe")
    captured = signed("stripe", body, timestamp=NOW - 3600)["Stripe-Signature"]
    replay = captured.replace(f"t={int(NOW - 3600)}", f"t={int(NOW)}")
    with pytest.raises(WebhookError) as refused:
        verify("stripe", {"Stripe-Signature": replay}, body)
    assert refused.value.status == 401


MALFORMED = {
    "standard_webhooks": [
        {"webhook-id": "x", "webhook-timestamp": "abc", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "x", "webhook-timestamp": "1e9", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "x", "webhook-timestamp": str(int(NOW)), "webhook-signature": "v1,!!notbase64"},
        {"webhook-id": "x", "webhook-timestamp": str(int(NOW)), "webhook-signature": "v1"},
        {"webhook-id": "x", "webhook-timestamp": str(int(NOW)), "webhook-signature": ""},
        {"webhook-id": "x", "webhook-timestamp": "１２３", "webhook-signature": "v1,AAAA"},
        {"webhook-timestamp": str(int(NOW)), "webhook-signature": "v1,AAAA"},
    ],
    "stripe": [
        {"Stripe-Signature": "garbage"},
        {"Stripe-Signature": f"t={int(NOW)}"},
        {"Stripe-Signature": f"t={int(NOW)},v1=zz"},
        {"Stripe-Signature": f"t={int(NOW)},t={int(NOW)},v1=00"},
        {"Stripe-Signature": "t=,v1=00"},
        {},
    ],
    "hubspot_v3": [
        {"X-HubSpot-Signature-v3": "AAAA"},
        {"X-HubSpot-Signature-v3": "%%%", "X-HubSpot-Request-Timestamp": str(int(NOW * 1000))},
        {"X-HubSpot-Signature-v3": "AAAA", "X-HubSpot-Request-Timestamp": "-5"},
    ],
    "shopify": [{"X-Shopify-Hmac-Sha256": "not base64!"}, {"X-Shopify-Hmac-Sha256": ""}, {}],
    "hmac": [{"X-Signature": "xyz"}, {"X-Signature": "0" * 63}, {}],
}


@pytest.mark.parametrize(("scheme", "headers"), [(s, h) for s, hs in MALFORMED.items() for h in hs])
def test_malformed_or_missing_headers_are_401(scheme: str, headers: dict[str, str]) -> None:
    """Garbage in any signature header is a 401, never another exception."""
    with pytest.raises(WebhookError) as refused:
        verify(scheme, headers, body_for(scheme))
    assert refused.value.status == 401


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_random_header_values_only_ever_raise_401(scheme: str) -> None:
    """Random printable and non-ASCII header values never escape as anything but WebhookError(401)."""
    rng = random.Random(scheme)
    body = body_for(scheme)
    names = list(signed(scheme, body))
    alphabet = "0123456789abcdefv=,. t+/é\x00"
    for _ in range(300):
        headers = {name: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for name in names}
        with pytest.raises(WebhookError) as refused:
            verify(scheme, headers, body)
        assert refused.value.status == 401


def test_hubspot_signs_the_decoded_uri_and_the_method() -> None:
    """HubSpot's listed escapes are decoded before signing; the method is part of the signature."""
    body = body_for("hubspot_v3")
    headers = HubSpot().sign(body, SECRETS["hubspot_v3"], url="https://h.example/a:b?c=d@e", timestamp=NOW)
    HubSpot().verify(headers, body, SECRETS["hubspot_v3"], now=NOW, url="https://h.example/a%3Ab?c=d%40e")
    with pytest.raises(WebhookError):
        HubSpot().verify(headers, body, SECRETS["hubspot_v3"], now=NOW, method="PUT", url="https://h.example/a:b?c=d@e")


def test_event_ids_and_types_per_scheme() -> None:
    """Each scheme finds the event id and type where its vendor puts them."""
    body = body_for("stripe")
    payload = json.loads(body)
    expected = [Event("evt_1", "customer.updated", body)]
    assert SCHEMES["stripe"].events({}, body, payload) == expected
    assert SCHEMES["standard_webhooks"].events({"Webhook-Id": "evt_1"}, body, payload) == expected
    shopify = {"X-Shopify-Webhook-Id": "evt_1", "X-Shopify-Topic": "customer.updated"}
    assert SCHEMES["shopify"].events(shopify, body, payload) == expected
    assert SCHEMES["hmac"].events({"X-Event-Id": "evt_1"}, body, payload) == expected
    custom = GenericHmac(header="X-Hub-Signature-256", prefix="sha256=", id_header="X-Delivery")
    assert custom.events({"x-delivery": "evt_1"}, body, payload) == expected


def test_hubspot_batch_becomes_one_event_each() -> None:
    """A HubSpot array of events gives one Event per element, each with its own body."""
    batch = [
        {"eventId": 1, "subscriptionType": "contact.creation", "objectId": 10},
        {"eventId": 2, "subscriptionType": "contact.propertyChange", "objectId": 11},
    ]
    events = HubSpot().events({}, b"", batch)
    assert [(e.event_id, e.event_type) for e in events] == [("1", "contact.creation"), ("2", "contact.propertyChange")]
    assert json.loads(events[1].body) == batch[1]


@pytest.mark.parametrize(
    ("scheme", "headers", "payload"),
    [
        ("stripe", {}, {"type": "x"}),
        ("stripe", {}, [1, 2]),
        ("stripe", {}, {"id": "x" * 256, "type": "x"}),
        ("stripe", {}, {"id": True, "type": "x"}),
        ("stripe", {}, {"id": "evt\u0000", "type": "x"}),
        ("stripe", {}, {"id": "evt_1", "type": "x\ny"}),
        ("standard_webhooks", {"webhook-id": "m"}, {"data": {}}),
        ("hubspot_v3", {}, []),
        ("hubspot_v3", {}, [{"eventId": 1}]),
        ("shopify", {"X-Shopify-Topic": "orders/create"}, {}),
        ("hmac", {"X-Event-Type": "t"}, {}),
    ],
)
def test_missing_event_id_or_type_is_400(scheme: str, headers: dict[str, str], payload: object) -> None:
    """A verified delivery without a usable id or type is refused with 400."""
    with pytest.raises(WebhookError) as refused:
        SCHEMES[scheme].events(headers, b"{}", payload)
    assert refused.value.status == 400


def test_malformed_standard_webhooks_secret_is_a_configuration_error() -> None:
    """A secret that is not base64 fails when the key is made, not per request."""
    with pytest.raises(ValueError, match="base64"):
        StandardWebhooks().key(SecretStr("whsec_not*base64"))


def test_kept_headers_never_include_signatures() -> None:
    """Only the scheme's listed headers are kept, never the signature."""
    body = body_for("standard_webhooks")
    headers = signed("standard_webhooks", body) | {"Authorization": "Bearer x"}
    kept = kept_headers(SCHEMES["standard_webhooks"], headers)
    assert kept == {"webhook-id": "evt_1", "webhook-timestamp": str(int(NOW))}


def test_default_now_is_the_clock() -> None:
    """Without `now`, verification uses the current time."""
    body = body_for("stripe")
    SCHEMES["stripe"].verify(signed("stripe", body, timestamp=time.time()), body, SECRETS["stripe"])
