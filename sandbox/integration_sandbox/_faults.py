"""Fault injection for a sandbox app: 5xx, 429, latency, timeouts, resets, malformed bodies, API evolution."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_PREFIX = "/_sandbox/"
MALFORMED_BODY = b'{"results": [{"id": "1", "properties": {"email": '


class Faults(BaseModel):
    """What goes wrong, per request: each rate is a probability; at most one fault per request."""

    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(0.0, ge=0, le=1, description="share answered 500/502/503")
    rate_limit_rate: float = Field(0.0, ge=0, le=1, description="share answered 429 with Retry-After")
    retry_after_seconds: int = Field(1, ge=0, le=3600)
    timeout_rate: float = Field(0.0, ge=0, le=1, description="share that hangs `timeout_seconds`, then 504")
    timeout_seconds: float = Field(30.0, ge=0, le=600)
    reset_rate: float = Field(0.0, ge=0, le=1, description="share whose connection closes mid-response")
    malformed_rate: float = Field(0.0, ge=0, le=1, description="share answered 200 with a truncated JSON body")
    latency_ms: int = Field(0, ge=0, le=60_000, description="added to every request")
    deprecation: str | None = Field(None, description="Deprecation header value, e.g. an HTTP date or 'true'")
    sunset: str | None = Field(None, description="Sunset header value (an HTTP date)")
    renamed_fields: dict[str, str] = Field(default_factory=dict, description="JSON keys renamed in responses")
    renamed_in_version: str | None = Field(
        None, description="rename only for requests naming this API version (in the path or an "
        "Api-Version / Stripe-Version header); None: for every request")
    seed: int | None = Field(None, description="seed for the fault dice, for reproducible runs")

    @model_validator(mode="after")
    def _rates_fit(self) -> Faults:
        total = self.error_rate + self.rate_limit_rate + self.timeout_rate + self.reset_rate + self.malformed_rate
        if total > 1:
            raise ValueError(f"the fault rates add up to {total:g}; at most 1")
        return self


def draw(faults: Faults, rng: random.Random) -> str | None:
    """Roll the dice for one request: "error", "rate_limit", "timeout", "reset", "malformed" or None."""
    dice = rng.random()
    for rate, fault in ((faults.error_rate, "error"), (faults.rate_limit_rate, "rate_limit"),
                        (faults.timeout_rate, "timeout"), (faults.reset_rate, "reset"),
                        (faults.malformed_rate, "malformed")):
        if dice < rate:
            return fault
        dice -= rate
    return None


class ConnectionDropped(Exception):
    """Raised after the response started, so the server closes the connection mid-response."""


class FaultInjector:
    """ASGI middleware applying the current `Faults` to every request outside `/_sandbox/`."""

    def __init__(self, app: ASGIApp, faults: Faults):
        self.app = app
        self.faults = faults
        self.rng = random.Random(faults.seed)

    def set(self, faults: Faults) -> None:
        """Replace the faults (live; the next request sees them)."""
        self.faults = faults
        self.rng = random.Random(faults.seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        actions = {"error": self._error, "rate_limit": self._rate_limited, "timeout": self._timeout,
                   "reset": self._reset, "malformed": self._malformed}
        fault = draw(self.faults, self.rng)
        if fault is not None:
            await actions[fault](send)
            return
        renames = renames_for(self.faults, scope["path"], dict(scope["headers"]))
        await self.app(scope, receive, self._evolve(send, renames))

    def _evolve(self, send: Send, renames: dict[str, str]) -> Send:
        f = self.faults
        if not (f.deprecation or f.sunset or renames):
            return send
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def evolved(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
                if f.deprecation:
                    headers.append((b"deprecation", f.deprecation.encode()))
                if f.sunset:
                    headers.append((b"sunset", f.sunset.encode()))
                start.update(message, headers=headers)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            content_type = dict(start["headers"]).get(b"content-type", b"")
            if renames and content_type.startswith(b"application/json") and body:
                body = json.dumps(rename_fields(json.loads(body), renames)).encode()
            start["headers"].append((b"content-length", str(len(body)).encode()))
            await send(start)
            await send({"type": "http.response.body", "body": body})

        return evolved

    async def _error(self, send: Send) -> None:
        status = self.rng.choice([500, 502, 503])
        await _json(send, status, {"error": "sandbox: injected server error"})

    async def _rate_limited(self, send: Send) -> None:
        headers = [(b"retry-after", str(self.faults.retry_after_seconds).encode())]
        await _json(send, 429, {"error": "sandbox: injected rate limit"}, headers)

    async def _timeout(self, send: Send) -> None:
        await asyncio.sleep(self.faults.timeout_seconds)
        await _json(send, 504, {"error": "sandbox: injected timeout"})

    async def _reset(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b'{"results": [', "more_body": True})
        raise ConnectionDropped

    async def _malformed(self, send: Send) -> None:
        body = MALFORMED_BODY
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def renames_for(faults: Faults, path: str, headers: Mapping[bytes, bytes] | Mapping[str, str]) -> dict[str, str]:
    """The field renames that apply to one request, given the version it asks for."""
    version = faults.renamed_in_version
    if not faults.renamed_fields or version is None:
        return faults.renamed_fields
    lowered = {(k.decode() if isinstance(k, bytes) else k).lower(): (v.decode() if isinstance(v, bytes) else v)
               for k, v in headers.items()}
    asked = {lowered.get("api-version"), lowered.get("stripe-version")}
    return faults.renamed_fields if f"/{version}/" in path or version in asked else {}


def rename_fields(value: Any, renamed: dict[str, str]) -> Any:
    """A JSON value with keys renamed at every depth (a field renamed in a new API version)."""
    if isinstance(value, dict):
        return {renamed.get(k, k): rename_fields(v, renamed) for k, v in value.items()}
    if isinstance(value, list):
        return [rename_fields(v, renamed) for v in value]
    return value


async def _json(send: Send, status: int, payload: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})
