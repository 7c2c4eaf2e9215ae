"""The layer rules as one table: which room of the framework may import which, and nothing else.

A room is a subpackage of integration_project (model, connectors, ...) or one of its top-level
modules (contract, errors, settings, cli, launcher); docs_gen is a room of its own. A new upward or
sideways import fails here with the file and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = {"contract", "errors", "settings"}  # import nothing of the framework; anyone may use them

MAY_IMPORT: dict[str, set[str]] = {
    "contract": set(),
    "errors": set(),
    "settings": set(),
    "model": {"errors"},
    "connectors": BASE | {"model"},
    "runtime": BASE | {"model", "connectors"},
    "webhooks": BASE | {"model", "connectors", "runtime"},  # the inbox's table is one of the hub store's migrations
    "orchestration": BASE | {"model", "connectors", "runtime", "webhooks"},
    "sandbox": BASE | {"webhooks"},  # it signs the webhooks it sends with the receiver's schemes
    "package": BASE | {"model"},  # integration_project/__init__.py: the public API (orchestration lazily)
    "launcher": BASE | {"package", "model", "connectors", "orchestration", "sandbox", "docs_gen"},
    "cli": BASE | {"package", "model", "connectors", "runtime", "webhooks", "orchestration", "sandbox",
                   "launcher", "docs_gen"},
    "docs_gen": {"contract"},
}


def room(module: str) -> str | None:
    """The room a dotted module name belongs to; None outside the framework."""
    parts = module.split(".")
    if parts[0] == "docs_gen":
        return "docs_gen"
    if parts[0] != "integration_project":
        return None
    return parts[1] if len(parts) > 1 else "package"


def module_of(path: Path) -> str:
    """The dotted module name of a source file."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """The framework modules a file imports (`from integration_project import contract` counts as
    the module integration_project.contract, `from integration_project import Api` as the package)."""
    found: set[str] = set()
    package = module_of(path) if path.name == "__init__.py" else module_of(path).rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    for block in ast.walk(tree):  # imports for the type checker only are not imports at run time
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            block.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() or (
                    ROOT / Path(*candidate.split("."))).is_dir()
                found.add(candidate if is_module else base)
    return found


def imports_by_room() -> dict[tuple[str, str], list[str]]:
    """(from room, to room) -> the files and imports that make that edge."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in [*(ROOT / "integration_project").rglob("*.py"), *(ROOT / "docs_gen").rglob("*.py")]:
        if "migrations" in path.parts and path.parent.name == "versions":
            continue  # migration scripts are data for Alembic, not code of the room
        source = room(module_of(path))
        for name in imported(path):
            target = room(name)
            if target is not None and source is not None and target != source:
                edges.setdefault((source, target), []).append(f"{path.relative_to(ROOT)}: {name}")
    return edges


def test_every_room_imports_only_what_the_table_allows() -> None:
    edges = imports_by_room()
    assert set(MAY_IMPORT) >= {a for a, _ in edges} | {b for _, b in edges}, "a new room: add it to the table"
    wrong = {f"{a} -> {b}": where for (a, b), where in edges.items() if b not in MAY_IMPORT[a]}
    assert wrong == {}


def test_the_table_itself_has_no_cycle() -> None:
    graph = nx.DiGraph([(a, b) for a, targets in MAY_IMPORT.items() for b in targets])
    assert list(nx.simple_cycles(graph)) == []


@pytest.mark.parametrize("source, target", [("runtime", "orchestration"), ("model", "runtime"),
                                            ("connectors", "runtime"), ("docs_gen", "model"),
                                            ("runtime", "webhooks"), ("sandbox", "runtime")])
def test_an_upward_or_sideways_import_is_refused(source: str, target: str) -> None:
    assert target not in MAY_IMPORT[source]
