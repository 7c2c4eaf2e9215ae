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
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from integration_project.errors import WebhookError
from integration_project.webhooks.endpoints import Endpoint
from integration_project.webhooks.group_commit import GroupCommitter
from integration_project.webhooks.inbox import Inbox
from integration_project.webhooks.runs import RunStarter
from integration_project.webhooks.signatures import Event, kept_headers

DEFAULT_MAX_BODY = 1024 * 1024  # bytes
RETRY_AFTER = "5"  # seconds a sender told 503 should wait

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


def _refusal(system: str, status: int, reason: str, cause: str = "") -> Response:
    """Log the refusal at WARNING (with `cause`, for the log only) and answer it in short JSON;
    a 401 says nothing beyond its status."""
    rid = request_id()
    logger.warning("webhook refused: system=%s status=%d reason=%s%s request_id=%s",
                   system[:64], status, reason, f" ({cause})" if cause else "", rid)
    message = HTTPStatus(status).phrase if status == 401 else reason
    headers = {"x-request-id": rid}
    if status == 503:
        headers["retry-after"] = RETRY_AFTER
    elif status == 413:  # stop reading the rest of a body we will not take
        headers["connection"] = "close"
    return JSONResponse({"error": message}, status_code=status, headers=headers)


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
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as the declared or the actual size passes `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise WebhookError(400, "malformed Content-Length")
        if int(declared) > limit:
            raise WebhookError(413, f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:  # a chunked body, or a Content-Length that lied
            raise WebhookError(413, f"body larger than {limit} bytes")
    return bytes(body)


def _url(request: Request, endpoint: Endpoint) -> str:
    """The URL the sender signed: the declared public one (plus the query), else the one called.

    Empty for schemes that do not sign it: building `request.url` costs ~15 % of verifying.
    """
    if not endpoint.scheme.signs_url:
        return ""
    if endpoint.public_url is None:
        return str(request.url)
    query = request.url.query
    return endpoint.public_url + (f"?{query}" if query else "")


def _verified_events(request: Request, endpoint: Endpoint, body: bytes) -> list[Event]:
    """Verify the signature, then decode and parse the body into the scheme's events."""
    scheme = endpoint.scheme
    scheme.verify(request.headers, body, endpoint.secrets, method=request.method, url=_url(request, endpoint))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise WebhookError(400, "body is not UTF-8") from error
    try:
        payload = _STRICT_JSON.decode(text)
    except ValueError as error:  # also NaN, Infinity and numbers too large for a float
        raise WebhookError(400, "body is not valid JSON") from error
    return scheme.events(request.headers, body, payload)


def create_receiver(
    endpoints: Mapping[str, Endpoint],
    inbox: Inbox,
    limits: ReceiverLimits = ReceiverLimits(),
    runs: RunStarter | None = None,
) -> Router:
    """The receiver app for these endpoints (system name -> Endpoint), storing into `inbox`;
    with `runs`, each stored event starts its flows' runs at once (see webhooks.runs).

    A bare Router, not a Starlette app: every error is answered by `receive` itself, so the
    error-page and exception middlewares only cost time (~10 % of the server's CPU per request).
    Unknown paths are a plain 404 (no trailing-slash redirect, whose Location would come from the
    client's Host header), other methods a plain 405. The app enforces the body size and the
    commit timeout; `server.receiver_config` the limits only the server can see.
    """
    systems = dict(endpoints)
    committer = GroupCommitter(inbox, commit_timeout=limits.commit_timeout)
    max_body = limits.max_body

    async def receive(request: Request) -> Response:
        """Verify one delivery and commit its events before answering 200."""
        system = request.path_params["system"]
        endpoint = systems.get(system)
        if endpoint is None:
            return _refusal(repr(system), 404, "unknown system")
        try:
            if not _is_json(request.headers.get("content-type", "")):
                raise WebhookError(415, "content type must be application/json")
            body = await _read_body(request, max_body)
            events = _verified_events(request, endpoint, body)
        except WebhookError as error:
            return _refusal(system, error.status, str(error))
        except ClientDisconnect:
            return _refusal(system, 400, "client disconnected")
        except Exception as error:  # noqa: BLE001 - whatever breaks on a hostile request is the request's fault
            return _refusal(system, 400, "malformed request", type(error).__name__)
        try:
            stored = await committer.add(system, events, kept_headers(endpoint.scheme, request.headers))
        except TimeoutError:  # the sender retries later; the delivery may still be committed: a repeat then
            return _refusal(system, 503, "inbox unavailable", f"no commit within {limits.commit_timeout:g} s")
        except Exception as error:  # noqa: BLE001 - the sender must retry: say 503, never 2xx
            return _refusal(system, 503, "inbox unavailable", type(error).__name__)
        logger.debug("webhook stored: system=%s stored=%d repeats=%d", system, len(stored), len(events) - len(stored))
        if runs is not None and stored:
            runs.stored(system, {e.event_type for e in events})
        return JSONResponse({"stored": len(stored), "duplicates": len(events) - len(stored)})

    async def healthz(request: Request) -> Response:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        yield
        if runs is not None:
            await runs.aclose()

    return Router(
        routes=[
            Route("/webhooks/{system}", receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        redirect_slashes=False,
        lifespan=lifespan,
    )
