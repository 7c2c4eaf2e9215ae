"""What every sandbox app shares: auth, JSON errors, health, the faults admin endpoint, webhook delivery."""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import hmac
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._config import SystemConfig
from ._faults import ADMIN_PREFIX, Faults, FaultInjector
from ._store import Store
from ._webhooks import Deliverer, Signer

Authenticate = Callable[[Request, str], bool]
ErrorBody = Callable[[int, str], dict[str, Any]]
M = TypeVar("M", bound=BaseModel)


class BadRequest(Exception):
    """Bad input from a client: answered with the vendor's error body and a 4xx status."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors  # per-field problems, for vendors whose error bodies list them


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)


async def parse_body(request: Request, model: type[M]) -> M:
    """The request body validated against a model; 400 with the reasons otherwise."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise BadRequest(400, f"invalid request body: {reasons}") from None


def bounded(value: int, what: str) -> int:
    """A client-supplied number that fits the database (0 <= value < 2**62); 400 otherwise."""
    if not 0 <= value < 2**62:
        raise BadRequest(400, f"{what} is out of range")
    return value


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; 400 otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(400, f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(400, f"{name} must be between {low} and {high}, got {value}")
    return value


def path_id(request: Request, name: str = "id") -> int:
    """A numeric id from the path; 404 for anything else (as the vendors answer)."""
    raw = request.path_params[name]
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(404, f"no object with id {raw!r}")
    return int(raw)


class _Arrivals:
    """ASGI middleware: when each request outside `/_sandbox/` arrived and what it asked for
    (method and path; the last 100,000), faulted ones and retries included, so a test measures the
    request rate, and counts the calls to an endpoint, where the vendor would."""

    def __init__(self, app: ASGIApp, times: collections.deque[tuple[float, str]]):
        self.app, self.times = app, times

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(ADMIN_PREFIX):
            self.times.append((time.time(), f"{scope['method']} {scope['path']}"))
        await self.app(scope, receive, send)


class _Auth:
    """ASGI middleware: requests outside the health check must carry the system's credentials."""

    def __init__(self, app: ASGIApp, token: str, authenticate: Authenticate, error_body: ErrorBody):
        self.app, self.token, self.authenticate, self.error_body = app, token, authenticate, error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != ADMIN_PREFIX + "health":
            if not self.authenticate(Request(scope), self.token):
                await JSONResponse(self.error_body(401, "authentication failed"), 401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def sandbox_app(
    config: SystemConfig,
    routes: Sequence[BaseRoute],
    store: Store | None,
    authenticate: Authenticate,
    error_body: ErrorBody,
    signer: Signer | None = None,
    background: Callable[[], Coroutine[Any, Any, None]] | None = None,
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """A vendor app: its routes plus auth, vendor-shaped JSON errors, `/_sandbox/` admin, faults, webhooks.

    `background` runs as a task for the app's lifetime (e.g. shipments progressing on their own).
    """
    holder: dict[str, FaultInjector] = {}
    arrivals: collections.deque[tuple[float, str]] = collections.deque(maxlen=100_000)
    if store is not None:
        # Like the vendors: no subscription (receiver URL), no events kept for later.
        store.keep_events = signer is not None and bool(config.webhook_url)

    def injector(app: ASGIApp, faults: Faults) -> FaultInjector:
        holder["faults"] = FaultInjector(app, faults)
        return holder["faults"]

    async def health(_: Request) -> Response:
        return JSONResponse({"system": config.system, "status": "ok"})

    async def faults(request: Request) -> Response:
        current = holder["faults"]
        if request.method == "PUT":
            current.set(await parse_body(request, Faults))
        return JSONResponse(current.faults.model_dump())

    async def requests(_: Request) -> Response:
        seen = list(arrivals)  # `arrived[i]` is when `asked[i]` came
        return JSONResponse({"arrived": [at for at, _ in seen], "asked": [what for _, what in seen]})

    async def bad_request(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadRequest)
        body = error_body(exc.status, exc.message)
        return JSONResponse({**body, "errors": exc.errors} if exc.errors else body, exc.status)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        deliverer = None
        if store is not None and signer is not None and config.webhook_url:
            deliverer = Deliverer(store, config.webhook_url, signer, config.webhook_duplicate_rate, config.seed)
            deliverer.start()
        task = asyncio.create_task(background()) if background is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if deliverer is not None:
                await deliverer.stop()
            if store is not None:
                store.close()

    admin = [
        Route(ADMIN_PREFIX + "health", health),
        Route(ADMIN_PREFIX + "faults", faults, methods=["GET", "PUT"]),
        Route(ADMIN_PREFIX + "requests", requests),
    ]
    app = Starlette(
        routes=[*admin, *routes],
        middleware=[
            Middleware(_Arrivals, times=arrivals),
            Middleware(injector, faults=config.faults),
            Middleware(_Auth, token=config.token, authenticate=authenticate, error_body=error_body),
            *middleware,
        ],
        exception_handlers={BadRequest: bad_request, HTTPException: http_error},
        lifespan=lifespan,
    )
    return app


def bearer(request: Request, token: str) -> bool:
    """`Authorization: Bearer <token>`."""
    return hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}")


def basic_credentials(request: Request) -> tuple[str, str]:
    """The user name and password of `Authorization: Basic` ("" and "" without one)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password


def basic_password(request: Request) -> str | None:
    """The password of `Authorization: Basic`, or None."""
    if request.headers.get("authorization", "").partition(" ")[0].lower() != "basic":
        return None
    return basic_credentials(request)[1]


def iso_utc(ms: int, millis: bool = False) -> str:
    """Epoch milliseconds as ISO 8601 UTC with `Z` (optionally with milliseconds)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms % 1000:03d}Z" if millis else "Z")


def iso_local(ms: int, tz: ZoneInfo) -> str:
    """Epoch milliseconds as ISO 8601 in a time zone, with its offset (as Shopify answers)."""
    return datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="seconds")


def parse_time(text: str, name: str) -> int:
    """An ISO 8601 date-time (a naive one is UTC) as epoch milliseconds; 400 otherwise."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(400, f"{name} must be an ISO 8601 date-time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
