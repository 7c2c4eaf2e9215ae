"""`integrations init`: the project it writes passes `integrations check`, `dg check defs`, its
own test and `integrations lint` as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from integration_project.cli import main

BIN = Path(sys.executable).parent


def test_init_writes_a_project_that_checks_validates_and_tests_clean(tmp_path: Path) -> None:
    # a package name of its own, so nothing but the new project can answer to it
    result = CliRunner().invoke(main, ["init", str(tmp_path / "acme"), "--package", "acme_landscape"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "acme"
    assert {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()} == {
        "pyproject.toml", "workspace.yaml", "README.md", ".gitignore", "tests/test_check.py",
        "data/signups/signups_20250101.csv", "acme_landscape/__init__.py", "acme_landscape/definitions.py",
        "acme_landscape/objects/contact/defs.yaml", "acme_landscape/systems/__init__.py",
        "acme_landscape/systems/signups/defs.yaml", "acme_landscape/systems/reporting/defs.yaml"}
    assert 'name = "acme"' in (project / "pyproject.toml").read_text()
    assert (project / "README.md").read_text().split("```")[1].strip().splitlines()[0].startswith("integrations up")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    env.pop("PYTHONPATH", None)
    for command in (["integrations", "check"], ["dg", "check", "defs"], ["pytest", "-q", "-p", "no:cacheprovider"],
                    ["integrations", "lint"]):  # lint without -m: the project's own code location
        done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=project, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        if command[1:] == ["check"]:
            assert done.stdout.strip() == "ok: 2 systems (+ the hub), 1 objects, 1 flows to consumers"
        if command[1:] == ["lint"]:
            assert done.stdout.strip().endswith("0 errors, 0 warnings; 1/2 links in use, 1 via the hub, 0 point-to-point")


@pytest.mark.parametrize("package, message", [("Acme-Landscape", "is not a Python package name"),
                                              ("acme", "exists and is not an empty folder")])
def test_init_refuses_a_bad_name_or_a_folder_in_use(package: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "used.txt").write_text("mine")
    target = tmp_path if package == "acme" else tmp_path / "new"
    result = CliRunner().invoke(main, ["init", str(target), "--package", package])
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "new").exists() and (tmp_path / "used.txt").read_text() == "mine"
