"""Load a landscape package: its Python declarations and its Dagster Components YAML files.

Python: `objects.py`, every module under `systems/` (any depth) and any other module of the package
that calls `System(...)` or `DataObject(...)`; each module-level `System` and `DataObject` is
declared. YAML: every component file Dagster's defs folder would load (`defs.yaml`, `defs.yml`,
`component.yaml`, each of its documents) anywhere in the package, of type
`integration_project.SystemComponent` or `integration_project.DataObjectComponent`; any other
type is refused, never skipped. Every problem in every file is collected, each one line with file,
line, declaration and field.
"""

from __future__ import annotations

import ast
import importlib
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dagster_shared.yaml_utils import parse_yamls_with_source_position
from pydantic import ValidationError

from integration_project.errors import Problem, declaration_error
from integration_project.model.data_object import DataObject
from integration_project.model.fields import DeclaredObject
from integration_project.model.landscape import Landscape, Location
from integration_project.model.system import System

SYSTEM_TYPE = "integration_project.SystemComponent"
OBJECT_TYPE = "integration_project.DataObjectComponent"
COMPONENT_FILES = ("defs.yaml", "defs.yml", "component.yaml")  # what Dagster's defs folder reads
_CALLS = {"System": "system", "DataObject": "object"}
_EXPECTED = f"expected type: {SYSTEM_TYPE} or {OBJECT_TYPE}"


def load_landscape(package: str = "definitions") -> Landscape:
    """Import a landscape package and validate it; raise DeclarationError with every problem."""
    roots = list(getattr(importlib.import_module(package), "__path__", []))
    if not roots:
        raise declaration_error([Problem(package, f"package {package}", "-",
                                         "not a package: expected a folder with objects.py and systems/")])
    root = Path(roots[0])
    problems: list[Problem] = []
    landscape = Landscape(systems={}, objects={})
    modules = _python_files(root)
    yaml_problems: list[Problem] = []  # files that do not parse: reported after the Python ones
    documents = [d for path in _component_files(root) for d in _documents(path, root, yaml_problems)]
    # Objects first, so that a broken object is reported once, not as every binding's unknown object.
    for path in (p for p in modules if p.declares_objects):
        for decl, loc in _python_declarations(package, root, path.path, problems):
            _register(landscape, decl, loc, problems)
    for doc in (d for d in documents if d.type == OBJECT_TYPE):
        if found := _yaml_declaration(doc, problems):
            _register(landscape, *found, problems)
    objects_failed = bool(problems)
    for path in (p for p in modules if not p.declares_objects):
        for decl, loc in _python_declarations(package, root, path.path, problems):
            _register(landscape, decl, loc, problems)
    problems += yaml_problems
    for doc in (d for d in documents if d.type != OBJECT_TYPE):
        if found := _yaml_declaration(doc, problems):
            _register(landscape, *found, problems)
    if not objects_failed:
        problems += landscape.problems()  # after the files' own problems: those come first
    if problems:
        raise declaration_error(problems)
    return landscape


def _register(landscape: Landscape, decl: System | DataObject, loc: Location, problems: list[Problem]) -> None:
    table: dict[str, Any] = landscape.systems if isinstance(decl, System) else landscape.objects
    key = f"{'system' if isinstance(decl, System) else 'object'} {decl.name}"
    if decl.name in table:
        first = landscape.locations[key]
        problems.append(Problem(loc.of("name"), key, "name", f"duplicate name, first declared at {first.of('')}"))
        return
    table[decl.name] = decl
    landscape.locations[key] = loc


@dataclass(frozen=True)
class _Module:
    path: Path
    declares_objects: bool


def _python_files(root: Path) -> list[_Module]:
    """The package's declaration modules, objects.py first: see the module docstring."""
    found = []
    for path in sorted(_files(root, "*.py"), key=lambda p: (p != root / "objects.py", p)):
        if path.name == "__init__.py":
            continue
        try:
            calls = {_name(n.func) for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)}
        except (SyntaxError, OSError, ValueError):
            calls = set()  # reported when imported, if it is a declaration module
        if path == root / "objects.py" or "systems" in path.relative_to(root).parts[:-1] or calls & set(_CALLS):
            found.append(_Module(path, path == root / "objects.py" or "DataObject" in calls))
    return found


def _component_files(root: Path) -> list[Path]:
    return sorted(p for name in COMPONENT_FILES for p in _files(root, name))


