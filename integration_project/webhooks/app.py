"""The webhook receiver: an ASGI app that verifies each delivery and commits it before the 2xx.

    POST /webhooks/<system>   404 unknown system, 415 not JSON, 413 too large, 401 bad signature
                              (no detail), 400 not UTF-8 / not strict JSON / no event id,
                              503 + Retry-After when the inbox cannot commit within
                              `commit_timeout`, 200 stored or already stored (a repeat is
                              acknowledged, not stored)
    GET  /healthz             200

Any other path (a trailing slash too) is a plain 404: no redirect. Concurrent deliveries share
commits (see group_commit). Anything that goes wrong while reading or verifying a request is a
4xx, never a 500. Each refusal is logged at WARNING with the system, the status, the reason and
a request id (also sent back as X-Request-Id); never a secret, a header value or the body.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.datastructures import URL

from integration_project.errors import WebhookError
from integration_project.webhooks.endpoints import Endpoint
from integration_project.webhooks.group_commit import GroupCommitter
from integration_project.webhooks.inbox import Inbox
from integration_project.webhooks.runs import RunStarter
from integration_project.webhooks.signatures import Event, kept_headers

DEFAULT_MAX_BODY = 1024 * 1024  # bytes
RETRY_AFTER = "5"  # seconds a sender told 503 should wait
PREFIX = "/webhooks/"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceiverLimits:
    """What one client may take of the receiver; `integrations webhooks serve` has an option for each.

    The defaults fit webhook senders (a few KiB of headers, a body under 1 MiB, sent at once) and
    refuse what only an attacker or a broken client does.
    """

    max_header_bytes: int = 16 * 1024  # request line + headers; more is 431
    max_body: int = DEFAULT_MAX_BODY  # bytes; more is 413
    read_timeout: float = 10.0  # seconds from connecting (or a request's first byte) to its last; then 408
    keep_alive_timeout: float = 5.0  # seconds an idle kept-alive connection stays open
    max_connections_per_client: int = 64  # open connections per client address; more are closed at once
    max_connections: int = 1000  # open connections or requests in progress overall; more are 503
    commit_timeout: float = 2.0  # seconds a delivery waits for the inbox's commit; then 503 + Retry-After


def request_id() -> str:
    """A short random id tying a refusal's log line to the answer the sender got."""
    return secrets.token_hex(6)


_JSON = (b"content-type", b"application/json")
_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_STORED_ONE = b'{"stored":1,"duplicates":0}'  # the answer to almost every delivery, built once


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Send a whole response: `headers` (content type included) plus the body's length."""
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, system: str, status: int, reason: str, cause: str = "") -> None:
    """Log the refusal at WARNING (with `cause`, for the log only) and answer it in short JSON;
    a 401 says nothing beyond its status."""
    rid = request_id()
    logger.warning("webhook refused: system=%s status=%d reason=%s%s request_id=%s",
                   system[:64], status, reason, f" ({cause})" if cause else "", rid)
    message = HTTPStatus(status).phrase if status == 401 else reason
    headers = [_JSON, (b"x-request-id", rid.encode())]
    if status == 503:
        headers.append((b"retry-after", RETRY_AFTER.encode()))
    elif status == 413:  # stop reading the rest of a body we will not take
        headers.append((b"connection", b"close"))
    body = json.dumps({"error": message}, ensure_ascii=False, separators=(",", ":")).encode()
    await _answer(send, status, body, headers)


def _finite(text: str) -> float:
    """A JSON number as a float, refusing one too large to be finite (1e999999)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _not_json(name: str) -> None:
    """NaN, Infinity and -Infinity are not JSON, whatever Python's json module accepts."""
    raise ValueError(f"{name} is not JSON")


_STRICT_JSON = json.JSONDecoder(parse_float=_finite, parse_constant=_not_json)


def _is_json(content_type: str) -> bool:
    """True for application/json and application/<anything>+json, whatever the parameters."""
    if content_type == "application/json":
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


class _Disconnected(Exception):
    """The client went away before its body arrived."""


async def _read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The body, refusing (413) as soon as the declared or the actual size passes `limit`."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise WebhookError(400, "malformed Content-Length")
        if int(declared) > limit:
            raise WebhookError(413, f"body larger than {limit} bytes")
    message = await receive()
    if message["type"] != "http.request":
        raise _Disconnected
    body = message.get("body", b"")
    if not message.get("more_body", False):  # the whole body in one message: the usual case
        if len(body) > limit:  # a Content-Length that lied
            raise WebhookError(413, f"body larger than {limit} bytes")
        return body
    chunks = bytearray(body)
    while True:
        if len(chunks) > limit:  # a chunked body, or a Content-Length that lied
            raise WebhookError(413, f"body larger than {limit} bytes")
        if not message.get("more_body", False):
            return bytes(chunks)
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunks += message.get("body", b"")


