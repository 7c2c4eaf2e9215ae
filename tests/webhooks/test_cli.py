"""`integrations webhooks serve` and `status`, on the example landscape's declared webhooks."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from integration_project.cli import main
from integration_project.model import Webhook, load_landscape
from integration_project.settings import DATABASE_URL_ENV
from integration_project.webhooks import SCHEMES, Event, Inbox
from tests.servers import answers, free_port

DECLARED: dict[str, Webhook] = {
    name: system.webhook for name, system in load_landscape("definitions").systems.items() if system.webhook
}


def secrets_of(system: str) -> list[str]:
    """Two test secrets for a system (the receiver accepts either: rotation), valid for its scheme."""
    return [
        "whsec_" + base64.b64encode(f"{system} key {n}".encode()).decode()
        if DECLARED[system].scheme == "standard_webhooks"
        else f"{system}-secret-{n}"
        for n in (1, 2)
    ]


def first_with(scheme: str) -> str:
    """The first declared system using a scheme (the example landscape has one of each tested here)."""
    return next(name for name, hook in sorted(DECLARED.items()) if hook.scheme == scheme)


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    """Environment with a fresh hub store and every declared webhook secret (two each)."""
    return {DATABASE_URL_ENV: sqlite_url} | {hook.secret_env: " ".join(secrets_of(s)) for s, hook in DECLARED.items()}


def test_status_tells_backlog_from_ignored_events(env: dict[str, str], sqlite_url: str) -> None:
    """Backlog counts unprocessed events a realtime flow will process; events no flow subscribes to
    (our own writes echoed by billing, invoice events whose flows are batch) are ignored, apart."""
    inbox = Inbox(sqlite_url)
    done = inbox.add("crm", [Event("c1", "contact.creation", b"{}")])
    inbox.add("crm", [Event("c2", "contact.creation", b"{}"), Event("d1", "deal.propertyChange", b"{}"),
                      Event("x1", "contact.merge", b"{}")])
    inbox.add("billing", [Event(f"cu{n}", "customer.created", b"{}") for n in range(3)]
              + [Event("in1", "invoice.paid", b"{}")])
    inbox.mark_processed(done)
    inbox.close()
    result = CliRunner().invoke(main, ["webhooks", "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    by_system = {row["system"]: row for row in json.loads(result.output)}
    assert set(by_system) == set(DECLARED)
    crm, billing, idle = by_system["crm"], by_system["billing"], by_system["inventory"]
    assert (crm["backlog"], crm["ignored"], crm["ignored_types"]) == (2, 1, {"contact.merge": 1})
    assert 0 <= crm["oldest_backlog_age_seconds"] < 60
    assert crm["subscribed_types"] == ["contact.creation", "contact.deletion", "contact.propertyChange",
                                       "deal.propertyChange"]
    assert (billing["backlog"], billing["oldest_backlog_age_seconds"]) == (0, None)
    assert billing["ignored_types"] == {"customer.created": 3, "invoice.paid": 1} and billing["subscribed_types"] == []
    assert idle == {"system": "inventory", "backlog": 0, "oldest_backlog_age_seconds": None, "ignored": 0,
                    "ignored_types": {}, "subscribed_types": [], "last_received_at": None}
    table = CliRunner().invoke(main, ["webhooks", "status"], env=env).output.splitlines()
    rows = {line.split()[0]: line.split() for line in table[1:-1]}
    assert rows["billing"][:4] == ["billing", "0", "-", "4"] and rows["crm"][:2] == ["crm", "2"]
    assert rows["crm"][4] == "1" and rows["inventory"][1:] == ["0", "-", "0", "never"]
    assert table[-1] == ("ignored (no flow subscribes to them; never processed): "
                         "billing customer.created (3), invoice.paid (1); crm contact.merge (1)")


def test_serve_refuses_to_start_without_secrets(env: dict[str, str]) -> None:
    """A missing secret stops `serve` with the variable's name."""
    variable = DECLARED[first_with("shopify")].secret_env
    result = CliRunner().invoke(main, ["webhooks", "serve"], env=env | {variable: ""})
    assert result.exit_code == 1
    assert f"webhook secrets not set: {variable}" in result.output


