"""The one way a connector talks HTTP: a client for a declared API whose `request` keeps every rule
(credentials on the API's host only, no private targets, the request budget, retries, deprecations)."""

from __future__ import annotations

import base64
import ipaddress
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Generator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import quote, urljoin

import httpx
from pydantic import SecretStr
from tenacity import (RetryCallState, Retrying, retry_if_exception, retry_if_exception_type, stop_after_attempt,
                      wait_exponential_jitter)
from tenacity.wait import wait_base

from integration_project.connectors.budget import Budget, Slots
from integration_project.errors import PermanentError, StopRun, TransientError
from integration_project.model import Api
from integration_project.model.rest import Errors

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
ATTEMPTS = 8
UNSENT_PER_ATTEMPT = 8  # throttled tries allowed besides, per attempt: ATTEMPTS * this in all
MAX_RETRY_AFTER = 30.0  # seconds: a longer wait asked for is cut to this
DEPRECATION_HEADERS = ("Deprecation", "Sunset")  # RFC 9745, RFC 8594; a connector adds its vendor's
# Set by the sandbox profile (launcher.sandbox_env), where every vendor runs on loopback.
ALLOW_PRIVATE_ENV = "INTEGRATIONS_ALLOW_PRIVATE_NETWORK"
PRIVATE_SUFFIXES = (".localhost", ".local", ".internal")  # RFC 6761, RFC 6762, ICANN's .internal


class Reply(NamedTuple):
    """A vendor's answer: the response (status, headers) and its parsed JSON body (None without one)."""

    response: httpx.Response
    body: Any


def retry_after(value: str | None) -> float | None:
    """The seconds a Retry-After header asks for: delay-seconds (fractions too, `2.0`) or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when.replace(tzinfo=when.tzinfo or UTC) - datetime.now(UTC)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


class _RetryAfter(wait_base):
    """Wait what the server asked for (429/503 Retry-After), else exponential backoff with jitter."""

    def __init__(self) -> None:
        self.backoff = wait_exponential_jitter(multiplier=0.2, max=10, jitter=0.2)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER)
        return self.backoff(state)


def _log_retry(state: RetryCallState) -> None:
    log.warning("retrying after %s", state.outcome.exception() if state.outcome else None)


def retrying(**changes: Any) -> Retrying:
    """Transient failures (TransientError) tried again, up to ATTEMPTS in all, with backoff."""
    policy = {"retry": retry_if_exception_type(TransientError), "wait": _RetryAfter(),
              "stop": stop_after_attempt(ATTEMPTS), "reraise": True, "before_sleep": _log_retry}
    return Retrying(**{**policy, **changes})


def resolve(host: str) -> list[str]:
    """Every address a host name resolves to."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)})


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # a scoped IPv6 address names its interface
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_public(where: str, url: httpx.URL) -> None:
    """Refuse the request `where` when its URL's host is, or resolves to, a private, loopback or
    link-local address (every address it resolves to is checked, before any connection)."""
    host = url.raw_host.decode("ascii").lower()
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if host == "localhost" or host.endswith(PRIVATE_SUFFIXES):  # refused without asking DNS
            addresses = []
        else:
            try:
                addresses = resolve(host)
            except OSError as exc:  # as a connection would fail: worth another try
                raise TransientError(f"{where}: cannot resolve {host} ({exc})") from exc
    private = [a for a in addresses if not _public(a)]
    if private or not addresses:
        listed = f" ({', '.join(private)})" if private and private != [host] else ""
        raise PermanentError(f"{where}: refused, {host}{listed} is a private, loopback or link-local "
                             "address; an API there must be declared with allow_private_network")


def auth_headers(api: Api) -> dict[str, str]:
    """Headers carrying the credentials named by the declaration, read from the environment now."""
    auth = api.auth
    if auth.type == "bearer" and auth.token_env:
        return {"Authorization": f"Bearer {auth.secret(auth.token_env).get_secret_value()}"}
    if auth.type == "api_key" and auth.token_env and auth.location == "header":
        return {auth.header: auth.secret(auth.token_env).get_secret_value()}
    return {}


def auth_params(api: Api) -> dict[str, str]:
    """Query parameters carrying the credentials (an API key in the query), read from the environment now."""
    auth = api.auth
    if auth.type == "api_key" and auth.token_env and auth.location == "query":
        return {auth.param: auth.secret(auth.token_env).get_secret_value()}
    return {}


