"""`integrations`: the one command-line entry point for everything a user does."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from integration_project.errors import CredentialError, DeclarationError
from integration_project.project import PROJECT_ENV, ProjectNotFound, landscape_package, package_option

EXIT_UNANSWERABLE = 2  # the command could not run: a setting is missing

if TYPE_CHECKING:
    from integration_project.model import Landscape


class Integrations(click.Group):
    """The entry point: a missing credential or project, in any command, is one line and exit 2."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; say which environment variable a missing credential is read from."""
        try:
            return super().invoke(ctx)
        except CredentialError as exc:
            click.echo(f"error: {exc.env_name} is not set: the landscape reads a credential from it "
                       f"(for the sandbox's: eval \"$(integrations sandbox env)\")", err=True)
            ctx.exit(EXIT_UNANSWERABLE)
        except ProjectNotFound as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_UNANSWERABLE)


@click.group(cls=Integrations, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="integration-project")
@click.option("--project", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help=f"The project to work on [env {PROJECT_ENV}; default: the nearest one from here up].")
def main(project: Path | None) -> None:
    """Integration-as-code on Dagster: declare systems once, run the syncs, generate the docs."""
    if project is not None:  # in the environment, so the processes a command starts follow it too
        os.environ[PROJECT_ENV] = str(project.resolve())


@main.command()
@package_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check(package: str | None, as_json: bool) -> None:
    """Validate every declaration; list every problem, one per line (exit 1 if any)."""
    from integration_project.model import load_landscape

    package = landscape_package(package)
    try:
        landscape = load_landscape(package)
    except DeclarationError as exc:
        if as_json:
            click.echo(json.dumps([p.__dict__ for p in exc.problems], indent=1))
        else:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            click.echo(f"{len(exc.problems)} problem(s) in {package}", err=True)
        sys.exit(1)
    except ModuleNotFoundError as exc:
        click.echo(f"error: cannot import the landscape package {package!r}: {exc}", err=True)
        sys.exit(2)
    from integration_project.connectors import is_live

    flows = landscape.flows()
    # an object no live flow consumes still runs its source -> hub leg (as the docs list it)
    legs = sum(1 for o in landscape.objects if not any(is_live(f) for f in flows if f.object.name == o))
    planned = planned_legs(landscape)
    summary = {"systems": len(landscape.systems), "objects": len(landscape.objects),
               "flows": len(flows), "hub_only_legs": legs, "problems": [], "planned": planned}
    if not as_json:
        for name, reason in planned.items():  # declared but not run: a warning, not a failure
            click.echo(f"warning: {name} is planned, not run: {reason}", err=True)
    click.echo(json.dumps(summary) if as_json else
               f"ok: {summary['systems']} systems (+ the hub), {summary['objects']} objects, "
               f"{summary['flows']} flows to consumers" + (f", {legs} hub-only leg{'s' if legs != 1 else ''}" if legs else ""))


def planned_legs(landscape: Landscape) -> dict[str, str]:
    """Each leg (ingest or flow) that does not run, with why."""
    from integration_project.connectors import flow_reason, ingest_reason

    found = {leg.name: ingest_reason(leg) for leg in landscape.ingests().values()}
    found.update((flow.name, flow_reason(flow)) for flow in landscape.flows())
    return {name: reason for name, reason in found.items() if reason}


def _register() -> None:
    """Attach each part's commands; each part keeps its commands beside its code."""
    from docs_gen.cli import docs, impact, lint
    from integration_project.launcher import sandbox_commands, up
    from integration_project.orchestration.cli import assess
    from integration_project.runtime.cli import dlq
    from integration_project.scaffold.cli import init
    from integration_project.webhooks.cli import webhooks

    for command in (init, up, sandbox_commands(), webhooks, dlq, assess, docs, lint, impact):
        main.add_command(command)


_register()
