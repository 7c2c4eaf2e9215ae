"""Click commands: `docs build|serve|export backstage|diff|check`, `lint`, `impact`.

Exit codes: 0 fine; 1 the answer is "no" (lint errors, stale docs, builds differ); 2 the question
could not be answered (bad input, a code location that does not load). Never a traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import dagster as dg
import networkx as nx

from docs_gen.load import load as load_definitions, targets
from docs_gen import publish, site
from docs_gen.errors import DocsError
from docs_gen.graph import build_graph
from docs_gen.impact import impact as impact_of
from docs_gen.lint import report
from integration_project.contract import DAGSTER_URL_ENV


class Unanswerable(click.ClickException):
    """Bad input or a code location that does not load: exit 2 with one line."""

    exit_code = 2


def handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn DocsError and Dagster definition errors into one-line messages with exit code 2.

    A code location that does not load says why in its error's lines (a landscape's, one per
    problem): those are printed as they are, first, then one line saying what could not load.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (DocsError, dg.DagsterError) as exc:
            text, cause = str(exc), str(exc.__cause__ or "")
            if cause and text.endswith(cause) and text != cause:
                for line in cause.splitlines():
                    click.echo(line, err=True)
                text = text.removesuffix(cause).rstrip(": ")
            raise Unanswerable(text.splitlines()[0] if text else type(exc).__name__) from None

    return wrapper


def location_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--module / --workspace: which code location to document."""
    fn = click.option("--workspace", "-w", type=click.Path(path_type=Path), default=None,
                      help="workspace.yaml to read python_module code locations from "
                           "[default: the project's, else its <package>.definitions].")(fn)
    return click.option("--module", "-m", default=None, metavar="PKG.MOD[:ATTR]",
                        help="Load this module's Definitions instead of the workspace.")(fn)


dagster_url_option = click.option("--dagster-url", envvar=DAGSTER_URL_ENV, default="http://127.0.0.1:3000",
                                  show_default=True, help=f"Base URL of the Dagster UI [env {DAGSTER_URL_ENV}].")


def landscape(module: str | None, workspace: Path | None, dagster_home: Path | None = None) -> nx.MultiDiGraph:
    """Load the code location and build its graph (one location: the docs can link to its UI pages),
    with what the instance at `dagster_home` observed."""
    defs, origin = load_definitions(module, workspace)
    found = targets(module, workspace)
    location = found[0].location if len(found) == 1 else ""
    if dagster_home is None:
        return build_graph(defs, origin, location)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return build_graph(defs, origin, location, instance)


