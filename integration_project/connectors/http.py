"""An httpx client for a declared API: auth from the environment, timeouts, retries, no cross-host redirects."""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Generator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin

import httpx
from pydantic import SecretStr
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from integration_project.connectors.budget import Budget
from integration_project.errors import PermanentError, TransientError
from integration_project.model import Api

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
ATTEMPTS = 8


class _RetryAfter(wait_base):
    """Wait what the server asked for (429/503 Retry-After), else exponential backoff with jitter."""

    def __init__(self) -> None:
        self.backoff = wait_exponential_jitter(multiplier=0.2, max=10, jitter=0.2)

    def __call__(self, state) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, 30.0)
        return self.backoff(state)


def auth_headers(api: Api) -> dict[str, str]:
    """Headers carrying the credentials named by the declaration, read from the environment now."""
    auth = api.auth
    if auth.type == "bearer" and auth.token_env:
        return {"Authorization": f"Bearer {auth.secret(auth.token_env).get_secret_value()}"}
    if auth.type == "api_key" and auth.token_env:
        return {auth.header: auth.secret(auth.token_env).get_secret_value()}
    return {}


class ClientCredentials(httpx.Auth):
    """OAuth2 client credentials (RFC 6749 4.4): a token from the token URL, kept until shortly
    before it expires, fetched again once when the API answers 401 (revoked or rotated)."""

    requires_response_body = True

    def __init__(self, token_url: str, client_id: SecretStr, client_secret: SecretStr):
        self.token_url = token_url
        self._basic = "Basic " + base64.b64encode(
            f"{quote(client_id.get_secret_value(), safe='')}:{quote(client_secret.get_secret_value(), safe='')}"
            .encode()).decode()
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()  # the engine reads ahead in a thread with the same client

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the bearer token, fetching one first when there is none or it is about to expire."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._take((yield self._token_request()))
            token = self._token
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            with self._lock:
                self._take((yield self._token_request()))
                request.headers["Authorization"] = f"Bearer {self._token}"
            yield request

    def _token_request(self) -> httpx.Request:
        return httpx.Request("POST", self.token_url, data={"grant_type": "client_credentials"},
                             headers={"Authorization": self._basic, "Accept": "application/json"})

    def _take(self, response: httpx.Response) -> None:
        where = f"token request to {httpx.URL(self.token_url).path}"
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"{where}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            error = body.get("error") if isinstance(body, dict) else None
            raise PermanentError(f"{where}: HTTP {response.status_code}" + (f" ({error})" if error else ""))
        token, lifetime = str(body["access_token"]), float(body.get("expires_in") or 3600)
        self._token, self._expires = token, time.monotonic() + max(lifetime - 30, lifetime / 2)


class VendorClient(httpx.Client):
    """An httpx client that keeps to the vendor's request budget (every request, retries too) and
    remembers the deprecations it announced (Deprecation, Sunset)."""

    def __init__(self, budget: Budget | None = None, **kwargs: Any):
        hooks = {"request": [lambda _: budget.acquire()] if budget else [], "response": [self._note_deprecation]}
        super().__init__(event_hooks=hooks, **kwargs)
        self.deprecations: dict[str, str] = {}  # "METHOD path" -> what the vendor said
        self.retries = 0  # transient failures retried so far
        self.counting = threading.Lock()  # the engine loads from several threads with one client

    def _note_deprecation(self, response: httpx.Response) -> None:
        said = [f"{h}: {response.headers[h]}" for h in ("Deprecation", "Sunset") if h in response.headers]
        if said:
            where = f"{response.request.method} {response.request.url.path}"
            if where not in self.deprecations:
                log.warning("%s is deprecated by the vendor (%s)", where, "; ".join(said))
            self.deprecations[where] = "; ".join(said)


