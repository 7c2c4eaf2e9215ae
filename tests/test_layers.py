"""The layer rules as one table: which room of the framework may import which, and nothing else.

A room is a subpackage of integration_project (model, connectors, ...) or one of its top-level
modules (contract, errors, settings, project, cli, launcher); docs_gen is a room of its own, and so
is the sandbox (integration_sandbox, its own distribution under sandbox/, which uses the framework).
A new upward or sideways import fails here with the file and the import. The framework may import
the sandbox only where it checks that it is installed (the sandbox is an extra).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = {"contract", "errors", "settings", "project"}  # import nothing of the framework but errors; anyone may use them
PACKAGES = {"integration_project": ROOT, "docs_gen": ROOT, "integration_sandbox": ROOT / "sandbox"}
OPTIONAL = {"sandbox"}  # another distribution: imported only inside a check that it is installed

MAY_IMPORT: dict[str, set[str]] = {
    "contract": set(),
    "errors": set(),
    "settings": set(),
    "model": {"errors"},
    "connectors": BASE | {"model"},
    "runtime": BASE | {"model", "connectors"},
    "webhooks": BASE | {"model", "connectors", "runtime"},  # the inbox's table is one of the hub store's migrations
    "orchestration": BASE | {"model", "connectors", "runtime", "webhooks"},
    "project": {"errors"},  # which project a command runs in: its landscape package and workspace
    # beside the framework, using it: it signs its webhooks with the receiver's schemes and points a
    # landscape's declared variables at its systems
    "sandbox": BASE | {"webhooks", "model", "connectors"},
    "scaffold": set(),  # `integrations init`: templates, nothing of the framework
    "package": BASE | {"model"},  # integration_project/__init__.py: the public API (orchestration lazily)
    "launcher": BASE | {"package", "model", "connectors", "orchestration", "docs_gen"},
    "cli": BASE | {"package", "model", "connectors", "runtime", "webhooks", "orchestration", "launcher", "scaffold",
                   "docs_gen"},
    "docs_gen": {"contract", "project"},  # the project tells it which code location to document
}


def room(module: str) -> str | None:
    """The room a dotted module name belongs to; None outside the framework."""
    parts = module.split(".")
    if parts[0] in ("docs_gen", "integration_sandbox"):
        return {"docs_gen": "docs_gen", "integration_sandbox": "sandbox"}[parts[0]]
    if parts[0] != "integration_project":
        return None
    return parts[1] if len(parts) > 1 else "package"


def module_of(path: Path) -> str:
    """The dotted module name of a source file."""
    top = next(name for name, base in PACKAGES.items() if path.is_relative_to(base / name))
    parts = path.relative_to(PACKAGES[top]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    base = PACKAGES.get(name.split(".")[0], ROOT) / Path(*name.split("."))
    return base.with_suffix(".py").exists() or base.is_dir()


def _guarded(tree: ast.AST) -> set[int]:
    """The import statements inside a `try` that handles ModuleNotFoundError (or ImportError)."""
    found: set[int] = set()
    for block in ast.walk(tree):
        if isinstance(block, ast.Try) and any(
                handler.type is not None and {"ModuleNotFoundError", "ImportError"} & {
                    ast.unparse(t) for t in (handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type])}
                for handler in block.handlers):
            found |= {id(node) for statement in block.body for node in ast.walk(statement)
                      if isinstance(node, (ast.Import, ast.ImportFrom))}
    return found


def imported(path: Path, guarded: bool = False) -> set[str]:
    """The framework modules a file imports (`from integration_project import contract` counts as
    the module integration_project.contract, `from integration_project import Api` as the package);
    with `guarded`, only those imported inside a check that they are installed."""
    found: set[str] = set()
    package = module_of(path) if path.name == "__init__.py" else module_of(path).rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    for block in ast.walk(tree):  # imports for the type checker only are not imports at run time
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            block.body = []
    checked = _guarded(tree)
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or (id(node) in checked) != guarded:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        else:
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _is_module(candidate) else base)
    return found


def sources() -> list[Path]:
    """Every source file of the framework and the sandbox (migration scripts are Alembic's data)."""
    return [path for name, base in PACKAGES.items() for path in (base / name).rglob("*.py")
            if not ("migrations" in path.parts and path.parent.name == "versions")]


def imports_by_room(guarded: bool = False) -> dict[tuple[str, str], list[str]]:
    """(from room, to room) -> the files and imports that make that edge (with `guarded`: the
    imports inside a check that the module is installed)."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sources():
        source = room(module_of(path))
        for name in imported(path, guarded):
            target = room(name)
            if target is not None and source is not None and target != source:
                edges.setdefault((source, target), []).append(f"{path.relative_to(ROOT)}: {name}")
    return edges


def test_every_room_imports_only_what_the_table_allows() -> None:
    edges = imports_by_room()
    assert set(MAY_IMPORT) >= {a for a, _ in edges} | {b for _, b in edges}, "a new room: add it to the table"
    wrong = {f"{a} -> {b}": where for (a, b), where in edges.items() if b not in MAY_IMPORT[a]}
    assert wrong == {}


def test_the_framework_imports_the_sandbox_only_where_it_checks_it_is_installed() -> None:
    checked = imports_by_room(guarded=True)
    assert {a for a, b in checked if b in OPTIONAL} == {"launcher"}, checked  # `up` and `integrations sandbox`
    assert not [edge for edge in imports_by_room() if edge[1] in OPTIONAL and edge[0] not in OPTIONAL]
    assert not [room for room, targets in MAY_IMPORT.items() if OPTIONAL & targets]


def test_the_table_itself_has_no_cycle() -> None:
    graph = nx.DiGraph([(a, b) for a, targets in MAY_IMPORT.items() for b in targets])
    assert list(nx.simple_cycles(graph)) == []


@pytest.mark.parametrize("source, target", [("runtime", "orchestration"), ("model", "runtime"),
                                            ("connectors", "runtime"), ("docs_gen", "model"),
                                            ("runtime", "webhooks"), ("sandbox", "runtime"),
                                            ("project", "model"), ("cli", "sandbox")])
def test_an_upward_or_sideways_import_is_refused(source: str, target: str) -> None:
    assert target not in MAY_IMPORT[source]
