"""The one HTTP seam, with httpx.MockTransport standing in for the vendor: Retry-After, creates that
are looked up before a resend, retried updates, the request budget and deprecation headers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from integration_project.connectors import HttpConnector, Ours
from integration_project.connectors import http as seam
from integration_project.connectors.budget import Budget
from integration_project.connectors.http import VendorClient
from integration_project.connectors.shopify import Shopify
from integration_project.connectors.stripe import Stripe, form
from integration_project.errors import PermanentError, TransientError
from integration_project.model import Api, Auth
from integration_project.model.mapping import get_path

Handler = Callable[[httpx.Request], httpx.Response]
PUBLIC = {"api.vendor.test": ["93.184.215.14"], "shop.vendor.test": ["93.184.215.15"]}


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names resolve from PUBLIC only: no test here asks a real DNS server anything."""
    def resolve(host: str) -> list[str]:
        if host not in PUBLIC:
            raise OSError(f"{host} is not in the test's DNS")
        return PUBLIC[host]

    monkeypatch.setattr(seam, "resolve", resolve)
    monkeypatch.delenv(seam.ALLOW_PRIVATE_ENV, raising=False)
    monkeypatch.setenv("VENDOR_TOKEN", "s3cret")


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The waits the seam computes between attempts, recorded instead of slept."""
    asked: list[float] = []
    compute = seam._RetryAfter.__call__

    def record(self, state) -> float:
        asked.append(compute(self, state))
        return 0.0

    monkeypatch.setattr(seam._RetryAfter, "__call__", record)
    yield asked


def api(**changes) -> Api:
    return Api(**{"connector": "stripe", "base_url": "https://api.vendor.test", "version": "2024-06-20",
                  "auth": Auth(type="bearer", token_env="VENDOR_TOKEN"), **changes})


def vendor(*answers: httpx.Response | Handler) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering requests in turn (the last answer repeats), recording each request."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        return answer(request) if callable(answer) else answer

    return httpx.MockTransport(handle), seen


def busy(retry_after: str) -> httpx.Response:
    return httpx.Response(503, headers={"Retry-After": retry_after})


OK = httpx.Response(200, json={"id": "cus_1"})


@pytest.mark.parametrize(("header", "low", "high"), [("3", 3, 3), ("2.0", 2, 2), ("0.25", 0.25, 0.25),
                                                     ("120", 30, 30)])
def test_retry_after_seconds_are_waited_fractions_too(header, low, high, waits):
    transport, seen = vendor(busy(header), OK)
    with VendorClient(api(), transport=transport) as client:
        assert client.request("GET", "/v1/customers/cus_1").body == {"id": "cus_1"}
        assert client.retries == 1
    assert len(seen) == 2 and low <= waits[0] <= high  # a longer wait is cut to 30 s


def test_retry_after_as_an_http_date_waits_until_then(waits):
    then = format_datetime(datetime.now(UTC) + timedelta(seconds=6), usegmt=True)
    transport, seen = vendor(busy(then), httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
                             OK)
    with VendorClient(api(), transport=transport) as client:
        client.request("GET", "/v1/customers/cus_1")
    assert len(seen) == 3
    assert 4 <= waits[0] <= 6  # second resolution, less the time the test took
    assert waits[1] == 0  # a date already past: try again at once


def test_no_retry_after_is_exponential_backoff_with_jitter(waits):
    transport, seen = vendor(httpx.Response(502), httpx.Response(502), httpx.Response(502), OK)
    with VendorClient(api(), transport=transport) as client:
        client.request("GET", "/v1/customers/cus_1")
    assert len(seen) == 4
    assert [0.2 <= waits[0] <= 0.4, 0.4 <= waits[1] <= 0.6, 0.8 <= waits[2] <= 1.0] == [True] * 3


def test_retries_stop_after_the_attempts_and_a_4xx_is_not_retried(waits):
    transport, seen = vendor(httpx.Response(500))
    with VendorClient(api(), transport=transport) as client, pytest.raises(TransientError, match="HTTP 500"):
        client.request("GET", "/v1/customers")
    assert len(seen) == seam.ATTEMPTS
    transport, seen = vendor(httpx.Response(400, json={"error": "bad"}))
    with VendorClient(api(), transport=transport) as client, pytest.raises(PermanentError, match="HTTP 400"):
        client.request("GET", "/v1/customers")
    assert len(seen) == 1


def customers(*held: dict) -> httpx.Response:
    return httpx.Response(200, json={"data": list(held), "has_more": False})


class NoKeys(HttpConnector):
    """A vendor that takes no Idempotency-Key (Stripe-shaped otherwise): a create whose answer was
    lost is looked up by our id before it is sent again, the seam's `recovery`."""

    def index(self, resource: str, id_path: str) -> dict[str, str]:
        data = self.http.request("GET", f"/v1/{resource}").body["data"]
        return {str(get_path(r, id_path)): r["id"] for r in data if get_path(r, id_path) is not None}

    def upsert(self, resource: str, external_id: str | None, payload: dict, ours: Ours | None = None) -> str:
        if external_id:
            return str(self.http.request("POST", f"/v1/{resource}/{external_id}", data=dict(form(payload))).body["id"])
        recover = self.recovery(resource, ours, lambda found: self.http.request(
            "POST", f"/v1/{resource}/{found}", data=dict(form(payload))))
        return str(self.http.request("POST", f"/v1/{resource}", data=dict(form(payload)), idempotent=False,
                                     recover=recover).body["id"])


