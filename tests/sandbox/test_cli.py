"""`integrations sandbox ...`: clear one-line messages and meaningful exit codes, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from integration_project.cli import main
from integration_sandbox.landscape import sandbox_env
from integration_project.model import load_landscape
from integration_sandbox import running
from integration_sandbox.testing import free_port_sandbox

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


BIN = Path(sys.executable).parent
MISSING_CRM_TOKEN = ('error: CRM_TOKEN is not set: the landscape reads a credential from it '
                     '(for the sandbox\'s: eval "$(integrations sandbox env)")\n')


def _declared_env() -> set[str]:
    """Every environment variable the example landscape's declarations read."""
    names = set()
    for system in load_landscape("definitions").systems.values():
        for api in [system.api, *(b.api for b in system.bindings)]:
            if api:
                names |= {n for n in (api.base_url_env, *api.auth.env_names()) if n}
        if system.webhook:
            names.add(system.webhook.secret_env)
    return names


def test_sandbox_env_evals_in_bash_and_a_missing_credential_is_one_line(tmp_path: Path) -> None:
    """Without the variables, assess names the missing one (exit 2, no traceback); after
    `eval "$(integrations sandbox env)"` the same command works, with a token that needs quoting."""
    token = "crm tok'en $HOME \"x\""
    env = {k: v for k, v in os.environ.items() if k not in _declared_env()}
    env |= {"INTEGRATIONS_DATA_DIR": str(tmp_path / "data"), "INTEGRATIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}"}
    folder = tmp_path / "sandbox"
    with free_port_sandbox(folder, ["crm"], size=30, tokens={"crm": token}) as sb:
        missing = subprocess.run([str(BIN / "integrations"), "assess", "crm/customer"], env=env,
                                 capture_output=True, text=True, timeout=300)
        assert (missing.returncode, missing.stdout, missing.stderr) == (2, "", MISSING_CRM_TOKEN)

        code, out = _run("env", "--data-dir", str(folder), "--json")
        assert code == 0 and json.loads(out) == sandbox_env(load_landscape("definitions"), sb)
        assert json.loads(out)["CRM_TOKEN"] == token and json.loads(out)["CRM_BASE_URL"] == sb.url("crm")
        script = f'eval "$({BIN / "integrations"} sandbox env --data-dir {folder})" && ' \
                 f'printf %s "$CRM_TOKEN" > {tmp_path / "token"} && {BIN / "integrations"} assess crm/customer --json'
        done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "token").read_text() == token
        assert json.loads(done.stdout)["records"] == sb.seed_report("crm")["counts"]["contacts"]
    code, out = _run("env", "--data-dir", str(folder))
    assert code == 3 and out == f"error: no sandbox is running from {folder.resolve()}\n"
