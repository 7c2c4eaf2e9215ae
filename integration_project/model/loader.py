"""Load a landscape package: `objects.py`, then every system under `systems/` (Python or YAML).

A Python system is a module-level `System(...)` in `systems/<name>.py`; a YAML system is a Dagster
Components file `systems/<name>/defs.yaml` of type `integration_project.SystemComponent`. Every
problem in every file is collected, each one line with file, line, declaration and field.
"""

from __future__ import annotations

import ast
import importlib
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import yaml
from dagster_shared.yaml_utils import parse_yaml_with_source_position
from pydantic import ValidationError

from integration_project.errors import Problem, declaration_error
from integration_project.model.data_object import DataObject
from integration_project.model.landscape import Landscape, Location
from integration_project.model.system import System

COMPONENT_TYPE = "integration_project.SystemComponent"
D = TypeVar("D", System, DataObject)


def load_landscape(package: str = "definitions") -> Landscape:
    """Import a landscape package and validate it; raise DeclarationError with every problem."""
    roots = list(getattr(importlib.import_module(package), "__path__", []))
    if not roots:
        raise declaration_error([Problem(package, f"package {package}", "-",
                                         "not a package: expected a folder with objects.py and systems/")])
    root = Path(roots[0])
    problems: list[Problem] = []
    landscape = Landscape(systems={}, objects={})
    for obj, loc in _python_declarations(f"{package}.objects", root / "objects.py", DataObject, problems):
        _register(landscape, "object", obj, loc, problems)
    objects_failed = bool(problems)  # then every binding would be "unknown object": say it once
    for path in sorted((root / "systems").glob("*.py")):
        if path.stem != "__init__":
            module = f"{package}.systems.{path.stem}"
            for system, loc in _python_declarations(module, path, System, problems):
                _register(landscape, "system", system, loc, problems)
    for path in sorted((root / "systems").glob("*/defs.yaml")):
        if found := _yaml_system(path, problems):
            _register(landscape, "system", *found, problems)
    if not objects_failed:
        problems += landscape.problems()  # after the files' own problems: those come first
    if problems:
        raise declaration_error(problems)
    return landscape


def _register(landscape: Landscape, kind: str, decl, loc: Location, problems: list[Problem]) -> None:
    table = landscape.systems if kind == "system" else landscape.objects
    key = f"{kind} {decl.name}"
    if decl.name in table:
        first = landscape.locations[key]
        problems.append(Problem(loc.of("name"), key, "name", f"duplicate name, first declared at {first.of('')}"))
        return
    table[decl.name] = decl
    landscape.locations[key] = loc


def _python_declarations(module: str, path: Path, cls: type[D], problems: list[Problem]) -> Iterator[tuple[D, Location]]:
    """Yield each module-level `cls` instance of a module with its location."""
    rel = _relative(path)
    try:
        index = _Index(ast.parse(path.read_text(), str(path)), rel, cls.__name__)
    except SyntaxError as exc:  # reported before importing: the line is the parser's
        problems.append(Problem(f"{rel}:{exc.lineno or 1}", f"file {_file(path)}", "-",
                                f"not valid Python: {exc.msg}"))
        return
    except OSError as exc:
        problems.append(Problem(rel, f"file {_file(path)}", "-", f"cannot read it: {exc.strerror}"))
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
        problems.append(Problem(f"{rel}:{line}", f"file {_file(path)}", "-", f"{type(exc).__name__}: {first}"))
        return
    for found in (v for v in vars(mod).values() if isinstance(v, cls)):
        yield found, index.location(f"{index.kind} {found.name}")


class _Index:
    """The line of every keyword argument of a module's `System(...)` (or `DataObject(...)`) calls.

    Keyword arguments are indexed as dotted field paths through nested calls, lists and dict
    literals (`bindings[1].freshness_minutes`, `api.auth.token_env`), and each nested call is
    remembered with its path, so a ValidationError raised by `Binding(...)` maps to its field.
    """

    def __init__(self, tree: ast.Module, rel: str, cls_name: str):
        self.rel = rel
        self.kind = kind = "object" if cls_name == "DataObject" else cls_name.lower()
        self.anonymous = f"{kind} in {Path(rel).stem}"  # a declaration whose name is not a literal
        self.locations: dict[str, Location] = {}  # declaration -> location
        self.calls: dict[tuple[int, int], tuple[str, str]] = {}  # (line, col) -> (declaration, path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) == cls_name:
                name = next((k.value.value for k in node.keywords if k.arg == "name"
                             and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)), None)
                decl = f"{kind} {name}" if name else self.anonymous
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


def _yaml_system(path: Path, problems: list[Problem]) -> tuple[System, Location] | None:
    rel = _relative(path)
    file_decl = f"file {_file(path)}"
    text = path.read_text()
    try:
        if yaml.safe_load(text) is None:  # Dagster's parser fails on an empty document
            problems.append(Problem(f"{rel}:1", file_decl, "-",
                                    f"the file is empty: expected type: {COMPONENT_TYPE} and attributes"))
            return None
        parsed = parse_yaml_with_source_position(text, filename=rel)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        if context and context_mark and mark is not context_mark:
            problem += f" ({context} from line {context_mark.line + 1})"
        elif context:
            problem = f"{context}: {problem}"
        problems.append(Problem(f"{rel}:{mark.line + 1 if mark else 1}", file_decl, "-", f"not valid YAML: {problem}"))
        return None
    doc, positions = parsed.value, parsed.source_position_tree
    attributes = doc.get("attributes") if isinstance(doc, dict) else None
    name = attributes.get("name") if isinstance(attributes, dict) else None
    decl = f"system {name if isinstance(name, str) else path.parent.name}"

    def line_of(*loc) -> str:
        for n in range(len(loc), -1, -1):
            found = positions.lookup(list(loc[:n]))
            if found is not None:
                return f"{rel}:{found.start.line}"
        return f"{rel}:1"

    if not isinstance(doc, dict) or doc.get("type") != COMPONENT_TYPE:
        problems.append(Problem(line_of("type"), decl, "type", f"expected type: {COMPONENT_TYPE}"))
        return None
    if not isinstance(attributes, dict):
        problems.append(Problem(line_of("attributes"), decl, "attributes", "expected the system's fields here"))
        return None
    try:
        system = System.model_validate(attributes)
    except ValidationError as exc:
        problems += [Problem(line_of("attributes", *e["loc"]), decl, _dotted(e["loc"]) or "-", _message(e))
                     for e in exc.errors()]
        return None
    lines = {}
    for dotted, loc in _leaf_paths(attributes):
        if (found := positions.lookup(["attributes", *loc])) is not None:
            lines[dotted] = found.start.line
    start = positions.lookup(["attributes"])
    return system, Location(rel, start.start.line if start else None, lines)


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


def _file(path: Path) -> str:
    """A file's path within its landscape package, e.g. systems/crm.py."""
    parts = path.parts
    return "/".join(parts[parts.index("systems"):]) if "systems" in parts else path.name


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
