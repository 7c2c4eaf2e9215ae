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
from pathlib import Path

import yaml
from dagster_shared.yaml_utils import parse_yaml_with_source_position
from pydantic import ValidationError

from integration_project.errors import DeclarationError, Problem
from integration_project.model.data_object import DataObject
from integration_project.model.landscape import Landscape, Location
from integration_project.model.system import System

COMPONENT_TYPE = "integration_project.SystemComponent"


def load_landscape(package: str = "definitions") -> Landscape:
    """Import a landscape package and validate it; raise DeclarationError with every problem."""
    root = Path(importlib.import_module(package).__file__).parent
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
        problems += landscape.problems()
    if problems:
        raise DeclarationError(problems)
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


def _python_declarations(module: str, path: Path, cls: type, problems: list[Problem]):
    """Yield each module-level `cls` instance of a module with its location."""
    rel = _relative(path)
    try:
        mod = importlib.import_module(module)
    except ValidationError as exc:
        line = _failing_line(exc, path)
        decl = f"{cls.__name__.lower().replace('dataobject', 'object')} in {path.stem}"
        problems += [_problem(f"{rel}:{line}", decl, err) for err in exc.errors()]
        sys.modules.pop(module, None)
        return
    except Exception as exc:  # an import error in a user's file is reported, not raised
        problems.append(Problem(f"{rel}:{_failing_line(exc, path)}", module, "-", f"{type(exc).__name__}: {exc}"))
        sys.modules.pop(module, None)
        return
    calls = _call_lines(path, cls.__name__)
    instances = [v for v in vars(mod).values() if isinstance(v, cls)]
    for decl in instances:
        yield decl, calls.get(decl.name, Location(rel))


def _yaml_system(path: Path, problems: list[Problem]) -> tuple[System, Location] | None:
    rel = _relative(path)
    try:
        parsed = parse_yaml_with_source_position(path.read_text(), filename=rel)
    except yaml.YAMLError as exc:
        problems.append(Problem(rel, f"file {path.parent.name}/defs.yaml", "-", f"not valid YAML: {exc}".splitlines()[0]))
        return None
    doc, positions = parsed.value, parsed.source_position_tree
    decl = f"system {(doc.get('attributes') or {}).get('name', path.parent.name)}" if isinstance(doc, dict) else f"system {path.parent.name}"

    def line_of(*loc) -> str:
        for n in range(len(loc), -1, -1):
            try:
                return str(positions.lookup(list(loc[:n])))
            except (KeyError, IndexError, TypeError):
                continue
        return rel

    if not isinstance(doc, dict) or doc.get("type") != COMPONENT_TYPE:
        problems.append(Problem(line_of("type"), decl, "type", f"expected type: {COMPONENT_TYPE}"))
        return None
    try:
        system = System.model_validate(doc.get("attributes") or {})
    except ValidationError as exc:
        problems += [_problem(line_of("attributes", *e["loc"]), decl, e) for e in exc.errors()]
        return None
    lines = {}
    for dotted, loc in _leaf_paths(doc["attributes"]):
        try:
            lines[dotted] = positions.lookup(["attributes", *loc]).start.line
        except (KeyError, IndexError, TypeError, AttributeError):
            continue
    return system, Location(rel, positions.lookup(["attributes"]).start.line, lines)


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


def _problem(location: str, decl: str, err) -> Problem:
    return Problem(location, decl, _dotted(err["loc"]) or "-", err["msg"].removeprefix("Value error, "))


def _call_lines(path: Path, cls_name: str) -> dict[str, Location]:
    """Locations of each `cls_name(name=...)` call in a file, with its keyword and binding lines."""
    rel = _relative(path)
    found: dict[str, Location] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == cls_name):
            continue
        kw = {k.arg: k for k in node.keywords if k.arg}
        name = kw.get("name")
        if not (name and isinstance(name.value, ast.Constant)):
            continue
        lines = {k: v.value.lineno for k, v in kw.items()}
        bindings = kw.get("bindings")
        if bindings and isinstance(bindings.value, ast.List):
            for i, elt in enumerate(bindings.value.elts):
                lines[f"bindings[{i}]"] = elt.lineno
                for k in getattr(elt, "keywords", []):
                    lines[f"bindings[{i}].{k.arg}"] = k.value.lineno
        found[name.value.value] = Location(rel, node.lineno, lines)
    return found


def _failing_line(exc: BaseException, path: Path) -> int | str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return frames[-1].lineno if frames else "?"


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
