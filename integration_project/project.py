"""Which project a command runs in, found from the working directory upwards.

A project is a folder with a pyproject.toml that has `[tool.dg.project]` (Dagster's `dg` reads the
same table) or with a workspace.yaml. The nearest one from the working directory up is the project,
unless `--project PATH` (or $INTEGRATIONS_PROJECT) names one. Its landscape package is
`[tool.dg.project] root_module`, else the top package of workspace.yaml's first code location.
Nothing falls back to the repository's example: outside a project a command says so.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from integration_project.errors import IntegrationError

PROJECT_ENV = "INTEGRATIONS_PROJECT"
WORKSPACE = "workspace.yaml"


class ProjectNotFound(IntegrationError):
    """No project at the given folder or above the working directory."""


@dataclass(frozen=True)
class Project:
    """A project's folder, its landscape package and its workspace.yaml (None when it has none)."""

    root: Path
    package: str
    workspace: Path | None

    @property
    def code_location(self) -> str:
        """The module whose Definitions Dagster loads: `<package>.definitions`, as `dg` expects."""
        return f"{self.package}.definitions"

    def importable(self) -> Project:
        """Put the project's folder first on sys.path, as Dagster does for a code location."""
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))
        return self


def _dg_project(folder: Path) -> dict[str, Any] | None:
    """`[tool.dg.project]` of the folder's pyproject.toml, or None."""
    path = folder / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        table = tomllib.loads(path.read_text()).get("tool", {}).get("dg", {}).get("project")
    except tomllib.TOMLDecodeError as exc:
        raise ProjectNotFound(f"{path}: not valid TOML: {exc}") from None
    return table if isinstance(table, dict) else None


def _workspace_package(path: Path) -> str:
    """The top package of a workspace.yaml's first python_module code location."""
    import yaml

    entries = (yaml.safe_load(path.read_text()) or {}).get("load_from") or []
    for entry in entries:
        spec = entry.get("python_module") if isinstance(entry, dict) else None
        module = spec.get("module_name") if isinstance(spec, dict) else spec
        if isinstance(module, str) and module:
            return module.split(".")[0]
    raise ProjectNotFound(f"{path}: no python_module code location under load_from")


def at(folder: Path) -> Project | None:
    """The project whose root is exactly this folder, or None."""
    folder = folder.resolve()
    table = _dg_project(folder)
    workspace = folder / WORKSPACE
    has_workspace = workspace.is_file()
    if table is None and not has_workspace:
        return None
    if table is not None and isinstance(table.get("root_module"), str):
        package = table["root_module"]
        defs = table.get("defs_module")
        if isinstance(defs, str) and defs != package and not defs.startswith(f"{package}."):
            # the landscape is read from its package: components in a defs folder elsewhere would be lost
            raise ProjectNotFound(f"{folder / 'pyproject.toml'}: [tool.dg.project] defs_module {defs!r} is "
                                  f"outside root_module {package!r}: the landscape is read from its package only; "
                                  f"make defs_module {package!r} or a module inside it")
    elif has_workspace:
        package = _workspace_package(workspace)
    else:
        raise ProjectNotFound(f"{folder / 'pyproject.toml'}: [tool.dg.project] has no root_module")
    return Project(folder, package, workspace if has_workspace else None)


def find(start: Path | None = None) -> Project:
    """The project named by $INTEGRATIONS_PROJECT, else the nearest one from `start` (the working
    directory) upwards; ProjectNotFound says where it looked."""
    if named := os.environ.get(PROJECT_ENV):
        found = at(Path(named))
        if found is None:
            raise ProjectNotFound(f"{named} is not a project: it has no pyproject.toml with "
                                  f"[tool.dg.project] and no {WORKSPACE}")
        return found
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (found := at(folder)) is not None:
            return found
    raise ProjectNotFound(f"no project in {here} or above it (a pyproject.toml with [tool.dg.project], "
                          f"or a {WORKSPACE}): `integrations init DIR` writes one, `--project PATH` names one")


def landscape_package(package: str | None) -> str:
    """The package a command loads: the one given (from the current project's folder when there
    is one), else the current project's; the project's folder is made importable."""
    if package is None:
        return find().importable().package
    try:
        find().importable()
    except ProjectNotFound:  # a package given by name may be importable from anywhere
        pass
    return package


def package_option(fn: Any) -> Any:
    """--package: the landscape package a command loads, by default the current project's."""
    return click.option("--package", default=None, metavar="PACKAGE",
                        help="The landscape package (objects.py + systems/) [default: the project's].")(fn)