class ClientCredentials(httpx.Auth):
    """OAuth2 client credentials (RFC 6749 4.4): a token from the token URL, kept until shortly
    before it expires, fetched again once when the API answers 401 (revoked or rotated).

    The client authenticates with Basic auth (`client_auth="basic"`) or with its id and secret in
    the form body (`"post"`); the token goes in `Authorization: Bearer`, or bare in another `header`.
    """

    requires_response_body = True

    def __init__(self, token_url: str, client_id: SecretStr, client_secret: SecretStr,
                 check: Callable[[str, httpx.URL], None] | None = None, client_auth: str = "basic",
                 header: str = "Authorization"):
        self.token_url = token_url
        self.check = check  # the client's rule on targets, applied to the token URL too
        self.client_id, self.client_secret, self.client_auth, self.header = client_id, client_secret, client_auth, header
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()  # the engine reads ahead in a thread with the same client

    @property
    def expires(self) -> float:
        """When (monotonic seconds) the token in hand is taken as expired and fetched again."""
        return self._expires

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the token, fetching one first when there is none or it is about to expire."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._take((yield self._token_request()))
            token = self._token
        self._present(request, token)
        response = yield request
        if response.status_code == 401:
            with self._lock:
                self._take((yield self._token_request()))
                self._present(request, self._token)
            yield request

    def _present(self, request: httpx.Request, token: str | None) -> None:
        bearer = self.header.lower() == "authorization"
        request.headers[self.header] = f"Bearer {token}" if bearer else str(token)

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        headers = {"Accept": "application/json"}
        client_id, secret = self.client_id.get_secret_value(), self.client_secret.get_secret_value()
        if self.client_auth == "post":
            form |= {"client_id": client_id, "client_secret": secret}
        else:
            headers["Authorization"] = "Basic " + base64.b64encode(
                f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
        request = httpx.Request("POST", self.token_url, data=form, headers=headers)
        if self.check:
            self.check(f"token request to {request.url.path}", request.url)
        return request

    def _take(self, response: httpx.Response) -> None:
        where = f"token request to {httpx.URL(self.token_url).path}"
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"{where}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            if response.status_code == 200:  # the answer was lost on the way: ask again
                raise TransientError(f"{where}: malformed JSON body") from None
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            said = body if isinstance(body, dict) else {}
            error, description = said.get("error"), said.get("error_description")
            raise PermanentError(f"{where}: HTTP {response.status_code}" + (f" ({error})" if error else "")
                                 + (f": {str(description)[:300]}" if description else ""))
        token, lifetime = str(body["access_token"]), float(body.get("expires_in") or 3600)
        self._token, self._expires = token, time.monotonic() + max(lifetime - 30, lifetime / 2)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _classify(response: httpx.Response, rules: Errors, wait: float | None = None) -> None:
    """Raise what a status means under the vendor's rules (a stop status is checked by the caller)."""
    where = f"{response.request.method} {response.request.url.path}"
    status = response.status_code
    if status in rules.permanent:
        raise PermanentError(f"{where}: HTTP {status}: {response.text[:300]}")
    if status == 429 or status >= 500 or status in rules.transient:
        after = retry_after(response.headers.get("Retry-After"))
        raise TransientError(f"{where}: HTTP {status}", retry_after=after if after is not None else wait)
    if status >= 300:  # a redirect is never followed: it may leave the vendor's host
        raise PermanentError(f"{where}: HTTP {status}: {response.text[:300]}")


class VendorClient:
    """A declared API over HTTP; `request` is the only way a connector sends anything to it.

    Credentials (auth headers, basic auth, OAuth2 tokens) go to the API's own origin only: an
    absolute link elsewhere is refused, or followed without them where the declaration lists the
    host in `follow_hosts`. A private, loopback or link-local target is refused unless the
    declaration (or the sandbox profile, ALLOW_PRIVATE_ENV=1) allows it. Every request sent, token
    requests and retries too, takes a slot of the vendor's request budget; deprecation headers are
    remembered per endpoint, and so is an answer whose `version_header` names another version than
    the pinned one (a vendor that serves a newer one once the pinned one is out of support).
    """

    def __init__(self, api: Api, headers: dict[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None, deprecation_headers: tuple[str, ...] = (),
                 timeout: httpx.Timeout = TIMEOUT, auth: httpx.Auth | None = None,
                 version_header: str | None = None, max_in_flight: int | None = None):
        """`auth` replaces the declared credentials' usual form with a vendor's own (sent to the
        API's origin only, as every credential); `max_in_flight` is the vendor's limit of requests
        in flight when the declaration names none."""
        self.base = httpx.URL(api.url())
        self.timeout = timeout
        self.follow_hosts = frozenset(api.follow_hosts)
        self.allow_private = api.allow_private_network or os.environ.get(ALLOW_PRIVATE_ENV) == "1"
        self.credentials = auth_headers(api)
        self.credential_params = auth_params(api)
        self.rules = api.errors
        self.rate_limit = api.errors.rate_limit  # the declaration's, else the connector's (HttpConnector.rate_limit)
        self._refusals = 0  # calls in a row answered by a stop_when_repeated status
        self._resume_at = 0.0  # monotonic time before which the rate limit says wait
        self.refusal: Callable[[httpx.Response], None] | None = None  # a connector's reading of an answer >= 300
        self.auth: httpx.Auth | None = None
        a = api.auth
        if a.type == "basic" and a.username_env and a.password_env:
            self.auth = httpx.BasicAuth(a.secret(a.username_env).get_secret_value(),
                                        a.secret(a.password_env).get_secret_value())
        if a.type == "oauth2_client_credentials" and a.client_id_env and a.client_secret_env and a.token_url:
            self.auth = ClientCredentials(urljoin(str(self.base).rstrip("/") + "/", a.token_url),
                                          a.secret(a.client_id_env), a.secret(a.client_secret_env), self._check,
                                          a.client_auth, a.header)
        if auth is not None:
            self.credentials, self.credential_params, self.auth = {}, {}, auth
        budget = Budget(self.base.netloc.decode(), api.requests_per_second) if api.requests_per_second else None
        in_flight = api.max_in_flight or max_in_flight
        self._slots = Slots(self.base.netloc.decode(), in_flight) if in_flight else None
        self.deprecation_headers = DEPRECATION_HEADERS + deprecation_headers
        self.version, self.version_header = api.version, version_header
        self.deprecations: dict[str, str] = {}  # "METHOD path" -> what the vendor said
        self.retries = 0  # transient failures retried so far
        self._counting = threading.Lock()  # the engine loads from several threads with one client
        self._http = httpx.Client(
            base_url=self.base, headers=headers, timeout=timeout, follow_redirects=False, transport=transport,
            event_hooks={"request": [lambda _: budget.acquire()] if budget else [],
                         "response": [self._note_deprecation]})

    def request(self, method: str, url: str, *, ok: Collection[int] = (), empty_ok: bool = False,
                idempotent: bool = True, recover: Callable[[], Reply | None] | None = None,
                judge: Callable[[Reply], None] | None = None, **kwargs: Any) -> Reply:
        """Send a request (a path under the base URL, or an absolute link) until it is answered.

        Timeouts, connection errors, 5xx, 429 and broken JSON bodies are retried with exponential
        backoff and jitter, waiting what Retry-After asks for, up to ATTEMPTS in all; other statuses
        >= 300 raise PermanentError, except the `ok` ones, which are answers. A body is expected
        unless `empty_ok`. A request that is not `idempotent` (a create) is never sent again
        blindly: its answer may be lost after the vendor acted, so before each new attempt
        `recover` looks for what an earlier one did, and its answer (e.g. that of an update of the
        record found) is returned instead; None means nothing was done, send again. Without
        `recover`, such a request is sent once. A failure marked `unsent` (the vendor refused before
        acting) is sent again in any case, without looking. `judge` reads each answer for an error
        its status does not tell (GraphQL answers 200 to a throttled query) and raises it.
        """
        target = httpx.URL(url)
        if target.is_absolute_url and _origin(target) != _origin(self.base):
            if target.host not in self.follow_hosts:
                raise PermanentError(f"{method} {target.scheme}://{target.netloc.decode()}{target.path}: refused, "
                                     f"not the API's host {self.base.host}: credentials never leave it (a host "
                                     f"listed in the declaration's follow_hosts is followed without them)")
            kwargs["auth"] = None
        else:
            kwargs["headers"] = {**self.credentials, **kwargs.get("headers", {})}
            kwargs["auth"] = self.auth
            if self.credential_params:
                kwargs["params"] = {**dict(kwargs.get("params") or {}), **self.credential_params}
        tries, failures, unsent = 0, 0, False

        def attempt() -> Reply:
            nonlocal tries, failures, unsent
            tries += 1
            if tries > 1 and not unsent and recover is not None and (found := recover()) is not None:
                return found
            try:
                return self._once(method, target, ok, empty_ok, kwargs, judge)
            except TransientError as exc:
                unsent = exc.unsent
                failures += not unsent
                raise

        def spent(state: RetryCallState) -> bool:  # a refusal before acting (a throttle) is a wait, not a failure
            return failures >= ATTEMPTS or state.attempt_number >= ATTEMPTS * UNSENT_PER_ATTEMPT

        once = not idempotent and recover is None
        again = retry_if_exception(lambda e: isinstance(e, TransientError) and (e.unsent or not once))
        return retrying(retry=again, stop=spent, before_sleep=self._count)(attempt)

    def _once(self, method: str, url: httpx.URL, ok: Collection[int], empty_ok: bool,
              kwargs: dict[str, Any], judge: Callable[[Reply], None] | None = None) -> Reply:
        """One attempt. A truncated or malformed JSON body is a transient failure even with a 2xx:
        the vendor's answer was lost, so a write may not have happened and must not be recorded as done."""
        where = f"{method} {url.path}"
        self._check(where, url if url.is_absolute_url else self.base)
        if (pause := self._resume_at - time.monotonic()) > 0:  # the vendor said its quota is spent
            time.sleep(min(pause, MAX_RETRY_AFTER))
        try:
            if self._slots is None:
                response = self._http.request(method, url, **kwargs)
            else:
                with self._slots.held():
                    response = self._http.request(method, url, **kwargs)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise TransientError(f"{where}: {type(exc).__name__}") from exc
        wait = self._rate_limit(response)
        self._stop_if_refused(where, response.status_code)
        if response.status_code not in ok:
            if self.refusal is not None and response.status_code >= 300:  # its body may say more (which limit)
                self.refusal(response)
            _classify(response, self.rules, wait)
        if response.content and ("json" in response.headers.get("content-type", "") or not empty_ok):
            try:  # a JSON answer is taken without a JSON content type too
                reply = Reply(response, response.json())
            except ValueError as exc:
                raise TransientError(f"{where}: malformed JSON body") from exc
            if judge is not None:
                judge(reply)
            return reply
        if not empty_ok:
            raise TransientError(f"{where}: expected a JSON body")
        return Reply(response, None)

    def _rate_limit(self, response: httpx.Response) -> float | None:
        """Seconds until the vendor's quota resets when its rate-limit headers say it is spent."""
        limit = self.rate_limit
        if limit is None or response.headers.get(limit.remaining_header, "").strip() != "0":
            return None
        try:
            reset = float(response.headers.get(limit.reset_header, ""))
        except ValueError:
            return None
        seconds = max({"epoch": reset - time.time(), "milliseconds": reset / 1000}.get(limit.reset, reset), 0.0)
        with self._counting:
            self._resume_at = max(self._resume_at, time.monotonic() + min(seconds, MAX_RETRY_AFTER))
        return seconds

    def _stop_if_refused(self, where: str, status: int) -> None:
        """Stop the run (StopRun) on a status that refuses every call, not one record."""
        if status in self.rules.stop:
            raise StopRun(f"{where}: HTTP {status}: the vendor refuses our credentials; the run stops, "
                          "its records stay pending")
        with self._counting:
            self._refusals = self._refusals + 1 if status in self.rules.stop_when_repeated else 0
            refused = self._refusals >= self.rules.repeats
        if refused:
            raise StopRun(f"{where}: HTTP {status} on {self.rules.repeats} calls in a row: the vendor refuses "
                          "every call; the run stops, its records stay pending")

    def _check(self, where: str, url: httpx.URL) -> None:
        if not self.allow_private:
            check_public(where, url)

    def _count(self, state: RetryCallState) -> None:
        _log_retry(state)
        with self._counting:
            self.retries += 1

    def _note_deprecation(self, response: httpx.Response) -> None:
        said = [f"{h}: {response.headers[h]}" for h in self.deprecation_headers if h in response.headers]
        served = response.headers.get(self.version_header or "", self.version)
        if served != self.version:
            said.append(f"{self.version_header}: {served} served, not the pinned {self.version} (no longer "
                        f"supported: the vendor answered in {served} instead)")
        if said:
            where = f"{response.request.method} {response.request.url.path}"
            if where not in self.deprecations:
                log.warning("%s is deprecated by the vendor (%s)", where, "; ".join(said))
            self.deprecations[where] = "; ".join(said)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> VendorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def server_time(response: httpx.Response) -> datetime:
    """The server's clock at the response (its `Date` header), else ours; second resolution."""
    date = response.headers.get("Date")
    return parsedate_to_datetime(date) if date else datetime.now(UTC).replace(microsecond=0)
