"""docs_gen imports only dagster, networkx, graphviz, jinja2, click, the stdlib, the contract and
the project finder (which knows files, not declarations)."""

import ast
import sys
from pathlib import Path

import docs_gen

THIRD_PARTY = {"dagster", "dagster_shared", "networkx", "graphviz", "jinja2", "click"}


def imports(path: Path) -> set[str]:
    """Dotted names a file imports (`from a import b` gives `a.b`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def allowed(name: str) -> bool:
    """Whether docs_gen may import this name."""
    top = name.split(".")[0]
    return (top in THIRD_PARTY | {"docs_gen", "__future__"} or top in sys.stdlib_module_names
            or name.startswith(("integration_project.contract", "integration_project.project")))


def test_docs_gen_never_imports_the_declaration_model() -> None:
    """Every import of every docs_gen module is allowed; the contract is the one project import."""
    package = Path(docs_gen.__file__).parent
    bad = {path.name: sorted(n for n in imports(path) if not allowed(n)) for path in package.rglob("*.py")}
    assert {k: v for k, v in bad.items() if v} == {}
    assert "integration_project.contract" in imports(package / "graph.py")
    assert not allowed("integration_project.model.System") and not allowed("definitions.definitions")


def test_the_project_finder_docs_gen_may_use_knows_no_declaration() -> None:
    """`integration_project.project` finds a project's files; it must not become a way to the model."""
    finder = Path(docs_gen.__file__).parent.parent / "integration_project" / "project.py"
    project_imports = {n for n in imports(finder) if n.startswith("integration_project")}
    assert project_imports <= {"integration_project.errors.IntegrationError"}, project_imports
