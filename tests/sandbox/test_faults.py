"""Fault injection: the advertised rates show over 2,000 plain requests; latency, timeouts, API evolution."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sandbox_clients import client

from integration_sandbox import Sandbox

pytestmark = pytest.mark.server


@pytest.fixture
def inventory(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client of the inventory whose faults are cleared again afterwards."""
    with client(sandbox, "inventory") as http:
        yield http
        http.put("/_sandbox/faults", json={}).raise_for_status()


def _outcome(http: httpx.Client) -> str:
    try:
        response = http.get("/v1/stock/SKU-000001")
    except httpx.TransportError:
        return "reset"
    if response.status_code == 429:
        return "429" if response.headers.get("retry-after") == "2" else "429 without Retry-After"
    if response.status_code >= 500:
        return "5xx"
    try:
        response.json()
    except json.JSONDecodeError:
        return "malformed"
    return "ok"


def test_rates_over_2000_requests_match_within_tolerance(inventory: httpx.Client) -> None:
    rates = {"5xx": 0.10, "429": 0.10, "reset": 0.05, "malformed": 0.05}
    inventory.put("/_sandbox/faults", json={"error_rate": 0.10, "rate_limit_rate": 0.10, "retry_after_seconds": 2,
                                            "reset_rate": 0.05, "malformed_rate": 0.05, "seed": 3}).raise_for_status()
    seen = Counter(_outcome(inventory) for _ in range(2000))
    assert set(seen) <= {*rates, "ok"}, seen
    for name, rate in rates.items():
        assert abs(seen[name] / 2000 - rate) < 0.025, (name, seen)
    assert abs(seen["ok"] / 2000 - 0.70) < 0.03


def test_with_faults_at_zero_every_request_succeeds(inventory: httpx.Client) -> None:
    assert Counter(_outcome(inventory) for _ in range(200)) == Counter({"ok": 200})


def test_latency_and_timeouts(inventory: httpx.Client) -> None:
    inventory.put("/_sandbox/faults", json={"latency_ms": 300}).raise_for_status()
    started = time.monotonic()
    assert inventory.get("/v1/stock/SKU-000001").status_code == 200
    assert time.monotonic() - started >= 0.3
    inventory.put("/_sandbox/faults", json={"timeout_rate": 1.0, "timeout_seconds": 5}).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        inventory.get("/v1/stock/SKU-000001", timeout=0.5)


def test_deprecation_sunset_and_a_renamed_field(inventory: httpx.Client) -> None:
    inventory.put("/_sandbox/faults", json={"deprecation": "@1767225600", "sunset": "Thu, 31 Dec 2026 23:59:59 GMT",
                                            "renamed_fields": {"on_hand": "quantity_on_hand"}}).raise_for_status()
    response = inventory.get("/v1/stock/SKU-000001")
    assert response.headers["deprecation"] == "@1767225600"
    assert response.headers["sunset"] == "Thu, 31 Dec 2026 23:59:59 GMT"
    assert "quantity_on_hand" in response.json() and "on_hand" not in response.json()


def test_bad_fault_settings_are_refused_and_need_the_token(sandbox: Sandbox, inventory: httpx.Client) -> None:
    assert inventory.put("/_sandbox/faults", json={"error_rate": 0.7, "rate_limit_rate": 0.7}).status_code == 400
    assert inventory.put("/_sandbox/faults", json={"volcano": 1}).status_code == 400
    assert httpx.put(sandbox.url("inventory") + "/_sandbox/faults", json={}).status_code == 401
    assert inventory.get("/_sandbox/faults").json()["error_rate"] == 0


def test_a_field_renamed_only_in_the_new_api_version(sandbox: Sandbox) -> None:
    with client(sandbox, "crm") as http:
        try:
            http.put("/_sandbox/faults", json={"renamed_fields": {"createdAt": "created"},
                                               "renamed_in_version": "2026-03"}).raise_for_status()
            new = http.get("/crm/objects/2026-03/contacts", params={"limit": 1}).json()["results"][0]
            old = http.get("/crm/v3/objects/contacts", params={"limit": 1}).json()["results"][0]
        finally:
            http.put("/_sandbox/faults", json={}).raise_for_status()
    assert "created" in new and "createdAt" not in new
    assert "createdAt" in old and "created" not in old
