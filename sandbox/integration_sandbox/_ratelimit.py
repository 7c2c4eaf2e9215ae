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
    """ASGI middleware: Zendesk's account limit, a fixed window of `limit` requests per `window`
    seconds (0: no limit). Every answer carries Zendesk's headers: `X-Rate-Limit` and
    `X-Rate-Limit-Remaining`, and the Ticketing APIs' `ratelimit-limit`, `-remaining` and `-reset`
    (whole seconds until the window resets); beyond the limit, 429 with `Retry-After` in seconds and
    the plain-text body a live account answers."""

    def __init__(self, app: ASGIApp, limit: int, window: float = 60.0):
        self.app, self.limit, self.window = app, limit, window
        self.started = time.monotonic()
        self.used = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        if now - self.started >= self.window:
            self.started, self.used = now, 0
        self.used += 1
        remaining = max(0, self.limit - self.used)
        reset = str(max(1, math.ceil(self.window - (now - self.started)))).encode()
        limit = str(self.limit).encode()
        headers = [(b"x-rate-limit", limit), (b"x-rate-limit-remaining", str(remaining).encode()),
                   (b"ratelimit-limit", limit), (b"ratelimit-remaining", str(remaining).encode()),
                   (b"ratelimit-reset", reset)]
        if self.used > self.limit:
            body = b"Number of allowed API requests per minute exceeded"
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
                (b"retry-after", reset), *headers]})
            await send({"type": "http.response.body", "body": body})
            return

        await self.app(scope, receive, _with(send, headers))


class RollingRateLimit:
    """ASGI middleware: HubSpot's rolling window, `limit` requests in any `window` seconds on the
    paths under `prefixes` (0: no limit), with HubSpot's headers on every answer and its 429 body
    (HubSpot sends no Retry-After: a client waits out the interval it is told)."""

    def __init__(self, app: ASGIApp, limit: int, window: float = 10.0, prefixes: tuple[str, ...] = ("/",)):
        self.app, self.limit, self.window, self.prefixes = app, limit, window, prefixes
        self.sent: deque[float] = deque()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        refused = len(self.sent) >= self.limit
        if not refused:
            self.sent.append(now)
        headers = [(b"x-hubspot-ratelimit-max", str(self.limit).encode()),
                   (b"x-hubspot-ratelimit-remaining", str(self.limit - len(self.sent)).encode()),
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