def _files(root: Path, pattern: str) -> Iterator[Path]:
    """Files under the package, outside caches and hidden folders."""
    for path in root.rglob(pattern):
        if not any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(root).parts):
            yield path


def _python_declarations(package: str, root: Path, path: Path,
                         problems: list[Problem]) -> Iterator[tuple[System | DataObject, Location]]:
    """Yield each module-level System and DataObject of a module with its location."""
    rel, file = _relative(path), _file(path, root)
    module = ".".join([package, *path.relative_to(root).with_suffix("").parts])
    try:
        index = _Index(ast.parse(path.read_text(), str(path)), rel,
                       "object" if path.name == "objects.py" else "system")
    except SyntaxError as exc:  # reported before importing: the line is the parser's
        problems.append(Problem(f"{rel}:{exc.lineno or 1}", f"file {file}", "-", f"not valid Python: {exc.msg}"))
        return
    except OSError as exc:
        problems.append(Problem(rel, f"file {file}", "-", f"cannot read it: {exc.strerror}"))
        return
    try:
        mod = importlib.import_module(module)
    except ValidationError as exc:  # a declaration's field: name its declaration and its line
        sys.modules.pop(module, None)
        decl, prefix, loc = index.failing(exc, path)
        for err in exc.errors():
            field_path = _join(prefix, _dotted(err["loc"]))
            problems.append(Problem(loc.of(field_path), decl, field_path or "-", _message(err)))
        return
    except Exception as exc:  # an import error in a user's file is reported, not raised
        sys.modules.pop(module, None)
        frames = _frames_in(exc, path)
        line = frames[-1].lineno if frames else 1
        first = (str(exc).splitlines() or [""])[0]
        problems.append(Problem(f"{rel}:{line}", f"file {file}", "-", f"{type(exc).__name__}: {first}"))
        return
    for found in (v for v in vars(mod).values() if isinstance(v, (System, DataObject))):
        kind = "system" if isinstance(found, System) else "object"
        yield found, index.location(f"{kind} {found.name}")


class _Index:
    """The line of every keyword argument of a module's `System(...)` and `DataObject(...)` calls.

    Keyword arguments are indexed as dotted field paths through nested calls, lists and dict
    literals (`bindings[1].freshness_minutes`, `api.auth.token_env`), and each nested call is
    remembered with its path, so a ValidationError raised by `Binding(...)` maps to its field.
    """

    def __init__(self, tree: ast.Module, rel: str, kind: str):
        self.rel = rel
        self.anonymous = f"{kind} in {Path(rel).stem}"  # where a ValidationError names no declaration
        self.locations: dict[str, Location] = {}  # declaration -> location
        self.calls: dict[tuple[int, int], tuple[str, str]] = {}  # (line, col) -> (declaration, path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (kind_of := _CALLS.get(_name(node.func) or "")):
                name = next((k.value.value for k in node.keywords if k.arg == "name"
                             and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)), None)
                decl = f"{kind_of} {name}" if name else f"{kind_of} in {Path(rel).stem}"
                lines: dict[str, int] = {}
                self._walk(node, "", decl, lines)
                self.locations.setdefault(decl, Location(rel, node.lineno, lines))

    def _walk(self, node: ast.AST, path: str, decl: str, lines: dict[str, int]) -> None:
        if isinstance(node, ast.Call):
            self.calls[(node.lineno, node.col_offset)] = (decl, path)
            children = [(_join(path, k.arg), k.lineno, k.value) for k in node.keywords if k.arg]
        elif isinstance(node, (ast.List, ast.Tuple)):
            children = [(f"{path}[{i}]", e.lineno, e) for i, e in enumerate(node.elts)]
        elif isinstance(node, ast.Dict):
            children = [(_join(path, str(k.value)), k.lineno, v) for k, v in zip(node.keys, node.values)
                        if isinstance(k, ast.Constant)]
        else:
            return
        for child_path, line, value in children:
            lines[child_path] = line
            self._walk(value, child_path, decl, lines)

    def location(self, decl: str) -> Location:
        """Where a declaration was written."""
        return self.locations.get(decl, Location(self.rel))

    def failing(self, exc: ValidationError, path: Path) -> tuple[str, str, Location]:
        """The declaration, field path prefix and location of the call a ValidationError came from."""
        frames = _frames_in(exc, path)
        for frame in reversed(frames):  # the innermost call of this file that raised it
            if frame.lineno is not None and frame.colno is not None and (
                    found := self.calls.get((frame.lineno, frame.colno))):
                return found[0], found[1], self.location(found[0])
        return self.anonymous, "", Location(self.rel, frames[-1].lineno if frames else None)


