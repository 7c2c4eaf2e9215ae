"""Starting and stopping the sandbox: state survives restarts; clear errors when it cannot start."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from integration_sandbox import Faults, Sandbox, SandboxError, running
from integration_sandbox.testing import free_port_sandbox


@pytest.mark.server
def test_state_persists_across_restarts(tmp_path: Path) -> None:
    with free_port_sandbox(tmp_path, ["crm", "billing"]) as sb:
        headers = {"Authorization": f"Bearer {sb.token('crm')}"}
        created = httpx.post(sb.url("crm") + "/crm/v3/objects/contacts", headers=headers,
                             json={"properties": {"email": "kept@example.com"}}).json()
        billing = {"Authorization": f"Bearer {sb.token('billing')}"}
        customer = httpx.post(sb.url("billing") + "/v1/customers", headers=billing, data={"email": "kept@example.com"})
        assert {s.system for s in running(tmp_path)} == {"crm", "billing"}
    assert running(tmp_path) == []
    assert not (tmp_path / "run" / "sandbox.json").exists()
    with free_port_sandbox(tmp_path, ["crm", "billing"]) as sb:
        again = httpx.get(f"{sb.url('crm')}/crm/v3/objects/contacts/{created['id']}", headers=headers)
        kept = httpx.get(f"{sb.url('billing')}/v1/customers/{customer.json()['id']}", headers=billing)
    assert again.json()["properties"]["email"] == "kept@example.com"
    assert kept.json()["email"] == "kept@example.com"
    assert (tmp_path / "billing.pickle").exists()  # not /tmp/localstripe.pickle


@pytest.mark.server
def test_port_taken_gives_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(SandboxError) as caught:
            Sandbox(tmp_path, ["crm"], {"crm": port}).start()
    assert str(caught.value) == f"sandbox crm: port {port} is already in use"
    assert running(tmp_path) == []


@pytest.mark.server
def test_starting_twice_from_one_folder_is_refused(tmp_path: Path) -> None:
    with free_port_sandbox(tmp_path, ["crm"]) as sb:
        with pytest.raises(SandboxError, match="already runs"):
            Sandbox(tmp_path, ["crm"], {"crm": 0}).start()
        assert httpx.get(sb.url("crm") + "/_sandbox/health").json() == {"system": "crm", "status": "ok"}


def test_unknown_system_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="unknown system"):
        Sandbox(tmp_path, ["erp9000"])


@pytest.mark.server
def test_a_system_started_with_every_request_failing_still_comes_up(tmp_path: Path) -> None:
    broken = Faults(error_rate=1.0)
    with free_port_sandbox(tmp_path, ["crm", "billing"], faults={"crm": broken, "billing": broken}) as sb:
        for system, path in (("crm", "/crm/v3/objects/contacts"), ("billing", "/v1/customers")):
            response = httpx.get(sb.url(system) + path, headers={"Authorization": f"Bearer {sb.token(system)}"})
            assert response.status_code in (500, 502, 503)