def client(api: Api, headers: dict[str, str] | None = None) -> VendorClient:
    """A client bound to the API's base URL; bearer, API key, basic auth or OAuth2 client
    credentials as declared."""
    auth: httpx.Auth | None = None
    a = api.auth
    if a.type == "basic" and a.username_env and a.password_env:
        auth = httpx.BasicAuth(a.secret(a.username_env).get_secret_value(), a.secret(a.password_env).get_secret_value())
    if a.type == "oauth2_client_credentials" and a.client_id_env and a.client_secret_env and a.token_url:
        auth = ClientCredentials(urljoin(api.url().rstrip("/") + "/", a.token_url),
                                 a.secret(a.client_id_env), a.secret(a.client_secret_env))
    budget = Budget(httpx.URL(api.url()).netloc.decode(), api.requests_per_second) if api.requests_per_second else None
    return VendorClient(budget, base_url=api.url(), headers={**auth_headers(api), **(headers or {})},
                        auth=auth, timeout=TIMEOUT, follow_redirects=False)


def _classify(response: httpx.Response) -> None:
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After")
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        raise TransientError(f"{response.request.method} {response.request.url.path}: "
                             f"HTTP {response.status_code}", retry_after=seconds)
    if response.status_code >= 300:  # a redirect is never followed: it may leave the vendor's host
        raise PermanentError(f"{response.request.method} {response.request.url.path}: "
                             f"HTTP {response.status_code}: {response.text[:300]}")


def _before_sleep(state) -> None:
    log.warning("retrying after %s", state.outcome.exception())
    client = state.args[0] if state.args else None
    if isinstance(client, VendorClient):
        with client.counting:
            client.retries += 1


# transient failures (TransientError) retried with backoff, Retry-After honoured: every call, and
# the writes that are safe to repeat
retry_transient = retry(retry=retry_if_exception_type(TransientError), wait=_RetryAfter(),
                        stop=stop_after_attempt(ATTEMPTS), reraise=True, before_sleep=_before_sleep)


def _send(http: httpx.Client, method: str, url: str, ok: tuple[int, ...] = (),
          **kwargs: Any) -> tuple[httpx.Response, Any]:
    """One request: the response and its parsed JSON body (None when it has none).

    A truncated or malformed JSON body is a transient failure even with a 2xx: the vendor's answer
    was lost, so the write may not have happened and must not be recorded as done.
    """
    try:
        response = http.request(method, url, **kwargs)
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise TransientError(f"{method} {url}: {type(exc).__name__}") from exc
    if response.status_code not in ok:
        _classify(response)
    if not response.content or "json" not in response.headers.get("content-type", ""):
        return response, None
    try:
        return response, response.json()
    except ValueError as exc:
        raise TransientError(f"{method} {url}: malformed JSON body") from exc


@retry_transient
def call(http: httpx.Client, method: str, url: str, ok: tuple[int, ...] = (),
         **kwargs: Any) -> httpx.Response:
    """One request with retries on timeouts, connection errors, 5xx, 429 and broken bodies;
    `ok` statuses are answers."""
    return _send(http, method, url, ok, **kwargs)[0]


def send_json(http: httpx.Client, method: str, url: str, **kwargs: Any) -> Any:
    """One request, no retry, then its JSON body: for creates, which must not be sent twice blindly."""
    response, body = _send(http, method, url, **kwargs)
    if body is not None:
        return body
    try:  # a JSON answer without a JSON content type
        return response.json()
    except ValueError as exc:
        raise TransientError(f"{method} {url}: expected a JSON body") from exc


call_json = retry_transient(send_json)
call_json.__doc__ = """`send_json` with retries: a truncated or malformed body is retried like a 5xx."""


@retry_transient
def call_read(http: httpx.Client, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, Any]:
    """`call_json` for reads whose headers matter too (Link, Date): the response and its JSON body."""
    return _send(http, method, url, **kwargs)


def server_time(response: httpx.Response) -> datetime:
    """The server's clock at the response (its `Date` header), else ours; second resolution."""
    date = response.headers.get("Date")
    return parsedate_to_datetime(date) if date else datetime.now(UTC).replace(microsecond=0)