def stripe_vendor(create: Handler, held: list[dict]) -> tuple[httpx.MockTransport, list[str]]:
    """A Stripe stand-in: creates answered by `create`, lists of `held`, updates echoed."""
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "GET":
            return customers(*held)
        if request.url.path == "/v1/customers":
            return create(request)
        return httpx.Response(200, json={"id": request.url.path.rsplit("/", 1)[1]})

    return httpx.MockTransport(handle), calls


def test_a_create_whose_answer_was_lost_is_found_and_updated_not_sent_again(waits):
    held: list[dict] = []

    def acted_then_failed(request: httpx.Request) -> httpx.Response:
        held.append({"id": "cus_9", "metadata": {"crm_id": "7"}})  # the vendor acted; its answer is lost
        return httpx.Response(502)

    transport, calls = stripe_vendor(acted_then_failed, held)
    keyless = NoKeys(api(), transport=transport)
    assert keyless.upsert("customers", None, {"name": "Ada", "metadata": {"crm_id": "7"}},
                         Ours("metadata.crm_id", "7")) == "cus_9"
    assert calls == ["POST /v1/customers", "GET /v1/customers", "POST /v1/customers/cus_9"]
    assert keyless.retries() == 1  # the engine's figure counts the create sent again


def test_a_create_not_found_after_a_failure_is_sent_again(waits):
    answers = iter([httpx.Response(503), httpx.Response(200, json={"id": "cus_2"})])
    transport, calls = stripe_vendor(lambda _: next(answers), [{"id": "cus_1", "metadata": {"crm_id": "1"}}])
    keyless = NoKeys(api(), transport=transport)
    assert keyless.upsert("customers", None, {"metadata": {"crm_id": "7"}}, Ours("metadata.crm_id", "7")) == "cus_2"
    assert calls == ["POST /v1/customers", "GET /v1/customers", "POST /v1/customers"]


def test_a_create_is_tried_and_looked_up_at_most_the_attempts(waits):
    transport, calls = stripe_vendor(lambda _: httpx.Response(500), [])
    keyless = NoKeys(api(), transport=transport)
    with pytest.raises(TransientError, match="HTTP 500"):
        keyless.upsert("customers", None, {"metadata": {"crm_id": "7"}}, Ours("metadata.crm_id", "7"))
    assert calls.count("POST /v1/customers") == seam.ATTEMPTS
    assert calls.count("GET /v1/customers") == seam.ATTEMPTS - 1  # a lookup before each resend
    assert keyless.retries() == seam.ATTEMPTS - 1


def test_a_create_without_our_id_is_sent_once(waits):
    transport, calls = stripe_vendor(lambda _: httpx.Response(502), [])
    keyless = NoKeys(api(), transport=transport)
    with pytest.raises(TransientError):
        keyless.upsert("customers", None, {"name": "Ada"})
    assert calls == ["POST /v1/customers"]


