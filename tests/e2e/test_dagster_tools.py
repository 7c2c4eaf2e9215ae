"""Dagster's own tools load the code location: dg, `dagster definitions validate`, the webserver."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from integration_project import load_landscape
from integration_project.orchestration.instance import ensure_instance
from tests.servers import dagster_webserver

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DAGSTER_HOME": str(ensure_instance(tmp_path / "dagster_home"))}


@pytest.mark.parametrize("command", [["dg", "check", "defs"], ["dagster", "definitions", "validate"]])
def test_dagster_cli_validates_the_code_location(command, tmp_path):
    done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dg_check_defs_rejects_a_bad_yaml_system(tmp_path, project_copy):
    bad = project_copy / "definitions" / "systems" / "marketing" / "defs.yaml"
    bad.write_text(bad.read_text().replace("kind: mailchimp", "kind: mailchimp\n  colour: blue"))
    done = subprocess.run([str(BIN / "dg"), "check", "defs"], cwd=project_copy,
                          env={**_env(tmp_path), "PYTHONPATH": str(project_copy)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "colour" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_dg_check_defs_prints_a_landscape_problem_without_a_stack_trace(tmp_path, project_copy):
    """A problem only the whole landscape shows (dg's schema check passes) is its one line, no stack."""
    marketing = project_copy / "definitions" / "systems" / "marketing" / "defs.yaml"
    marketing.write_text(marketing.read_text().replace("role: consumer", "role: source", 1))
    path = os.pathsep.join(filter(None, [str(project_copy), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([str(BIN / "dg"), "check", "defs"], cwd=project_copy, env={**_env(tmp_path), "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and "Stack Trace" not in output, output
    assert re.search(r"^definitions/systems/marketing/defs\.yaml:\d+: system marketing: bindings\[1\]\.role: "
                     r"customer has two sources of truth: crm \(definitions/systems/crm\.py:\d+\) and marketing",
                     output, re.M), output


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real dagster-webserver on loopback serving workspace.yaml."""
    with dagster_webserver(tmp_path_factory.mktemp("dagster_home")) as url:
        yield url


QUERY = """{ assetNodes { assetKey { path } dependencyKeys { path } groupName
  owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } } } }"""


def test_webserver_graphql_shows_the_declared_lineage(webserver):
    nodes = {}
    deadline = time.monotonic() + 60
    while not nodes and time.monotonic() < deadline:  # the code location loads after the server
        data = httpx.post(f"{webserver}/graphql", json={"query": QUERY}, timeout=30).json()
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["data"]["assetNodes"]}
        time.sleep(0.5 if not nodes else 0)
    landscape = load_landscape("definitions")
    for flow in landscape.flows():
        obj, src, dst = flow.object.name, flow.source.name, flow.consumer.name
        hub = nodes[f"hub/{obj}"]
        assert {"/".join(d["path"]) for d in hub["dependencyKeys"]} == {f"{src}/{obj}"}
        consumer = nodes[f"{dst}/{obj}"]
        assert {"/".join(d["path"]) for d in consumer["dependencyKeys"]} == {f"hub/{obj}"}
        assert consumer["groupName"] == dst
        assert {o.get("team") or o.get("email") for o in consumer["owners"]} == {
            o.removeprefix("team:") for o in flow.consumer.owners}
    assert len(nodes) == 36
    assert nodes["hub/customer"]["groupName"] == "hub"
