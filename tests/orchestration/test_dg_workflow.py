"""Dagster's own workflow on a landscape, as a user runs it: `dg list components` lists the
landscape's components, `dg scaffold defs` writes skeletons with every required field, and what
it scaffolds into Dagster's default defs folder is what `dg check defs` and `integrations check`
load. Four `dg` subprocesses (~10 s of CPU each): one test; the skeletons of both formats are also
checked in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner
from dagster.components.scaffold.scaffold import get_scaffolder

from integration_project import DataObjectComponent, SystemComponent, load_landscape
from integration_project.cli import main
from integration_project.model import System
from integration_project.model.fields import DeclaredObject

DG = Path(sys.executable).parent / "dg"
PYPROJECT = """
[project]
name = "acme"
version = "0"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "acme"
"""
DEFINITIONS = """
from integration_project import build_definitions, load_landscape

defs = build_definitions(load_landscape("acme"))
"""


def test_dg_lists_scaffolds_and_loads_the_landscapes_components(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "acme" / "defs").mkdir(parents=True)  # as create-dagster lays a project out
    (tmp_path / "acme" / "__init__.py").write_text("")
    (tmp_path / "acme" / "defs" / "__init__.py").write_text("")
    (tmp_path / "acme" / "definitions.py").write_text(DEFINITIONS)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}

    def dg(*args: str) -> str:
        done = subprocess.run([str(DG), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    listed = {item["key"] for item in json.loads(dg("list", "components", "--json"))["items"]}
    assert {"integration_project.SystemComponent", "integration_project.DataObjectComponent"} <= listed

    dg("scaffold", "defs", "integration_project.SystemComponent", "warehouse")
    dg("scaffold", "defs", "integration_project.DataObjectComponent", "stock_item")
    system_file = tmp_path / "acme" / "defs" / "warehouse" / "defs.yaml"  # Dagster's default defs folder
    object_file = tmp_path / "acme" / "defs" / "stock_item" / "defs.yaml"
    for path, model in ((system_file, System), (object_file, DeclaredObject)):
        attributes = yaml.safe_load(path.read_text())["attributes"]
        required = {name for name, field in model.model_fields.items() if field.is_required()}
        assert required <= {k for k, v in attributes.items() if v not in (None, "", [], {})}, (path, attributes)
        model.model_validate(attributes)  # placeholders that already validate
    assert yaml.safe_load(object_file.read_text())["attributes"]["name"] == "stock_item"

    # the scaffolded object needs a source of truth: the scaffolded system becomes it
    system_file.write_text(system_file.read_text().replace("  bindings: []\n", (
        "  bindings:\n    - {object: stock_item, role: source, resource: items, purpose: It counts the stock.}\n")))
    dg("check", "defs")
    monkeypatch.syspath_prepend(str(tmp_path))
    checked = CliRunner().invoke(main, ["check", "--package", "acme", "--json"])
    assert checked.exit_code == 0, checked.output
    summary = json.loads(checked.stdout)
    assert (summary["systems"], summary["objects"]) == (1, 1)


SOURCE = {"yaml": ("  bindings: []\n", "  bindings:\n    - {object: stock_item, role: source, resource: items, "
                                        "purpose: It counts the stock.}\n"),
          "python": ("    bindings=[\n", '    bindings=[\n        Binding(object="stock_item", role="source", '
                                         'resource="items", purpose="It counts the stock."),\n')}


@pytest.mark.parametrize("scaffold_format", ["yaml", "python"])
def test_the_skeletons_load_once_the_system_is_the_objects_source(scaffold_format, tmp_path, monkeypatch):
    """The scaffolders in-process, in both formats: what `dg scaffold defs` writes is a declaration."""
    package = f"skeleton_{scaffold_format}"
    (tmp_path / package / "defs").mkdir(parents=True)
    (tmp_path / package / "__init__.py").write_text("")
    for component, name in ((SystemComponent, "warehouse"), (DataObjectComponent, "stock_item")):
        scaffolder = get_scaffolder(component)
        assert isinstance(scaffolder, dg.Scaffolder)
        scaffolder.scaffold(dg.ScaffoldRequest(
            type_name=f"integration_project.{component.__name__}", target_path=tmp_path / package / "defs" / name,
            scaffold_format=scaffold_format, project_root=tmp_path, params=None))
    written = {p.relative_to(tmp_path / package).as_posix() for p in (tmp_path / package).rglob("*.*")}
    expected = {"yaml": {"defs/warehouse/defs.yaml", "defs/stock_item/defs.yaml"},
                "python": {"defs/warehouse/warehouse.py", "defs/stock_item/stock_item.py"}}[scaffold_format]
    assert written - {"__init__.py"} == expected
    system_file = tmp_path / package / sorted(p for p in expected if "warehouse" in p)[0]
    before, after = SOURCE[scaffold_format]
    assert before in system_file.read_text()
    system_file.write_text(system_file.read_text().replace(before, after))
    monkeypatch.syspath_prepend(str(tmp_path))
    landscape = load_landscape(package)
    assert (list(landscape.systems), list(landscape.objects)) == (["warehouse"], ["stock_item"])
    assert landscape.objects["stock_item"].fields == ["id", "updated_at"]
