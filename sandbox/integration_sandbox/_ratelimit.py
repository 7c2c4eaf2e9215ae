"""A vendor's own rate limit (not a fault): N requests per window, then 429 the vendor's way."""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

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


class Simultaneous:
    """ASGI middleware: Mailchimp's limit of `limit` simultaneous connections per user (0: none),
    counted from a request's arrival to its answer's end; one more is answered 429 with Mailchimp's
    problem body (`error_body`) and reaches nothing. Mailchimp sends no rate-limit headers nor
    Retry-After."""

    def __init__(self, app: ASGIApp, limit: int, error_body: Callable[[int, str], dict[str, Any]]):
        self.app, self.limit, self.error_body = app, limit, error_body
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            body = json.dumps(self.error_body(429, f"You have exceeded the limit of {self.limit} simultaneous "
                                                   "connections.")).encode()
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/problem+json; charset=utf-8"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _hubspot_429(send: Send, policy: str, headers: list[tuple[bytes, bytes]]) -> None:
    """HubSpot's 429: its documented body naming the limit hit (`category` too, which its spec's Error
    requires), no Retry-After."""
    body = json.dumps({"status": "error", "message": f"You have reached your {policy.lower()} limit.",
                       "errorType": "RATE_LIMIT", "category": "RATE_LIMITS", "correlationId": str(uuid.uuid4()),
                       "policyName": policy}).encode()
    await send({"type": "http.response.start", "status": 429, "headers": [
        (b"content-type", b"application/json;charset=utf-8"), (b"content-length", str(len(body)).encode()),
        *headers]})
    await send({"type": "http.response.body", "body": body})


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
    paths `paths` matches (0: no limit), refused beyond with HubSpot's 429 naming `policy`. With
    `headers`, HubSpot's X-HubSpot-RateLimit-Max, -Remaining and -Interval-Milliseconds on every
    answer (a client waits out the interval it is told); HubSpot's search answers carry none."""

    def __init__(self, app: ASGIApp, limit: int, window: float = 10.0, paths: str = "/",
                 policy: str = "TEN_SECONDLY_ROLLING", headers: bool = True):
        self.app, self.limit, self.window, self.policy, self.headers = app, limit, window, policy, headers
        self.paths = re.compile(paths)
        self.rolling = Rolling(limit, window)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or not self.paths.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        refused = not self.rolling.admit()
        headers = [(b"x-hubspot-ratelimit-max", str(self.limit).encode()),
                   (b"x-hubspot-ratelimit-remaining", str(self.limit - len(self.rolling.sent)).encode()),
                   (b"x-hubspot-ratelimit-interval-milliseconds", str(int(self.window * 1000)).encode())
                   ] if self.headers else []
        if refused:
            await _hubspot_429(send, self.policy, headers)
            return
        await self.app(scope, receive, _with(send, headers))


class DailyQuota:
    """ASGI middleware: HubSpot's daily limit, `limit` requests a day on the paths `paths` matches
    (0: no limit), counted from midnight in `time_zone` (the portal's), one a shorter limit refuses
    too; refused beyond with HubSpot's 429 (`DAILY`). X-HubSpot-RateLimit-Daily and -Daily-Remaining on every
    answer but those `bare` matches (HubSpot's search answers carry no rate-limit headers)."""

    def __init__(self, app: ASGIApp, limit: int, paths: str = "/", bare: str = "$^", time_zone: str = "UTC"):
        self.app, self.limit, self.zone = app, limit, ZoneInfo(time_zone)
        self.paths, self.bare = re.compile(paths), re.compile(bare)
        self.day, self.used = self._today(), 0

    def _today(self) -> date:
        return datetime.now(self.zone).date()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or not self.paths.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        if (today := self._today()) != self.day:
            self.day, self.used = today, 0
        self.used += 1
        headers = [] if self.bare.match(scope["path"]) else [
            (b"x-hubspot-ratelimit-daily", str(self.limit).encode()),
            (b"x-hubspot-ratelimit-daily-remaining", str(max(self.limit - self.used, 0)).encode())]
        if self.used > self.limit:
            await _hubspot_429(send, "DAILY", headers)
            return
        await self.app(scope, receive, _with(send, headers))