def test_an_update_is_retried_by_the_connector(waits):
    transport, seen = vendor(httpx.Response(503), httpx.Response(500), OK)
    stripe = Stripe(api(), transport=transport)
    assert stripe.upsert("customers", "cus_1", {"name": "Ada"}, Ours("metadata.crm_id", "7")) == "cus_1"
    assert [f"{r.method} {r.url.path}" for r in seen] == ["POST /v1/customers/cus_1"] * 3  # no lookup
    assert stripe.retries() == 2


def test_a_truncated_body_is_retried_even_with_a_200(waits):
    transport, seen = vendor(httpx.Response(200, content=b'{"id": "cu', headers={"content-type": "application/json"}),
                             OK)
    with VendorClient(api(), transport=transport) as client:
        assert client.request("POST", "/v1/customers/cus_1").body == {"id": "cus_1"}
    assert len(seen) == 2


def test_every_attempt_takes_a_slot_of_the_budget(waits, monkeypatch, tmp_path):
    monkeypatch.setenv("INTEGRATIONS_DATA_DIR", str(tmp_path))
    taken: list[str] = []
    monkeypatch.setattr(Budget, "acquire", lambda self: taken.append(str(self.path)) or 0.0)
    transport, seen = vendor(busy("0"), httpx.Response(502), OK)
    with VendorClient(api(requests_per_second=50), transport=transport) as client:
        client.request("GET", "/v1/customers")
    assert len(seen) == len(taken) == 3 and len(set(taken)) == 1  # one vendor, one budget
    transport, seen = vendor(OK)
    with VendorClient(api(), transport=transport) as client:  # no budget declared: nothing taken
        client.request("GET", "/v1/customers")
    assert len(taken) == 3


def test_deprecation_headers_are_remembered_per_endpoint(waits):
    sunset = "Sat, 01 Nov 2025 00:00:00 GMT"
    transport, _ = vendor(httpx.Response(200, json={"data": [], "has_more": False},
                                         headers={"Deprecation": "@1735689600", "Sunset": sunset}))
    stripe = Stripe(api(), transport=transport)
    list(stripe.pages("invoices", None))  # the newest event first (the next run's cursor), then the invoices
    said = f"Deprecation: @1735689600; Sunset: {sunset}"
    assert stripe.deprecations() == {"GET /v1/events": said, "GET /v1/invoices": said}


def test_shopify_says_deprecated_in_its_own_header(waits):
    reason = "https://shopify.dev/changelog/orders-deprecated"
    empty = {"data": {"orders": {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}}}
    transport, _ = vendor(httpx.Response(200, json=empty, headers={"X-Shopify-API-Deprecated-Reason": reason}))
    shop = Shopify(api(connector="shopify", base_url="https://shop.vendor.test", version="2026-10"),
                   transport=transport)
    list(shop.pages("orders", None))
    assert shop.deprecations() == {"POST /admin/api/2026-10/graphql.json": f"X-Shopify-API-Deprecated-Reason: {reason}"}
    transport, _ = vendor(httpx.Response(200, json={"data": [], "has_more": False},
                                         headers={"X-Shopify-API-Deprecated-Reason": reason}))
    stripe = Stripe(api(), transport=transport)
    list(stripe.pages("invoices", None))
    assert stripe.deprecations() == {}  # another vendor's header means nothing from this one


def test_a_throttled_create_is_sent_again_and_throttles_are_not_failures(waits):
    """Shopify refuses a query it throttles before running it: a create is sent again (no lookup), and
    ten throttles in a row, more than ATTEMPTS, are waited out; each wait is what the bucket needs."""
    throttled = httpx.Response(200, json={
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {"cost": {"requestedQueryCost": 10, "throttleStatus": {
            "maximumAvailable": 2000.0, "currentlyAvailable": 5.0, "restoreRate": 100.0}}}})
    made = httpx.Response(200, json={"data": {"productSet": {"product": {"id": "gid://shopify/Product/7",
                                                                          "legacyResourceId": "7"},
                                                              "userErrors": []}}})
    transport, seen = vendor(*[throttled] * 10, made)
    shop = Shopify(api(connector="shopify", base_url="https://shop.vendor.test", version="2026-10"),
                   transport=transport)
    product = {"title": "Gear", "variants": {"0": {"sku": "SKU-1", "price": "1.00"}}}
    assert shop.upsert("products", None, product) == "7"
    assert len(seen) == 11 and all(b"productSet" in r.content for r in seen)
    assert waits == [0.05] * 10
