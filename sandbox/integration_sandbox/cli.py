"""`integrations sandbox up|down|status|env|seed|faults`: run the local stand-ins for the vendor systems."""

from __future__ import annotations

import base64
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import click
import httpx
from pydantic import ValidationError

from integration_project.errors import DeclarationError
from integration_project.project import landscape_package, package_option
from integration_project.settings import data_dir as default_data_dir

from ._config import DEFAULT_PORTS, SYSTEMS
from ._faults import Faults
from ._runner import Sandbox, SandboxError, answers, recorded, reseed, running, stop_running

EXIT_FAILED = 1
EXIT_NOT_RUNNING = 3


def sandbox_folder(value: Path | None) -> Path:
    """The sandbox's folder: the one given, else the data folder's sandbox/."""
    return (value or default_data_dir() / "sandbox").resolve()


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or key not in SYSTEMS:
            raise click.BadParameter(
                f"expected SYSTEM={what.upper()} with SYSTEM one of {', '.join(SYSTEMS)}; got {value!r}")
        pairs[key] = rest
    return pairs


def _systems(values: tuple[str, ...]) -> list[str]:
    chosen = [s for value in values for s in value.split(",") if s] or list(SYSTEMS)
    unknown = [s for s in chosen if s not in SYSTEMS]
    if unknown:
        raise click.BadParameter(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    return chosen


def _reasons(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())


def _fail(message: str, code: int = EXIT_FAILED) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder for the systems' state and logs [default: $INTEGRATIONS_DATA_DIR/sandbox, i.e. .data/sandbox].")
systems_option = click.option("--system", "systems", multiple=True, metavar="NAME[,NAME]",
                              help=f"Systems to act on (repeatable) [default: all: {', '.join(SYSTEMS)}].")
seed_option = click.option("--seed", type=int, default=42, show_default=True, help="Seed of the generated data.")
size_option = click.option("--size", type=click.IntRange(1, 1_000_000), default=50, show_default=True,
                           help="Records per main object (e.g. CRM contacts), 1 to 1,000,000.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def sandbox() -> None:
    """Local stand-ins for the vendor systems (CRM, billing, support, shop, ...), on 127.0.0.1."""


@sandbox.command()
@data_dir_option
@systems_option
@click.option("--port", "ports", multiple=True, metavar="SYSTEM=PORT",
              help="Port of a system (repeatable; 0 picks a free one). Defaults: "
              + ", ".join(f"{s} {p}" for s, p in DEFAULT_PORTS.items()) + ".")
@click.option("--token", "tokens", multiple=True, metavar="SYSTEM=TOKEN", help="API token of a system (repeatable).")
@seed_option
@size_option
@click.option("--faults", "fault_specs", multiple=True, metavar="SYSTEM=JSON",
              help='Faults of a system from the start (repeatable), e.g. crm=\'{"error_rate": 0.1}\'.')
@click.option("--webhook-url", default=None,
              help="Where the systems post their signed webhook events; {system} stands for each one's name.")
@click.option("--timeout", type=float, default=180.0, show_default=True, help="Seconds to wait for every system.")
def up(data_dir: Path | None, systems: tuple[str, ...], ports: tuple[str, ...], tokens: tuple[str, ...],
       fault_specs: tuple[str, ...], seed: int, size: int, webhook_url: str | None, timeout: float) -> None:
    """Start the systems in the background and wait until every one answers."""
    chosen = _systems(systems)
    try:
        port_map = {k: int(v) for k, v in _pairs(ports, "port").items()}
    except ValueError:
        raise click.BadParameter("a port must be a number", param_hint="--port") from None
    try:
        fault_map = {k: Faults.model_validate_json(v) for k, v in _pairs(fault_specs, "json").items()}
    except ValidationError as exc:
        raise click.BadParameter(_reasons(exc), param_hint="--faults") from None
    folder = sandbox_folder(data_dir)
    sb = Sandbox(folder, chosen, port_map, seed, size, tokens=_pairs(tokens, "token"), faults=fault_map,
                 webhook_url=webhook_url, startup_timeout=timeout, detach=True)
    try:
        sb.start()
    except SandboxError as exc:
        _fail(str(exc))
    for system in chosen:
        click.echo(f"{system:<11} {sb.url(system)}")
    click.echo(f"sandbox up: {len(chosen)} systems, data in {folder}; stop with `integrations sandbox down`")


@sandbox.command()
@data_dir_option
def down(data_dir: Path | None) -> None:
    """Stop a running sandbox."""
    stopped = stop_running(sandbox_folder(data_dir))
    if not stopped:
        _fail(f"no sandbox is running from {sandbox_folder(data_dir)}", EXIT_NOT_RUNNING)
    click.echo(f"sandbox down: stopped {', '.join(s.system for s in stopped)}")


@sandbox.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(data_dir: Path | None, as_json: bool) -> None:
    """Show which systems run, where, and whether each answers (exit 1 if one does not, 3 if none runs)."""
    systems = recorded(sandbox_folder(data_dir))
    rows = [{"system": s.system, "url": s.url, "pid": s.pid, "alive": s.alive(),
             "answers": s.alive() and answers(s.system, s.url, s.token)} for s in systems]
    if as_json:
        click.echo(json.dumps(rows))
    elif rows:
        for row in rows:
            state = "ok" if row["answers"] else "NOT ANSWERING" if row["alive"] else "STOPPED (see its log)"
            click.echo(f"{row['system']:<11} {row['url']:<24} pid {row['pid']:<8} {state}")
    else:
        click.echo(f"no sandbox is running from {sandbox_folder(data_dir)}")
    if not any(row["alive"] for row in rows):
        sys.exit(EXIT_NOT_RUNNING)
    if not all(row["answers"] for row in rows):
        sys.exit(EXIT_FAILED)


@sandbox.command("seed")
@data_dir_option
@systems_option
@seed_option
@size_option
def seed_command(data_dir: Path | None, systems: tuple[str, ...], seed: int, size: int) -> None:
    """Wipe the (stopped) systems' data and generate it afresh; prints where each seed report is."""
    folder = sandbox_folder(data_dir)
    try:
        reports = reseed(folder, _systems(systems), seed, size)
    except SandboxError as exc:
        _fail(str(exc))
    for system, report in reports.items():
        if report is None:
            click.echo(f"{system:<11} seeds itself at its next start")
            continue
        counts = ", ".join(f"{v} {k}" for k, v in report["counts"].items())
        click.echo(f"{system:<11} {counts}; report {folder / f'{system}.seed-report.json'}")


@sandbox.command()
@data_dir_option
@click.argument("system", type=click.Choice(SYSTEMS))
@click.option("--error-rate", type=float, help="Share of requests answered 500/502/503.")
@click.option("--rate-limit-rate", type=float, help="Share answered 429 with Retry-After.")
@click.option("--retry-after", "retry_after_seconds", type=int, help="Retry-After seconds on injected 429s.")
@click.option("--timeout-rate", type=float, help="Share that hang --timeout-seconds, then 504.")
@click.option("--timeout-seconds", type=float, help="How long a timed-out request hangs.")
@click.option("--reset-rate", type=float, help="Share whose connection drops mid-response.")
@click.option("--malformed-rate", type=float, help="Share answered 200 with a truncated JSON body.")
@click.option("--latency-ms", type=int, help="Milliseconds added to every request.")
@click.option("--deprecation", help="Deprecation header value (e.g. an HTTP date).")
@click.option("--sunset", help="Sunset header value (an HTTP date).")
@click.option("--rename", "renames", multiple=True, metavar="OLD=NEW",
              help="Rename a JSON field in responses (repeatable).")
@click.option("--renamed-in-version", help="Rename only for requests asking for this API version (e.g. 2025-01).")
@click.option("--clear", is_flag=True, help="Remove every fault first.")
def faults(data_dir: Path | None, system: str, renames: tuple[str, ...], clear: bool, **settings: Any) -> None:
    """Show a running system's faults, or change them live (unset options keep their value)."""
    live = {s.system: s for s in running(sandbox_folder(data_dir))}
    if system not in live:
        _fail(f"{system} is not running from {sandbox_folder(data_dir)}", EXIT_NOT_RUNNING)
    target = live[system]
    headers = {"Authorization": f"Bearer {target.token}"}
    if system == "support":  # the desk takes its API token as Zendesk does, Basic {email}/token
        basic = base64.b64encode(f"agent@example.com/token:{target.token}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}
    url = target.url + "/_sandbox/faults"
    try:
        current = {} if clear else httpx.get(url, headers=headers, timeout=5).raise_for_status().json()
        changes = {k: v for k, v in settings.items() if v is not None}
        if renames:
            changes["renamed_fields"] = {old: new for old, _, new in (r.partition("=") for r in renames)}
        if changes or clear:
            body = Faults.model_validate({**current, **changes}).model_dump()
            current = httpx.put(url, headers=headers, json=body, timeout=5).raise_for_status().json()
    except ValidationError as exc:
        _fail(_reasons(exc))
    except httpx.HTTPError as exc:
        _fail(f"{system} did not accept the faults: {exc}")
    click.echo(json.dumps(current, indent=1))


@sandbox.command("env")
@data_dir_option
@package_option
@click.option("--json", "as_json", is_flag=True, help="Print the variables as a JSON object.")
def env_command(data_dir: Path | None, package: str | None, as_json: bool) -> None:
    """Print the environment the landscape reads (base URLs, tokens, secrets) for the running sandbox.

    In another shell: eval "$(integrations sandbox env)". Exit 3 if no sandbox runs.
    """
    from integration_project.model import load_landscape

    from .landscape import sandbox_env

    folder = sandbox_folder(data_dir)
    attached = Sandbox.attach(folder)
    if not attached.systems:
        _fail(f"no sandbox is running from {folder}", EXIT_NOT_RUNNING)
    package = landscape_package(package)
    try:
        landscape = load_landscape(package)
    except DeclarationError as exc:
        raise click.ClickException(f"the landscape {package!r} has {len(exc.problems)} problem(s); "
                                   "`integrations check` lists them") from None
    variables = dict(sorted(sandbox_env(landscape, attached).items()))
    click.echo(json.dumps(variables, indent=1) if as_json else
               "\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items()))
