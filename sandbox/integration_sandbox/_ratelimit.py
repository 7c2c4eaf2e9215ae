"""A vendor's own rate limit (not a fault): N requests per window, then 429 the vendor's way."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._faults import ADMIN_PREFIX


def _with(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    """`send`, adding these headers to the answer's start."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *headers]}
        await send(message)

    return sending


class RateLimit:
    """ASGI middleware: a fixed window of `limit` requests per `window` seconds, Zendesk style headers."""

    def __init__(self, app: ASGIApp, limit: int, window: float = 60.0):
        self.app, self.limit, self.window = app, limit, window
        self.started = time.monotonic()
        self.used = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        if now - self.started >= self.window:
            self.started, self.used = now, 0
        self.used += 1
        remaining = max(0, self.limit - self.used)
        headers = [(b"x-rate-limit", str(self.limit).encode()), (b"x-rate-limit-remaining", str(remaining).encode())]
        if self.used > self.limit:
            wait = max(1, math.ceil(self.window - (now - self.started)))
            body = json.dumps({"error": "APIRateLimitExceeded",
                               "description": "Number of allowed API requests per minute exceeded"}).encode()
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(wait).encode()), *headers]})
            await send({"type": "http.response.body", "body": body})
            return

        await self.app(scope, receive, _with(send, headers))


class Rolling:
    """A rolling window: at most `limit` requests admitted in any `window` seconds (0: no limit)."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self.sent: deque[float] = deque()

    def admit(self) -> bool:
        """Whether a request arriving now is within the limit (it is counted if so)."""
        now = time.monotonic()
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        if self.limit and len(self.sent) >= self.limit:
            return False
        self.sent.append(now)
        return True


class RollingRateLimit:
    """ASGI middleware: HubSpot's rolling window, `limit` requests in any `window` seconds on the
    paths under `prefixes` (0: no limit), with HubSpot's headers on every answer and its 429 body
    (HubSpot sends no Retry-After: a client waits out the interval it is told)."""

    def __init__(self, app: ASGIApp, limit: int, window: float = 10.0, prefixes: tuple[str, ...] = ("/",)):
        self.app, self.limit, self.window, self.prefixes = app, limit, window, prefixes
        self.rolling = Rolling(limit, window)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        refused = not self.rolling.admit()
        headers = [(b"x-hubspot-ratelimit-max", str(self.limit).encode()),
                   (b"x-hubspot-ratelimit-remaining", str(self.limit - len(self.rolling.sent)).encode()),
                   (b"x-hubspot-ratelimit-interval-milliseconds", str(int(self.window * 1000)).encode())]
        if refused:
            body = json.dumps({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                               "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                               "policyName": "TEN_SECONDLY_ROLLING"}).encode()
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json;charset=utf-8"), (b"content-length", str(len(body)).encode()),
                *headers]})
            await send({"type": "http.response.body", "body": body})
            return

        await self.app(scope, receive, _with(send, headers))
