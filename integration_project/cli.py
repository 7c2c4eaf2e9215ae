"""`integrations`: the one command-line entry point for everything a user does.

Each part keeps its commands beside its code; they are imported when run, not when listed, so
`integrations --help` and `integrations check` start without Dagster (docs/performance.md).
"""

from __future__ import annotations

import importlib
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


# name -> (module, its command or a function making it, the first paragraph of the command's help).
# The help is written here so that listing the commands imports none; tests/test_cli.py keeps it
# the command's own.
COMMANDS = {
    "assess": ("integration_project.orchestration.cli", "assess",
               "Assess a source's data quality before go-live."),
    "dlq": ("integration_project.runtime.cli", "dlq",
            "The dead-letter queue: records that could not be delivered, with the reason."),
    "docs": ("docs_gen.cli", "docs", "Architecture docs generated from the loaded Dagster Definitions."),
    "impact": ("docs_gen.cli", "impact", "What is affected if SYSTEM[.OBJECT[.FIELD]] changes or goes away."),
    "init": ("integration_project.scaffold.cli", "init",
             "Write a new project into FOLDER: one object, a source and a consumer, a test; it runs as written."),
    "lint": ("docs_gen.cli", "lint", "Check the landscape: sources of truth, write-backs, realtime cycles, stubs, "
             "owners, API support ends (exit 1 on errors)."),
    "sandbox": ("integration_project.launcher", "sandbox_commands",
                "Local stand-ins for the vendor systems (CRM, billing, support, shop, ...), on 127.0.0.1."),
    "up": ("integration_project.launcher", "up",
           "Start the sandbox's stand-ins (for the systems that have one), the webhook receiver, the "
           "Dagster UI and the docs of the current project, on 127.0.0.1."),
    "webhooks": ("integration_project.webhooks.cli", "webhooks", "Inbound webhooks: the receiver and its inbox."),
}


class Integrations(click.Group):
    """The entry point: commands load when run; a missing credential or project, in any command, is
    one line and exit 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, those defined here and those of the parts."""
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, imported from its part on first use."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute, _ = COMMANDS[cmd_name]
            found = getattr(importlib.import_module(module), attribute)
            self.add_command(found if isinstance(found, click.Command) else found(), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands as click does, each not imported yet by its help written above."""
        commands = [(name, self.commands.get(name) or click.Command(name, help=COMMANDS[name][2]))
                    for name in self.list_commands(ctx)]
        commands = [(name, command) for name, command in commands if not command.hidden]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in commands])

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
        from integration_project.connectors import value_problems

        if problems := value_problems(landscape):
            raise DeclarationError(problems)
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