@dataclass(frozen=True)
class _Document:
    """One YAML document of a component file, with the source position of every node."""

    path: Path
    file: str  # within the package, e.g. systems/inventory/defs.yaml
    value: Any
    positions: Any  # dagster_shared's SourcePositionTree

    @property
    def type(self) -> Any:
        return self.value.get("type") if isinstance(self.value, dict) else None

    def line_of(self, *loc: Any) -> str:
        """'path:line' of a node, else of its nearest parent, else the file's first line."""
        rel = _relative(self.path)
        for n in range(len(loc), -1, -1):
            found = self.positions.lookup(list(loc[:n]))
            if found is not None:
                return f"{rel}:{found.start.line}"
        return f"{rel}:1"


def _documents(path: Path, root: Path, problems: list[Problem]) -> list[_Document]:
    rel, file = _relative(path), _file(path, root)
    text = path.read_text()
    try:
        parsed = [doc for doc in parse_yamls_with_source_position(text, filename=rel) if doc.value is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        if context and context_mark and mark is not context_mark:
            problem += f" ({context} from line {context_mark.line + 1})"
        elif context:
            problem = f"{context}: {problem}"
        problems.append(Problem(f"{rel}:{mark.line + 1 if mark else 1}", f"file {file}", "-",
                                f"not valid YAML: {problem}"))
        return []
    if not parsed:
        problems.append(Problem(f"{rel}:1", f"file {file}", "-", f"the file is empty: {_EXPECTED}, and attributes"))
    return [_Document(path, file, doc.value, doc.source_position_tree) for doc in parsed]


def _yaml_declaration(doc: _Document, problems: list[Problem]) -> tuple[System | DataObject, Location] | None:
    """The system or object a component document declares; None (and its problems) when it cannot."""
    attributes = doc.value.get("attributes") if isinstance(doc.value, dict) else None
    name = attributes.get("name") if isinstance(attributes, dict) else None
    kind = {SYSTEM_TYPE: "system", OBJECT_TYPE: "object"}.get(doc.type) if isinstance(doc.type, str) else None
    if kind is None:  # Dagster would load it; the landscape's code location would not: say so
        found = f"{doc.type!r} is not a declaration of the landscape" if doc.type else "no type"
        problems.append(Problem(doc.line_of("type"), f"file {doc.file}", "type", f"{_EXPECTED}; {found}"))
        return None
    decl = f"{kind} {name if isinstance(name, str) else doc.path.parent.name}"
    if not isinstance(attributes, dict):
        problems.append(Problem(doc.line_of("attributes"), decl, "attributes", f"expected the {kind}'s fields here"))
        return None
    try:
        declared = (System if kind == "system" else DeclaredObject).model_validate(attributes)
    except ValidationError as exc:
        problems += [Problem(doc.line_of("attributes", *e["loc"]), decl, _dotted(e["loc"]) or "-", _message(e))
                     for e in exc.errors()]
        return None
    lines = {}
    for dotted, loc in _leaf_paths(attributes):
        if (found := doc.positions.lookup(["attributes", *loc])) is not None:
            lines[dotted] = found.start.line
    start = doc.positions.lookup(["attributes"])
    if isinstance(declared, DeclaredObject):
        location = Location(_relative(doc.path), start.start.line if start else None, lines,
                            DeclaredObject.declared_paths(declared.fields))
        return declared.data_object(), location
    return declared, Location(_relative(doc.path), start.start.line if start else None, lines)


def _leaf_paths(value, prefix: tuple = ()):
    """Yield (dotted path, key tuple) for every node of a parsed YAML tree."""
    if prefix:
        yield _dotted(prefix), prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from _leaf_paths(child, (*prefix, key))


def _dotted(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _join(prefix: str, field_path: str) -> str:
    if not field_path:
        return prefix
    return f"{prefix}{field_path}" if field_path.startswith("[") or not prefix else f"{prefix}.{field_path}"


def _message(err) -> str:
    return err["msg"].removeprefix("Value error, ")


def _name(func: ast.expr) -> str | None:
    return getattr(func, "id", getattr(func, "attr", None))


def _frames_in(exc: BaseException, path: Path) -> list[traceback.FrameSummary]:
    return [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]


def _file(path: Path, root: Path) -> str:
    """A file's path within its landscape package, e.g. systems/crm.py."""
    return path.relative_to(root).as_posix()


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
