"""Extraction reads the same records when the vendors answer 5xx, 429, resets and truncated bodies."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.connectors.conftest import drain

FAULTS = {"error_rate": 0.15, "rate_limit_rate": 0.1, "retry_after_seconds": 0, "reset_rate": 0.05,
          "malformed_rate": 0.1, "seed": 3}
SOURCES = [("shop", "orders"), ("marketing", "lists/a1b2c3d4e5/members"), ("fulfilment", "shipments"),
           ("support", "tickets")]


@pytest.fixture
def faulty(sandbox) -> Iterator[Callable[[str], None]]:
    """Turns the faults on for a system until the test ends."""
    turned: list[str] = []

    def admin(system: str) -> httpx.Client:
        token = sandbox.token(system)
        if system == "support":  # a Zendesk API token goes as Basic {email}/token
            return httpx.Client(base_url=sandbox.url(system), auth=("agent@example.com/token", token))
        auth = {"X-Shopify-Access-Token": token} if system == "shop" else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=sandbox.url(system), headers=auth)

    def on(system: str) -> None:
        with admin(system) as http:
            http.put("/_sandbox/faults", json=FAULTS).raise_for_status()
        turned.append(system)

    yield on
    for system in turned:
        with admin(system) as http:
            http.put("/_sandbox/faults", json={}).raise_for_status()


@pytest.mark.parametrize(("system", "resource"), SOURCES)
def test_faults_are_retried_and_nothing_is_lost_or_doubled(system, resource, connector, faulty, monkeypatch):
    monkeypatch.setattr("integration_project.connectors.http._RetryAfter.__call__", lambda self, state: 0.0)
    clean, _ = drain(connector(system), resource, None)
    faulty(system)
    c = connector(system)
    again, _ = drain(c, resource, None)
    key = "order_id" if system == "fulfilment" else "id"
    assert sorted(str(r[key]) for r in again) == sorted(str(r[key]) for r in clean)
    assert c.retries() > 0
