"""Which project a command works on: the nearest one up from the working directory, or the one
named; never the example's from outside this repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from integration_project.project import PROJECT_ENV, Project, ProjectNotFound, find

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_this_repository_is_the_example_project() -> None:
    assert find(ROOT / "definitions" / "systems") == Project(ROOT, "definitions", ROOT / "workspace.yaml")


def test_the_nearest_project_up_wins_and_its_dg_table_names_the_package(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    (tmp_path / "workspace.yaml").write_text("load_from:\n  - python_module: outer.definitions\n")
    inner = tmp_path / "shop"
    (inner / "acme" / "systems").mkdir(parents=True)
    (inner / "pyproject.toml").write_text('[project]\nname = "shop"\n\n[tool.dg.project]\nroot_module = "acme"\n')
    assert find(inner / "acme" / "systems") == Project(inner, "acme", None)
    assert find(inner / "acme").code_location == "acme.definitions"
    assert find(tmp_path) == Project(tmp_path, "outer", tmp_path / "workspace.yaml")  # workspace.yaml alone
    monkeypatch.setenv(PROJECT_ENV, str(inner))
    assert find(tmp_path).root == inner  # the named project, wherever the command runs


def test_a_pyproject_without_the_dg_table_is_not_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "library"\n')
    with pytest.raises(ProjectNotFound, match=f"no project in {tmp_path} or above it"):
        find(tmp_path)
    monkeypatch.setenv(PROJECT_ENV, str(tmp_path))
    with pytest.raises(ProjectNotFound, match=f"{tmp_path} is not a project"):
        find()


def test_a_defs_folder_outside_the_landscape_package_is_refused(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster would load its components; the landscape, read from its package, would not: say so."""
    monkeypatch.delenv(PROJECT_ENV, raising=False)
    (tmp_path / "pyproject.toml").write_text('[tool.dg.project]\nroot_module = "acme"\ndefs_module = "acme_defs"\n')
    with pytest.raises(ProjectNotFound) as refused:
        find(tmp_path)
    assert str(refused.value) == (f"{tmp_path / 'pyproject.toml'}: [tool.dg.project] defs_module 'acme_defs' is "
                                  "outside root_module 'acme': the landscape is read from its package only; "
                                  "make defs_module 'acme' or a module inside it")
    (tmp_path / "pyproject.toml").write_text('[tool.dg.project]\nroot_module = "acme"\ndefs_module = "acme.defs"\n')
    assert find(tmp_path).package == "acme"


@pytest.mark.parametrize("command", [["check"], ["lint"], ["docs", "build"], ["webhooks", "status"],
                                     ["dlq", "list", "--flow", "customer_crm_to_billing"], ["assess", "crm/customer"]])
def test_outside_a_project_a_command_says_so_and_loads_no_example(command: list[str], tmp_path: Path) -> None:
    done = subprocess.run([str(BIN / "integrations"), *command], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={"PATH": str(BIN), "HOME": str(tmp_path)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"no project in {tmp_path} or above it" in done.stderr and "Traceback" not in done.stderr


def test_project_names_the_project_from_anywhere(tmp_path: Path) -> None:
    """`integrations --project PATH` works on that project from a folder outside it."""
    from click.testing import CliRunner

    from integration_project.cli import main

    runner = CliRunner()
    made = runner.invoke(main, ["init", str(tmp_path / "shop"), "--package", "shop_landscape"])
    assert made.exit_code == 0, made.output
    (tmp_path / "elsewhere").mkdir()
    done = subprocess.run([str(BIN / "integrations"), "--project", str(tmp_path / "shop"), "check", "--json"],
                          cwd=tmp_path / "elsewhere", capture_output=True, text=True, timeout=300,
                          env={"PATH": str(BIN), "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert '"systems": 2, "objects": 1' in done.stdout