def observed_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--dagster-home: the instance whose observations (assessments) the pages show."""
    return click.option("--dagster-home", type=click.Path(path_type=Path, file_okay=False, exists=True),
                        envvar="DAGSTER_HOME", default=None, show_envvar=True,
                        help="Show what this Dagster instance observed (the latest `integrations assess`).")(fn)


def emit(data: Any, as_json: bool, text: str) -> None:
    """Print data as JSON or as the human text."""
    click.echo(json.dumps(data, indent=2, sort_keys=True) if as_json else text)


@click.group()
def docs() -> None:
    """Architecture docs generated from the loaded Dagster Definitions."""


@docs.command("build")
@location_options
@click.option("--out", type=click.Path(path_type=Path), default=Path("site"), show_default=True)
@click.option("--format", "fmt", type=click.Choice(["html", "markdown"]), default="html", show_default=True)
@dagster_url_option
@observed_option
@handled
def build(module: str | None, workspace: Path | None, out: Path, fmt: str, dagster_url: str,
          dagster_home: Path | None) -> None:
    """Build the static site (or a Markdown tree for MkDocs/TechDocs)."""
    result = site.build(landscape(module, workspace, dagster_home), out, fmt, dagster_url)
    click.echo(f"built {result.pages} pages and {result.diagrams} diagrams in {result.seconds:.1f} s "
               f"(layout {result.layout_seconds:.1f} s) into {out}; fingerprint {result.fingerprint[:12]}")
    for error in result.layout_errors:
        click.echo(f"warning: {error}", err=True)


@docs.command("serve")
@location_options
@click.option("--out", type=click.Path(path_type=Path), default=Path("site"), show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--build/--no-build", "rebuild", default=True, help="Build before serving.")
@dagster_url_option
@observed_option
@handled
def serve(module: str | None, workspace: Path | None, out: Path, port: int, rebuild: bool, dagster_url: str,
          dagster_home: Path | None) -> None:
    """Serve the site on 127.0.0.1."""
    if rebuild:
        site.build(landscape(module, workspace, dagster_home), out, "html", dagster_url)
    try:
        server = publish.serve(out, port=port)
    except OSError as exc:
        raise DocsError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from exc
    click.echo(f"docs at http://127.0.0.1:{port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


@docs.group("export")
def export() -> None:
    """Export the landscape to other tools."""


@export.command("backstage")
@location_options
@click.option("--out", type=click.Path(path_type=Path), default=None, help="File to write (default: stdout).")
@handled
def backstage(module: str | None, workspace: Path | None, out: Path | None) -> None:
    """catalog-info.yaml: System, Component, Resource and API entities with owners and dependsOn."""
    text = publish.backstage_yaml(landscape(module, workspace))
    if out:
        out.write_text(text)
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=False)


@docs.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@handled
def diff(old: Path, new: Path, as_json: bool) -> None:
    """What systems, objects, flows and owners changed between two builds (exit 1 if any)."""
    changes = publish.diff(publish.load_build(old)[0], publish.load_build(new)[0])
    lines = []
    for kind, entry in changes.items():
        lines += [f"{kind} added: {name}" for name in entry["added"]]
        lines += [f"{kind} removed: {name}" for name in entry["removed"]]
        lines += [f"{kind} changed: {name}: " + ", ".join(f"{k} {v['old']!r} -> {v['new']!r}" for k, v in facts.items())
                  for name, facts in entry["changed"].items()]
    emit(changes, as_json, "\n".join(lines) or "no differences")
    if changes:
        raise SystemExit(1)


@docs.command("check")
@location_options
@click.option("--out", type=click.Path(path_type=Path), default=Path("site"), show_default=True, help="The published build.")
@handled
def check(module: str | None, workspace: Path | None, out: Path) -> None:
    """Fail (exit 1) when the docs in --out were built from other Definitions than these."""
    current, message = publish.check(out, landscape(module, workspace))
    click.echo(message, err=not current)
    if not current:
        raise SystemExit(1)


@click.command()
@location_options
@click.option("--json", "as_json", is_flag=True, help="Print findings and topology as JSON.")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Judge the APIs' support ends at this date (YYYY-MM-DD) instead of today.")
@handled
def lint(module: str | None, workspace: Path | None, as_json: bool, today: datetime | None) -> None:
    """Check the landscape: sources of truth, write-backs, realtime cycles, stubs, owners, API support
    ends (exit 1 on errors)."""
    result = report(landscape(module, workspace), today.date() if today else None)
    topo = result["topology"]
    text = "\n".join(f"{f['severity']}: {f['rule']}: {f['subject']}: {f['message']}" for f in result["findings"])
    text += (("\n" if text else "") + f"{result['errors']} errors, {result['warnings']} warnings; "
             f"{topo['links_in_use']}/{topo['possible_links']} links in use, {topo['hub_routed_links']} via the hub, "
             f"{topo['point_to_point_links']} point-to-point")
    emit(result, as_json, text)
    if result["errors"]:
        raise SystemExit(1)


@click.command()
@click.argument("target")
@location_options
@click.option("--json", "as_json", is_flag=True, help="Print the affected things as JSON.")
@handled
def impact(target: str, module: str | None, workspace: Path | None, as_json: bool) -> None:
    """What is affected if SYSTEM[.OBJECT[.FIELD]] changes or goes away."""
    result = impact_of(landscape(module, workspace), target)
    text = "\n".join(f"{k}: {json.dumps(v) if isinstance(v, dict) else ', '.join(v) if isinstance(v, list) else v}"
                     for k, v in result.items())
    emit(result, as_json, text)
