"""README's "Add a system", done exactly as written, on a copy of the project."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.seeds import crm_parked

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Add a system", 1)[1].split("\n## ", 1)[0]


def declaration_blocks() -> dict[str, str]:
    """The code blocks that declare the new system, by the file path on their first line."""
    blocks = re.findall(r"```(?:python|yaml)\n(# (definitions/\S+)\n.*?)```", readme_section(), re.S)
    return {path: body for body, path in blocks}


def commands(after: str = "Then check it") -> list[tuple[str, str]]:
    """README's follow-up commands with the output each promises (after '#')."""
    block = readme_section().split(after, 1)[1].split("```", 2)[1]
    return [tuple(part.strip() for part in line.split("#", 1)) for line in block.strip().splitlines()]


WAREHOUSE = ["definitions/systems/warehouse.py", "definitions/systems/warehouse/defs.yaml"]
PROJECTS = "definitions/systems/projects/defs.yaml"


def test_readme_shows_both_ways_and_a_new_vendor():
    assert sorted(declaration_blocks()) == sorted([*WAREHOUSE, PROJECTS])
    assert declaration_blocks()[PROJECTS] == (ROOT / PROJECTS).read_text()  # the README shows the real file


def run(commands: list[tuple[str, str]], project: Path, env: dict[str, str]) -> None:
    """Each command as a user types it; `integrations check` must print what the README promises."""
    for command, promise in commands:
        program, *args = command.split()
        done = subprocess.run([str(BIN / program), *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        if command == "integrations check":
            assert done.stdout.strip() == promise


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/"


@pytest.fixture
def warehouse_db() -> Iterator[str]:
    """A fresh PostgreSQL database for the README's warehouse (dropped afterwards)."""
    name = f"analytics_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES + "postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    yield POSTGRES + name
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_a_new_vendor_declared_in_yaml_runs_its_flows(tmp_path, project_copy, sandbox, business_env):
    """README's project tool, written into a copy without it, checked and run against the sandbox."""
    shutil.rmtree(project_copy / "definitions" / "systems" / "projects")
    (project_copy / PROJECTS).parent.mkdir(parents=True)
    (project_copy / PROJECTS).write_text(declaration_blocks()[PROJECTS])
    (tmp_path / "home").mkdir()
    env = {**os.environ, "PYTHONPATH": str(project_copy), "DAGSTER_HOME": str(tmp_path / "home"),
           "INTEGRATIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite'}"}
    run(commands("Then run its flows"), project_copy, env)
    report = sandbox.seed_report("crm")
    expected = {str(i) for i in range(101, 101 + report["counts"]["contacts"])} - crm_parked(report)
    with httpx.Client(base_url=sandbox.url("projects"), headers={"X-Api-Key": sandbox.token("projects")}) as http:
        held, url = [], "/api/v2/clients?per_page=100"
        while url:
            response = http.get(url).raise_for_status()
            held += response.json()
            url = response.links.get("next", {}).get("url")
    assert sorted(c["reference"] for c in held) == sorted(expected)


@pytest.mark.parametrize("path", WAREHOUSE)
def test_adding_a_system_is_one_file(path, tmp_path, project_copy, sandbox, business_env, warehouse_db):
    project = project_copy
    (project / path).parent.mkdir(parents=True, exist_ok=True)
    (project / path).write_text(declaration_blocks()[path])
    env = {**os.environ, "PYTHONPATH": str(project), "DAGSTER_HOME": str(tmp_path / "home"),
           "WAREHOUSE_URL": warehouse_db, "INTEGRATIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite'}"}
    (tmp_path / "home").mkdir()
    run(commands(), project, env)
    probe = ("from definitions.definitions import defs; import dagster as dg; "
             "g = defs.resolve_asset_graph(); n = g.get(dg.AssetKey(['warehouse', 'customer'])); "
             "spec = next(s for s in defs.resolve_all_asset_specs() if s.key == n.key); "
             "print(sorted(k.to_user_string() for k in n.parent_keys), spec.group_name, spec.owners)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "['hub/customer'] warehouse ['team:data']", done.stderr
    # the run the README shows created the table and loaded every valid CRM customer once
    report = sandbox.seed_report("crm")
    expected = {str(i) for i in range(101, 101 + report["counts"]["contacts"])} - crm_parked(report)
    engine = sa.create_engine(warehouse_db)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, email FROM customers")).all()
    engine.dispose()
    assert sorted(r[0] for r in rows) == sorted(expected) and all("@" in r[1] for r in rows)