def _url(scope: Scope, endpoint: Endpoint) -> str:
    """The URL the sender signed: the declared public one (plus the query), else the one called.

    Empty for schemes that do not sign it: building the URL costs ~15 % of verifying.
    """
    if not endpoint.scheme.signs_url:
        return ""
    url = URL(scope=scope)
    if endpoint.public_url is None:
        return str(url)
    return endpoint.public_url + (f"?{url.query}" if url.query else "")


def _verified_events(scope: Scope, headers: Mapping[str, str], endpoint: Endpoint, body: bytes) -> list[Event]:
    """Verify the signature, then decode and parse the body into the scheme's events."""
    scheme = endpoint.scheme
    scheme.verify(headers, body, endpoint.secrets, method=scope["method"], url=_url(scope, endpoint))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise WebhookError(400, "body is not UTF-8") from error
    try:
        payload = _STRICT_JSON.decode(text)
    except ValueError as error:  # also NaN, Infinity and numbers too large for a float
        raise WebhookError(400, "body is not valid JSON") from error
    return scheme.events(headers, body, payload)


class Receiver:
    """The receiver as a plain ASGI callable: no Request, Response or router objects per request.

    Built by `create_receiver`. Routing is two comparisons; the request's headers become one dict
    (lower-case names, the first of a repeated header kept, as Starlette's `Headers.get` does).
    """

    def __init__(self, endpoints: Mapping[str, Endpoint], inbox: Inbox, limits: ReceiverLimits,
                 runs: RunStarter | None = None) -> None:
        self._systems = dict(endpoints)
        self._runs = runs
        self._committer = GroupCommitter(inbox, commit_timeout=limits.commit_timeout)
        self._max_body = limits.max_body
        self._commit_timeout = limits.commit_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection: a delivery, the health check, a plain 404/405, or the lifespan."""
        kind = scope["type"]
        if kind == "http":
            path, method = scope["path"], scope["method"]
            if path.startswith(PREFIX) and "/" not in path[len(PREFIX):] and len(path) > len(PREFIX):
                if method == "POST":
                    await self._deliver(path[len(PREFIX):], scope, receive, send)
                else:
                    await _answer(send, 405, b"Method Not Allowed", [_TEXT, (b"allow", b"POST")])
            elif path == "/healthz":
                if method in ("GET", "HEAD"):
                    await _answer(send, 200, b'{"status":"ok"}', [_JSON])
                else:
                    await _answer(send, 405, b"Method Not Allowed", [_TEXT, (b"allow", b"GET, HEAD")])
            else:
                await _answer(send, 404, b"Not Found", [_TEXT])
        elif kind == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            if self._runs is not None:
                await self._runs.aclose()
            await send({"type": "lifespan.shutdown.complete"})

    async def _deliver(self, system: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Verify one delivery and commit its events before answering 200."""
        endpoint = self._systems.get(system)
        if endpoint is None:
            return await _refuse(send, repr(system), 404, "unknown system")
        try:
            headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])}
            if not _is_json(headers.get("content-type", "")):
                raise WebhookError(415, "content type must be application/json")
            body = await _read_body(receive, headers, self._max_body)
            events = _verified_events(scope, headers, endpoint, body)
        except WebhookError as error:
            return await _refuse(send, system, error.status, str(error))
        except _Disconnected:
            return await _refuse(send, system, 400, "client disconnected")
        except Exception as error:  # noqa: BLE001 - whatever breaks on a hostile request is the request's fault
            return await _refuse(send, system, 400, "malformed request", type(error).__name__)
        try:
            stored = await self._committer.add(system, events, kept_headers(endpoint.scheme, headers))
        except TimeoutError:  # the sender retries later; the delivery may still be committed: a repeat then
            return await _refuse(send, system, 503, "inbox unavailable", f"no commit within {self._commit_timeout:g} s")
        except Exception as error:  # noqa: BLE001 - the sender must retry: say 503, never 2xx
            return await _refuse(send, system, 503, "inbox unavailable", type(error).__name__)
        if self._runs is not None and stored:
            self._runs.stored(system, {e.event_type for e in events})
        if len(stored) == 1 and len(events) == 1:
            body = _STORED_ONE
        else:
            body = b'{"stored":%d,"duplicates":%d}' % (len(stored), len(events) - len(stored))
        await _answer(send, 200, body, [_JSON])


def create_receiver(
    endpoints: Mapping[str, Endpoint],
    inbox: Inbox,
    limits: ReceiverLimits = ReceiverLimits(),
    runs: RunStarter | None = None,
) -> Receiver:
    """The receiver app for these endpoints (system name -> Endpoint), storing into `inbox`;
    with `runs`, each stored event starts its flows' runs at once (see webhooks.runs).

    A plain ASGI callable, not a Starlette app or Router: building a Request, its Headers and a
    JSONResponse, and matching routes, cost more per request than verifying the signature
    (docs/performance.md). Unknown paths are a plain 404 (no trailing-slash redirect, whose
    Location would come from the client's Host header), other methods a plain 405. The app
    enforces the body size and the commit timeout; `server.receiver_config` the limits only the
    server can see.
    """
    return Receiver(endpoints, inbox, limits, runs)
