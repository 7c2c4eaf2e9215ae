"""Webhook signature schemes: sign a delivery, verify one, and tell its events' ids and types.

Each scheme is an object with the same four methods, so the receiver, the sandbox (which signs
outgoing deliveries) and the tests treat them alike:

    headers = SCHEMES["stripe"].sign(body, secret)
    SCHEMES["stripe"].verify(headers, body, secret)          # raises WebhookError(401)
    events = SCHEMES["stripe"].events(headers, body, json.loads(body))

`verify` compares digests in constant time, refuses timestamps more than `TOLERANCE` seconds
away from now in either direction, and turns every failure into `WebhookError(401)`; its message
says why (for the operator's log) and never contains the secret or the body. It accepts several
secrets, to rotate one without downtime.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pydantic import SecretStr

from integration_project.errors import WebhookError

TOLERANCE = 300  # seconds; a signed timestamp further than this from now, either way, is refused
MAX_ID_LENGTH = 255  # event ids and types longer than this are refused (400), not truncated

Secrets = SecretStr | Sequence[SecretStr]


@dataclass(frozen=True)
class Event:
    """One event of a verified delivery, as the inbox stores it."""

    event_id: str
    event_type: str
    body: bytes


class Scheme(Protocol):
    """A signature scheme: how a sender signs, how a receiver checks, where the event id is."""

    signs_url: ClassVar[bool]  # whether `verify` needs the URL called (the receiver builds it only then)

    @property
    def name(self) -> str:
        """The scheme's name in `SCHEMES` and in declarations."""
        ...

    @property
    def kept_headers(self) -> tuple[str, ...]:
        """Lower-case names of the headers worth storing with the events (never signatures)."""
        ...

    def key(self, secret: SecretStr) -> bytes:
        """The HMAC key for a secret; raises ValueError when the secret is malformed."""
        ...

    def sign(
        self,
        body: bytes,
        secret: SecretStr,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        timestamp: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> dict[str, str]:
        """The headers that sign `body` (plus the id and type headers where the scheme has them)."""
        ...

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        secret: Secrets,
        *,
        now: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> None:
        """Return if any secret signed this delivery within the window; else raise WebhookError(401)."""
        ...

    def events(self, headers: Mapping[str, str], body: bytes, payload: Any) -> list[Event]:
        """The events a verified delivery carries; raises WebhookError(400) when an id is missing."""
        ...


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names in lower case (HTTP header names are case-insensitive)."""
    return {name.lower(): value for name, value in headers.items()}


def _secrets(secret: Secrets) -> list[SecretStr]:
    """One secret or several, as a list."""
    return [secret] if isinstance(secret, SecretStr) else list(secret)


def _literal_key(secret: SecretStr, empty: str) -> bytes:
    """A secret used as it is, as UTF-8 bytes; `empty` is the error when it is blank."""
    value = secret.get_secret_value()
    if not value.strip():
        raise ValueError(empty)
    return value.encode()


@functools.lru_cache(maxsize=64)
def _keyed(key: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 keyed once; copies of it sign (1.3 µs a 600-byte body here, 1.7 keying afresh)."""
    return hmac.new(key, digestmod="sha256")


def _hmac(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 digest, from a copy of the keyed HMAC.

    Not the one-shot `hmac.digest`: it releases the GIL on every call, which in the receiver
    handed the event loop's turn to the commit thread mid-request; `update` keeps the GIL for
    messages under 2 KiB.
    """
    mac = _keyed(key).copy()
    mac.update(message)
    return mac.digest()


def _refuse(reason: str) -> WebhookError:
    """The error every verification failure raises: 401, with the reason for the log only."""
    return WebhookError(401, reason)


def _header(headers: Mapping[str, str], name: str) -> str:
    """A required signature header's value; 401 when absent or empty."""
    value = headers.get(name, "").strip()
    if not value:
        raise _refuse(f"missing header {name}")
    return value


def _timestamp(value: str, now: float | None, per_second: int = 1) -> int:
    """Parse a signed timestamp (digits only) and check it lies within the window around now."""
    if not value.isascii() or not value.isdigit() or len(value) > 16:
        raise _refuse("malformed timestamp")
    stamp = int(value)
    current = time.time() if now is None else now
    if abs(stamp / per_second - current) > TOLERANCE:
        raise _refuse("timestamp outside the tolerance window")
    return stamp


def _b64decode(value: str) -> bytes:
    """Strict base64; 401 when the value is not base64."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise _refuse("signature is not base64") from error


def _hexdecode(value: str) -> bytes:
    """Hex digest to bytes; 401 when the value is not hex."""
    try:
        return bytes.fromhex(value)
    except ValueError as error:
        raise _refuse("signature is not hex") from error


def _matches(expected: Sequence[bytes], candidates: Sequence[bytes]) -> bool:
    """True if any candidate equals any expected digest, comparing every pair in constant time."""
    found = False
    for digest in expected:
        for candidate in candidates:
            found |= hmac.compare_digest(digest, candidate)
    return found


def _json_object(payload: Any) -> dict[str, Any]:
    """The payload as a JSON object; 400 otherwise."""
    if not isinstance(payload, dict):
        raise WebhookError(400, "payload is not a JSON object")
    return payload


def _identifier(value: Any, what: str) -> str:
    """A non-empty id or type of bounded length, as text; 400 otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise WebhookError(400, f"missing {what}")
    text = str(value)
    if len(text) > MAX_ID_LENGTH:
        raise WebhookError(400, f"{what} is too long")
    if not text.isprintable():  # control characters (NUL above all: PostgreSQL text refuses it)
        raise WebhookError(400, f"{what} has control characters")
    return text


@dataclass(frozen=True)
class StandardWebhooks:
    """Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64> ...`.

    The secret is `whsec_` + base64 of the key; the signed content is `id.timestamp.body`.
    Several space-separated signatures let the sender rotate its secret.
    """

    signs_url: ClassVar[bool] = False
    name: str = "standard_webhooks"
    kept_headers: tuple[str, ...] = ("webhook-id", "webhook-timestamp")
    prefix: str = "whsec_"

    def key(self, secret: SecretStr) -> bytes:
        """Base64-decode the secret after its `whsec_` prefix."""
        value = secret.get_secret_value().removeprefix(self.prefix)
        try:
            key = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError) as error:
            raise ValueError("a Standard Webhooks secret is whsec_ followed by base64") from error
        if not key:
            raise ValueError("a Standard Webhooks secret may not be empty")
        return key

    def sign(
        self,
        body: bytes,
        secret: SecretStr,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        timestamp: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> dict[str, str]:
        """Headers `webhook-id`, `webhook-timestamp` and `webhook-signature` for `body`."""
        if not event_id:
            raise ValueError("Standard Webhooks signs the event id: pass event_id")
        stamp = str(int(time.time() if timestamp is None else timestamp))
        digest = _hmac(self.key(secret), f"{event_id}.{stamp}.".encode() + body)
        return {
            "webhook-id": event_id,
            "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        secret: Secrets,
        *,
        now: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> None:
        """Check one of the `v1` signatures against one of the secrets, and the timestamp."""
        lowered = _lower(headers)
        event_id = _header(lowered, "webhook-id")
        stamp = _header(lowered, "webhook-timestamp")
        _timestamp(stamp, now)
        candidates = []
        for entry in _header(lowered, "webhook-signature").split():
            version, _, signature = entry.partition(",")
            if version == "v1":
                candidates.append(_b64decode(signature))
        message = f"{event_id}.{stamp}.".encode() + body
        expected = [_hmac(self.key(s), message) for s in _secrets(secret)]
        if not _matches(expected, candidates):
            raise _refuse("no matching signature")

    def events(self, headers: Mapping[str, str], body: bytes, payload: Any) -> list[Event]:
        """One event: id from `webhook-id`, type from the payload's `type`."""
        event_type = _identifier(_json_object(payload).get("type"), "event type")
        event_id = _identifier(_lower(headers).get("webhook-id", ""), "event id")
        return [Event(event_id, event_type, body)]


@dataclass(frozen=True)
class Stripe:
    """Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>]`, HMAC of `t.body`, literal secret."""

    signs_url: ClassVar[bool] = False
    name: str = "stripe"
    kept_headers: tuple[str, ...] = ()

    def key(self, secret: SecretStr) -> bytes:
        """The secret's UTF-8 bytes, `whsec_` prefix included (Stripe uses it literally)."""
        return _literal_key(secret, "a Stripe webhook secret may not be empty")

    def sign(
        self,
        body: bytes,
        secret: SecretStr,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        timestamp: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> dict[str, str]:
        """Header `Stripe-Signature` for `body` (the event id and type live in the body)."""
        stamp = str(int(time.time() if timestamp is None else timestamp))
        digest = _hmac(self.key(secret), stamp.encode() + b"." + body)
        return {"Stripe-Signature": f"t={stamp},v1={digest.hex()}"}

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        secret: Secrets,
        *,
        now: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> None:
        """Check one `v1` signature against one of the secrets, and the timestamp `t`."""
        stamps: list[str] = []
        candidates: list[bytes] = []
        for item in _header(_lower(headers), "stripe-signature").split(","):
            name, _, value = item.strip().partition("=")
            if name == "t":
                stamps.append(value)
            elif name == "v1":
                candidates.append(_hexdecode(value))
        if len(stamps) != 1:
            raise _refuse("Stripe-Signature needs exactly one t=")
        _timestamp(stamps[0], now)
        message = stamps[0].encode() + b"." + body
        expected = [_hmac(self.key(s), message) for s in _secrets(secret)]
        if not _matches(expected, candidates):
            raise _refuse("no matching signature")

    def events(self, headers: Mapping[str, str], body: bytes, payload: Any) -> list[Event]:
        """One event: the payload's `id` and `type`."""
        event = _json_object(payload)
        return [
            Event(
                _identifier(event.get("id"), "event id"),
                _identifier(event.get("type"), "event type"),
                body,
            )
        ]


# HubSpot signs the URI after decoding these escapes (and only these), per its v3 documentation.
_HUBSPOT_UNESCAPE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


def _hubspot_uri(url: str) -> str:
    """The URI as HubSpot signs it: the listed percent-escapes decoded (either case)."""
    for escaped, plain in _HUBSPOT_UNESCAPE.items():
        url = url.replace(escaped, plain).replace(escaped.lower(), plain)
    return url


@dataclass(frozen=True)
class HubSpot:
    """HubSpot v3: base64 HMAC of method + URI + body + timestamp (ms), with the app's secret.

    The URI is the full URL HubSpot called (scheme, host, path, query). Behind a proxy the
    receiver sees another URL, so an endpoint can declare its public URL.
    A delivery is a JSON array of up to 100 events; each becomes its own inbox row.
    """

    signs_url: ClassVar[bool] = True
    name: str = "hubspot_v3"
    kept_headers: tuple[str, ...] = ("x-hubspot-request-timestamp",)

    def key(self, secret: SecretStr) -> bytes:
        """The app's client secret as UTF-8 bytes."""
        return _literal_key(secret, "a HubSpot client secret may not be empty")

    def _message(self, method: str, url: str, body: bytes, stamp: str) -> bytes:
        """The signed content."""
        return method.upper().encode() + _hubspot_uri(url).encode() + body + stamp.encode()

    def sign(
        self,
        body: bytes,
        secret: SecretStr,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        timestamp: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> dict[str, str]:
        """Headers `X-HubSpot-Signature-v3` and `X-HubSpot-Request-Timestamp` (ms) for `body`."""
        if not url:
            raise ValueError("HubSpot v3 signs the full URL: pass url")
        stamp = str(int((time.time() if timestamp is None else timestamp) * 1000))
        digest = _hmac(self.key(secret), self._message(method, url, body, stamp))
        return {
            "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
            "X-HubSpot-Signature-Version": "v3",
            "X-HubSpot-Request-Timestamp": stamp,
        }

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        secret: Secrets,
        *,
        now: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> None:
        """Check the v3 signature against one of the secrets, and the millisecond timestamp."""
        lowered = _lower(headers)
        candidate = _b64decode(_header(lowered, "x-hubspot-signature-v3"))
        stamp = _header(lowered, "x-hubspot-request-timestamp")
        _timestamp(stamp, now, per_second=1000)
        message = self._message(method, url, body, stamp)
        expected = [_hmac(self.key(s), message) for s in _secrets(secret)]
        if not _matches(expected, [candidate]):
            raise _refuse("no matching signature")

    def events(self, headers: Mapping[str, str], body: bytes, payload: Any) -> list[Event]:
        """One event per array element (or the one object): `eventId` and `subscriptionType`."""
        items = payload if isinstance(payload, list) else [payload]
        if not items:
            raise WebhookError(400, "empty event array")
        events = []
        for item in items:
            event = _json_object(item)
            events.append(
                Event(
                    _identifier(event.get("eventId"), "event id"),
                    _identifier(event.get("subscriptionType"), "event type"),
                    json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode(),
                )
            )
        return events


@dataclass(frozen=True)
class Shopify:
    """Shopify: `X-Shopify-Hmac-Sha256`, base64 HMAC of the body; no signed timestamp.

    With no timestamp there is no replay window: only the inbox's memory of
    `X-Shopify-Webhook-Id` stops a replay, so keep processed rows long enough (see Inbox.purge).
    """

    signs_url: ClassVar[bool] = False
    name: str = "shopify"
    kept_headers: tuple[str, ...] = (
        "x-shopify-webhook-id",
        "x-shopify-topic",
        "x-shopify-shop-domain",
        "x-shopify-api-version",
        "x-shopify-triggered-at",
        "x-shopify-event-id",
    )

    def key(self, secret: SecretStr) -> bytes:
        """The app's client secret as UTF-8 bytes."""
        return _literal_key(secret, "a Shopify secret may not be empty")

    def sign(
        self,
        body: bytes,
        secret: SecretStr,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        timestamp: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> dict[str, str]:
        """Header `X-Shopify-Hmac-Sha256`, plus `X-Shopify-Webhook-Id` and `-Topic` when given."""
        headers = {"X-Shopify-Hmac-Sha256": base64.b64encode(_hmac(self.key(secret), body)).decode()}
        if event_id:
            headers["X-Shopify-Webhook-Id"] = event_id
        if event_type:
            headers["X-Shopify-Topic"] = event_type
        return headers

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        secret: Secrets,
        *,
        now: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> None:
        """Check the body's HMAC against one of the secrets."""
        candidate = _b64decode(_header(_lower(headers), "x-shopify-hmac-sha256"))
        expected = [_hmac(self.key(s), body) for s in _secrets(secret)]
        if not _matches(expected, [candidate]):
            raise _refuse("no matching signature")

    def events(self, headers: Mapping[str, str], body: bytes, payload: Any) -> list[Event]:
        """One event: `X-Shopify-Webhook-Id` and `X-Shopify-Topic`."""
        lowered = _lower(headers)
        return [
            Event(
                _identifier(lowered.get("x-shopify-webhook-id", ""), "event id"),
                _identifier(lowered.get("x-shopify-topic", ""), "event type"),
                body,
            )
        ]


@dataclass(frozen=True)
class GenericHmac:
    """A hex HMAC-SHA256 of the body in a configurable header (optionally prefixed, e.g. `sha256=`).

    The event id comes from `id_header`; the type from `type_header`, else the payload's `type`.
    No signed timestamp, so (as with Shopify) only the inbox's memory stops a replay.
    """

    signs_url: ClassVar[bool] = False
    name: str = "hmac"
    header: str = "X-Signature"
    prefix: str = ""
    id_header: str = "X-Event-Id"
    type_header: str = "X-Event-Type"

    @property
    def kept_headers(self) -> tuple[str, ...]:
        """The id and type headers."""
        return (self.id_header.lower(), self.type_header.lower())

    def key(self, secret: SecretStr) -> bytes:
        """The shared secret as UTF-8 bytes."""
        return _literal_key(secret, "an HMAC secret may not be empty")

    def sign(
        self,
        body: bytes,
        secret: SecretStr,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
        timestamp: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> dict[str, str]:
        """The signature header, plus the id and type headers when given."""
        headers = {self.header: self.prefix + _hmac(self.key(secret), body).hex()}
        if event_id:
            headers[self.id_header] = event_id
        if event_type:
            headers[self.type_header] = event_type
        return headers

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        secret: Secrets,
        *,
        now: float | None = None,
        method: str = "POST",
        url: str = "",
    ) -> None:
        """Check the body's HMAC against one of the secrets."""
        value = _header(_lower(headers), self.header.lower())
        if not value.startswith(self.prefix):
            raise _refuse("signature lacks its prefix")
        candidate = _hexdecode(value.removeprefix(self.prefix))
        expected = [_hmac(self.key(s), body) for s in _secrets(secret)]
        if not _matches(expected, [candidate]):
            raise _refuse("no matching signature")

    def events(self, headers: Mapping[str, str], body: bytes, payload: Any) -> list[Event]:
        """One event: id from `id_header`; type from `type_header`, else the payload's `type`."""
        lowered = _lower(headers)
        event_type = lowered.get(self.type_header.lower())
        if not event_type and isinstance(payload, dict):
            event_type = payload.get("type")
        return [
            Event(
                _identifier(lowered.get(self.id_header.lower(), ""), "event id"),
                _identifier(event_type or "", "event type"),
                body,
            )
        ]


SCHEMES: Mapping[str, Scheme] = {
    scheme.name: scheme for scheme in (StandardWebhooks(), Stripe(), HubSpot(), Shopify(), GenericHmac())
}


def kept_headers(scheme: Scheme, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of a delivery worth storing with its events (never the signatures)."""
    lowered = _lower(headers)
    return {name: lowered[name] for name in scheme.kept_headers if name in lowered}
