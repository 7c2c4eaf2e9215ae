"""`integrations sandbox ...`: clear one-line messages and meaningful exit codes, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from integration_project.cli import main
from integration_project.sandbox import running

pytestmark = pytest.mark.server


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["sandbox", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_up_status_faults_down_cycle(tmp_path: Path) -> None:
    folder = ["--data-dir", str(tmp_path)]
    code, out = _run("up", *folder, "--system", "crm,inventory", "--port", "crm=0", "--port", "inventory=0",
                     "--faults", 'inventory={"latency_ms": 5}')
    try:
        assert code == 0 and "sandbox up: 2 systems" in out
        crm_url = next(line.split()[1] for line in out.splitlines() if line.startswith("crm "))
        assert httpx.get(crm_url + "/_sandbox/health").status_code == 200
        code, out = _run("status", *folder, "--json")
        assert code == 0 and {row["system"]: row["answers"] for row in json.loads(out)} == {"crm": True, "inventory": True}
        code, out = _run("up", *folder, "--system", "crm", "--port", "crm=0")
        assert code == 1 and out.startswith("error: a sandbox already runs from") and len(out.splitlines()) == 1
        code, out = _run("faults", "inventory", *folder)
        assert code == 0 and json.loads(out)["latency_ms"] == 5
        code, out = _run("faults", "inventory", *folder, "--error-rate", "0.25", "--rename", "sku=item",
                         "--renamed-in-version", "v2")
        assert code == 0 and json.loads(out)["error_rate"] == 0.25 and json.loads(out)["latency_ms"] == 5
        assert json.loads(out)["renamed_in_version"] == "v2"
        code, out = _run("faults", "inventory", *folder, "--error-rate", "3")
        assert code == 1 and out.startswith("error: error_rate: ")
        code, out = _run("faults", "inventory", *folder, "--clear")
        assert code == 0 and json.loads(out)["error_rate"] == 0 and json.loads(out)["renamed_fields"] == {}
        code, out = _run("seed", *folder, "--system", "crm")
        assert code == 1 and "stop it before seeding" in out
        inventory = next(s for s in running(tmp_path) if s.system == "inventory")
        os.kill(inventory.pid, signal.SIGKILL)
        for _ in range(50):
            if not inventory.alive():
                break
            time.sleep(0.1)
        code, out = _run("status", *folder)
        assert code == 1 and "STOPPED (see its log)" in out and " ok" in out
    finally:
        code, out = _run("down", *folder)
    assert code == 0 and out.startswith("sandbox down: stopped")
    assert _run("status", *folder)[0] == 3
    assert _run("down", *folder)[0] == 3
    assert _run("faults", "crm", *folder)[0] == 3


def test_port_taken_and_bad_arguments(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        code, out = _run("up", "--data-dir", str(tmp_path), "--system", "crm", "--port", f"crm={port}")
    assert code == 1 and out.strip() == f"error: sandbox crm: port {port} is already in use"
    assert _run("up", "--data-dir", str(tmp_path), "--system", "nope")[0] == 2
    assert _run("up", "--data-dir", str(tmp_path), "--port", "crm=http")[0] == 2
    assert _run("up", "--data-dir", str(tmp_path), "--faults", 'crm={"error_rate": 9}')[0] == 2
    (tmp_path / "file").write_text("")
    code, out = _run("up", "--data-dir", str(tmp_path / "file" / "below"), "--system", "crm")
    assert code == 1 and out.startswith("error: cannot use ") and "Not a directory" in out


def test_seed_writes_reports_offline(tmp_path: Path) -> None:
    code, out = _run("seed", "--data-dir", str(tmp_path), "--system", "crm,billing,legacy_erp", "--size", "300",
                     "--seed", "9")
    assert code == 0 and "crm         300 contacts" in out and "billing     seeds itself" in out
    report = json.loads((tmp_path / "crm.seed-report.json").read_text())
    assert (report["seed"], report["size"]) == (9, 300)
    code, again = _run("seed", "--data-dir", str(tmp_path), "--system", "crm", "--size", "300", "--seed", "9")
    assert code == 0 and json.loads((tmp_path / "crm.seed-report.json").read_text()) == report
