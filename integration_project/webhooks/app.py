"""The webhook receiver: an ASGI app that verifies each delivery and commits it before the 2xx.

    POST /webhooks/<system>   404 unknown system, 415 not JSON, 413 too large, 401 bad signature
                              (no detail), 400 not UTF-8 / not JSON / no event id, 503 inbox down,
                              200 stored or already stored (a repeat is acknowledged, not stored)
    GET  /healthz             200

Concurrent deliveries share commits (see group_commit). Anything that goes wrong while reading
or verifying a request is a 4xx, never a 500. Logs name the system, the status and the reason;
never a secret, a header value or the body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http import HTTPStatus

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from integration_project.errors import WebhookError
from integration_project.webhooks.endpoints import Endpoint
from integration_project.webhooks.group_commit import GroupCommitter
from integration_project.webhooks.inbox import Inbox
from integration_project.webhooks.signatures import Event, kept_headers

DEFAULT_MAX_BODY = 1024 * 1024  # bytes

logger = logging.getLogger(__name__)


def _refusal(status: int, detail: str = "") -> Response:
    """A short JSON refusal; a 401 says nothing beyond its status."""
    message = HTTPStatus(status).phrase if status == 401 or not detail else detail
    return JSONResponse({"error": message}, status_code=status)


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
        payload = json.loads(text)
    except ValueError as error:
        raise WebhookError(400, "body is not valid JSON") from error
    return scheme.events(request.headers, body, payload)


def create_receiver(
    endpoints: Mapping[str, Endpoint],
    inbox: Inbox,
    max_body: int = DEFAULT_MAX_BODY,
) -> Router:
    """The receiver app for these endpoints (system name -> Endpoint), storing into `inbox`.

    A bare Router, not a Starlette app: every error is answered by `receive` itself, so the
    error-page and exception middlewares only cost time (~10 % of the server's CPU per request).
    Unknown paths are a plain 404, other methods a plain 405.
    """
    systems = dict(endpoints)
    committer = GroupCommitter(inbox)

    async def receive(request: Request) -> Response:
        """Verify one delivery and commit its events before answering 200."""
        system = request.path_params["system"]
        endpoint = systems.get(system)
        if endpoint is None:
            logger.info("webhook refused: unknown system %r", system[:64])
            return _refusal(404, "unknown system")
        try:
            if not _is_json(request.headers.get("content-type", "")):
                raise WebhookError(415, "content type must be application/json")
            body = await _read_body(request, max_body)
            events = _verified_events(request, endpoint, body)
        except WebhookError as error:
            logger.info("webhook refused: system=%s status=%d reason=%s", system, error.status, error)
            return _refusal(error.status, str(error))
        except ClientDisconnect:
            logger.info("webhook refused: system=%s client disconnected", system)
            return _refusal(400, "client disconnected")
        except Exception as error:  # noqa: BLE001 - whatever breaks on a hostile request is the request's fault
            logger.warning("webhook refused: system=%s status=400 unexpected %s", system, type(error).__name__)
            return _refusal(400, "malformed request")
        try:
            stored = await committer.add(system, events, kept_headers(endpoint.scheme, request.headers))
        except Exception as error:  # noqa: BLE001 - the sender must retry: say 503, never 2xx
            logger.error("webhook inbox unavailable: system=%s %s", system, type(error).__name__)
            return _refusal(503, "inbox unavailable")
        logger.debug("webhook stored: system=%s stored=%d repeats=%d", system, len(stored), len(events) - len(stored))
        return JSONResponse({"stored": len(stored), "duplicates": len(events) - len(stored)})

    async def healthz(request: Request) -> Response:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    return Router(
        routes=[
            Route("/webhooks/{system}", receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
