"""`integrations webhooks serve` and `status`, on the example landscape's declared webhooks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import stripe
from click.testing import CliRunner
from pydantic import SecretStr

from integration_project.cli import main
from integration_project.settings import DATABASE_URL_ENV
from integration_project.webhooks import SCHEMES, Event, Inbox

SECRETS = {
    "BILLING_WEBHOOK_SECRET": "whsec_cli_billing_secret",
    "CRM_WEBHOOK_SECRET": "crm-cli-secret",
    "SHOP_WEBHOOK_SECRET": "shop-cli-secret",
    "FULFILMENT_WEBHOOK_SECRET": "whsec_ZnVsZmlsbWVudCBrZXk=",
    "INVENTORY_WEBHOOK_SECRET": "whsec_aW52ZW50b3J5IGtleQ== whsec_b2xkIGludmVudG9yeSBrZXk=",
}


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    """Environment with a fresh hub store and every declared webhook secret."""
    return {DATABASE_URL_ENV: sqlite_url} | SECRETS


def test_status_reports_depth_and_age_per_declared_system(env: dict[str, str], sqlite_url: str) -> None:
    """Depth counts unprocessed events; every system that declares a webhook is listed."""
    inbox = Inbox(sqlite_url)
    done = inbox.add("billing", [Event("e1", "invoice.paid", b"{}")])
    inbox.add("billing", [Event("e2", "invoice.paid", b"{}"), Event("e3", "invoice.paid", b"{}")])
    inbox.mark_processed(done)
    inbox.close()
    result = CliRunner().invoke(main, ["webhooks", "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    by_system = {row["system"]: row for row in json.loads(result.output)}
    assert set(by_system) == {"billing", "crm", "fulfilment", "inventory", "shop"}
    assert by_system["billing"]["depth"] == 2 and by_system["billing"]["oldest_age_seconds"] < 60
    assert by_system["shop"] == {"system": "shop", "depth": 0, "oldest_age_seconds": None, "last_received_at": None}
    table = CliRunner().invoke(main, ["webhooks", "status"], env=env)
    assert table.exit_code == 0
    assert [line.split()[:2] for line in table.output.splitlines() if line.startswith("billing")] == [["billing", "2"]]


def test_serve_refuses_to_start_without_secrets(env: dict[str, str]) -> None:
    """A missing secret stops `serve` with the variable's name."""
    result = CliRunner().invoke(main, ["webhooks", "serve"], env=env | {"SHOP_WEBHOOK_SECRET": ""})
    assert result.exit_code == 1
    assert "webhook secrets not set: SHOP_WEBHOOK_SECRET" in result.output


def test_serve_names_a_malformed_secret_without_showing_it(env: dict[str, str]) -> None:
    """A secret that cannot be a key stops `serve`, naming the system and variable, not the value."""
    result = CliRunner().invoke(main, ["webhooks", "serve"], env=env | {"FULFILMENT_WEBHOOK_SECRET": "whsec_%%%%"})
    assert result.exit_code == 1
    assert "system fulfilment: FULFILMENT_WEBHOOK_SECRET" in result.output
    assert "%%%%" not in result.output


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`integrations webhooks serve` as a real process on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).with_name("integrations")), "webhooks", "serve", "--port", str(port)]
    log = tmp_path / "serve.log"
    process = subprocess.Popen(command, env=os.environ | env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.server
def test_serve_receives_what_the_landscape_declares(served: str, env: dict[str, str]) -> None:
    """The served receiver verifies each system with its declared scheme and secret(s); status shows the events."""
    body = json.dumps({"id": "evt_cli", "type": "invoice.paid"})
    header = stripe.WebhookSignature.generate_signature_header(body, SECRETS["BILLING_WEBHOOK_SECRET"])
    headers = {"Content-Type": "application/json", "Stripe-Signature": header}
    assert httpx.post(f"{served}/webhooks/billing", content=body, headers=headers).status_code == 200
    assert httpx.post(f"{served}/webhooks/shop", content=body, headers=headers).status_code == 401
    assert httpx.post(f"{served}/webhooks/support", content=body, headers=headers).status_code == 404
    old_key = SecretStr(SECRETS["INVENTORY_WEBHOOK_SECRET"].split()[1])  # rotation: the second secret
    stock = b'{"type": "stock.changed"}'
    signed = SCHEMES["standard_webhooks"].sign(stock, old_key, event_id="msg_stock")
    response = httpx.post(
        f"{served}/webhooks/inventory", content=stock, headers=signed | {"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    result = CliRunner().invoke(main, ["webhooks", "status", "--json"], env=env)
    depths = {row["system"]: row["depth"] for row in json.loads(result.output)}
    assert (depths["billing"], depths["inventory"], depths["shop"]) == (1, 1, 0)
