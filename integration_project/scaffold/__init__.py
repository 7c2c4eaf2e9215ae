"""`integrations init DIR`: a new project with one object and two systems that runs as written.

The files are the templates under `template/` (`$name`, `$package` and `$version` replaced;
`package/` becomes the landscape package, `gitignore` `.gitignore`). What they declare, all in
YAML, needs nothing installed but the framework: an object, a CSV drop folder as its source, a
SQLite database as its consumer, and one night's export in `data/signups/` to run the flow with.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).parent / "template"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class ScaffoldError(Exception):
    """The project cannot be written: the folder is in use or a name is not usable."""


def project_name(folder: Path) -> str:
    """The distribution name for a folder: its name, lower case, runs of other characters as '-'."""
    return re.sub(r"[^a-z0-9]+", "-", folder.resolve().name.lower()).strip("-") or "landscape"


def write_project(folder: Path, package: str = "definitions") -> list[Path]:
    """Write a new project into `folder` (absent or empty); return the files written."""
    if not _IDENTIFIER.match(package):
        raise ScaffoldError(f"package {package!r} is not a Python package name (lower case, digits, _)")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ScaffoldError(f"{folder} exists and is not an empty folder")
    values = {"name": project_name(folder), "package": package, "version": version("integration-project")}
    written = []
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        parts = source.relative_to(TEMPLATE).with_suffix("").parts
        parts = tuple(package if p == "package" else ".gitignore" if p == "gitignore" else p for p in parts)
        target = folder.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(source.read_text()).substitute(values))
        written.append(target)
    return written
