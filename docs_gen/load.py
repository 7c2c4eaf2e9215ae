"""Load a code location's Definitions the way Dagster does: a `module:attribute` or workspace.yaml."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster_shared.yaml_utils import load_yaml_from_path  # dagster's own YAML loader

from docs_gen.errors import DocsError
from integration_project.project import ProjectNotFound, find


@dataclass(frozen=True)
class Target:
    """Where a code location's Definitions live: module and attribute (None = find the one)."""

    module: str
    attribute: str | None = None
    working_directory: str | None = None
    location_name: str | None = None

    def __str__(self) -> str:
        return f"{self.module}:{self.attribute}" if self.attribute else self.module

    @property
    def location(self) -> str:
        """The code location's name in Dagster (and its UI's URLs): location_name, else module[:attribute]."""
        return self.location_name or str(self)


def parse_module(spec: str) -> Target:
    """Parse `package.module[:attribute]` as given to `--module`."""
    module, _, attribute = spec.partition(":")
    if not module:
        raise DocsError(f"bad --module {spec!r}: expected package.module[:attribute]")
    return Target(module, attribute or None)


def targets_from_workspace(path: Path) -> list[Target]:
    """The python_module code locations of a workspace.yaml, as Dagster reads them."""
    if not path.is_file():
        raise DocsError(f"workspace file not found: {path}")
    workspace = load_yaml_from_path(str(path)) or {}
    if not isinstance(workspace, dict):
        raise DocsError(f"{path}: expected a mapping with load_from")
    targets = []
    for entry in workspace.get("load_from", []):
        spec = entry.get("python_module") if isinstance(entry, dict) else None
        if isinstance(spec, str):
            targets.append(Target(spec, None, str(path.parent)))
        elif isinstance(spec, dict):
            workdir = spec.get("working_directory")
            base = str(path.parent / workdir) if workdir else str(path.parent)
            targets.append(Target(spec["module_name"], spec.get("attribute"), base, spec.get("location_name")))
    if not targets:
        raise DocsError(f"{path}: no python_module code location under load_from")
    return targets


def load_target(target: Target) -> dg.Definitions:
    """Import the module and return its Definitions, as `dagster dev` would."""
    directory = target.working_directory or str(Path.cwd())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(target.module)
    except Exception as exc:  # the user's code location failed to import: say which and why
        raise DocsError(f"cannot import {target.module}: {type(exc).__name__}: {exc}") from exc
    if target.attribute:
        found = getattr(module, target.attribute, None)
        if found is None:
            raise DocsError(f"{target.module} has no attribute {target.attribute!r}")
        found = found() if callable(found) and not isinstance(found, dg.Definitions) else found
        if not isinstance(found, dg.Definitions):
            raise DocsError(f"{target} is a {type(found).__name__}, not a dagster Definitions")
        return found
    candidates = [v for v in vars(module).values() if isinstance(v, dg.Definitions)]
    if len(candidates) != 1:
        raise DocsError(f"{target.module}: expected one Definitions object, found {len(candidates)}")
    return candidates[0]


def targets(module: str | None = None, workspace: Path | None = None) -> list[Target]:
    """The code locations to document: `--module` if given, else the workspace.yaml given, else the
    current project's: its workspace.yaml, or `<package>.definitions` when it has none."""
    if module:
        return [parse_module(module)]
    if workspace:
        return targets_from_workspace(workspace)
    try:
        project = find()
    except ProjectNotFound as exc:
        raise DocsError(str(exc)) from None
    if project.workspace:
        return targets_from_workspace(project.workspace)
    return [Target(project.code_location, None, str(project.root))]


def load(module: str | None = None, workspace: Path | None = None) -> tuple[dg.Definitions, str]:
    """Load from `--module`, the workspace.yaml or the project (as `targets`); return the Definitions
    and their origin."""
    found = targets(module, workspace)
    loaded = [load_target(t) for t in found]
    defs = loaded[0] if len(loaded) == 1 else dg.Definitions.merge(*loaded)
    return defs, ",".join(str(t) for t in found)