def test_serve_names_a_malformed_secret_without_showing_it(env: dict[str, str]) -> None:
    """A secret that cannot be a key stops `serve`, naming the system and variable, not the value."""
    system = first_with("standard_webhooks")
    variable = DECLARED[system].secret_env
    result = CliRunner().invoke(main, ["webhooks", "serve"], env=env | {variable: "whsec_%%%%"})
    assert result.exit_code == 1
    assert f"system {system}: {variable}" in result.output
    assert "%%%%" not in result.output


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`integrations webhooks serve` as a real process on a free loopback port."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("integrations")), "webhooks", "serve", "--port", str(port)]
    log = tmp_path / "serve.log"
    process = subprocess.Popen(command, env=os.environ | env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        if not answers(f"{base_url}/healthz", process, timeout=90, interval=0.2):
            pytest.fail(f"serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.server
def test_serve_receives_what_the_landscape_declares(served: str, env: dict[str, str]) -> None:
    """Every declared system's endpoint verifies its own scheme with either of its secrets; others are 404."""
    for n, (system, hook) in enumerate(sorted(DECLARED.items())):
        body = json.dumps(
            [{"eventId": n, "subscriptionType": "t"}] if hook.scheme == "hubspot_v3" else {"id": f"e{n}", "type": "t"}
        ).encode()
        url = f"{served}/webhooks/{system}"
        secret = SecretStr(secrets_of(system)[n % 2])
        headers = SCHEMES[hook.scheme].sign(body, secret, event_id=f"e{n}", event_type="t", url=url)
        response = httpx.post(url, content=body, headers=headers | {"Content-Type": "application/json"})
        assert response.status_code == 200, (system, response.text)
        wrong = SCHEMES[hook.scheme].sign(body, SecretStr("whsec_d3Jvbmc="), event_id=f"e{n}", url=url)
        assert httpx.post(url, content=body, headers=wrong | {"Content-Type": "application/json"}).status_code == 401
    assert httpx.post(f"{served}/webhooks/undeclared", content=b"{}").status_code == 404
    result = CliRunner().invoke(main, ["webhooks", "status", "--json"], env=env)
    by_system = {row["system"]: (row["backlog"], row["ignored_types"]) for row in json.loads(result.output)}
    assert by_system == dict.fromkeys(DECLARED, (0, {"t": 1}))  # stored once each; no flow subscribes to "t"


def listening(port: int) -> int:
    """How many sockets listen on this TCP port of 127.0.0.1 (Linux /proc/net/tcp)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1] == f"0100007F:{port:04X}" and row.split()[3] == "0A")


@pytest.mark.server
def test_serve_processes_share_a_port_with_reuse_port(env: dict[str, str], tmp_path: Path) -> None:
    """Two `serve --reuse-port` processes listen on one port; with the first stopped, the second still stores."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("integrations")), "webhooks", "serve", "--port", str(port),
               "--reuse-port"]
    logs = [tmp_path / f"serve-{n}.log" for n in range(2)]
    processes = [subprocess.Popen(command, env=os.environ | env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
                 for log in logs]
    system = first_with("stripe")
    url = f"http://127.0.0.1:{port}/webhooks/{system}"

    def post(event_id: str) -> int:
        body = json.dumps({"id": event_id, "type": "t"}).encode()
        headers = SCHEMES["stripe"].sign(body, SecretStr(secrets_of(system)[0])) | {"Content-Type": "application/json"}
        with httpx.Client() as client:  # a new connection: the kernel picks a listening process
            return client.post(url, content=body, headers=headers).status_code

    try:
        deadline = time.monotonic() + 90
        while listening(port) < 2:  # both bound the port and listen on it
            for process, log in zip(processes, logs, strict=True):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        assert post("evt_a") == 200
        processes[0].terminate()
        processes[0].wait(timeout=20)
        assert [post(f"evt_b{n}") for n in range(5)] == [200] * 5  # the second process alone serves the port
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
    inbox = Inbox(env[DATABASE_URL_ENV])
    assert sorted(row.event_id for row in inbox.pending(system)) == ["evt_a", *(f"evt_b{n}" for n in range(5))]
    inbox.close()
