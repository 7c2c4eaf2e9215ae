"""`integrations webhooks`: serve the receiver; show the inbox's backlog per system; purge it."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import sqlalchemy as sa

from integration_project.connectors import is_live
from integration_project.errors import DeclarationError
from integration_project.model import Landscape, load_landscape
from integration_project.project import landscape_package, package_option
from integration_project.settings import database_url
from integration_project.webhooks.app import ReceiverLimits, create_receiver
from integration_project.webhooks.endpoints import endpoints_from_landscape
from integration_project.webhooks.inbox import DEFAULT_RETENTION, MIN_RETENTION, Inbox
from integration_project.webhooks.runs import RunStarter, webhook_jobs

def _landscape(package: str | None) -> Landscape:
    """Load the landscape given by name, else the current project's, or stop with its problems."""
    package = landscape_package(package)
    try:
        return load_landscape(package)
    except DeclarationError as error:
        raise click.ClickException(f"the landscape {package!r} has problems:\n{error}") from error


@click.group()
def webhooks() -> None:
    """Inbound webhooks: the receiver and its inbox."""


_DEFAULTS = ReceiverLimits()


@webhooks.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8100, show_default=True, type=int, help="Port to listen on.")
@click.option("--max-body", default=_DEFAULTS.max_body, show_default=True, type=click.IntRange(1),
              help="Largest body, in bytes (more: 413).")
@click.option("--max-header-bytes", default=_DEFAULTS.max_header_bytes, show_default=True, type=click.IntRange(1),
              help="Largest request line and headers, in bytes (more: 431).")
@click.option("--read-timeout", default=_DEFAULTS.read_timeout, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds a request may take to arrive whole (slower: 408, connection closed).")
@click.option("--keep-alive-timeout", default=_DEFAULTS.keep_alive_timeout, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Seconds an idle connection stays open.")
@click.option("--max-connections-per-client", default=_DEFAULTS.max_connections_per_client, show_default=True,
              type=click.IntRange(1), help="Open connections per client address (more are closed).")
@click.option("--max-connections", default=_DEFAULTS.max_connections, show_default=True, type=click.IntRange(1),
              help="Open connections or requests overall (more: 503).")
@click.option("--commit-timeout", default=_DEFAULTS.commit_timeout, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Seconds to wait for the inbox's commit (longer: 503).")
@click.option("--reuse-port", is_flag=True,
              help="Share the port with other `serve` processes (SO_REUSEPORT), to run several on one PostgreSQL inbox.")
@click.option("--dagster-url", envvar="INTEGRATIONS_DAGSTER_URL", metavar="URL",
              help="Dagster's webserver: each stored event starts its flows' runs there at once "
                   "(else the inbox sensors start them, within 5 s).")
@package_option
def serve(host: str, port: int, reuse_port: bool, dagster_url: str | None, package: str | None, **limits: Any) -> None:
    """Receive POST /webhooks/<system> for every system that declares a webhook.

    Each system's secret is read from the environment variable it declares (several secrets
    separated by spaces while rotating). Events go to the inbox in the hub store. Refusals are
    logged at WARNING with the system, the reason and a request id. With `--reuse-port`, several
    processes serve one port (the kernel spreads connections over them); each keeps its own
    limits, so a client may hold `--max-connections-per-client` connections to each.
    """
    import uvicorn

    from integration_project.webhooks.server import log_config, receiver_config, shared_socket  # uvicorn only then

    landscape = _landscape(package)
    try:
        endpoints = endpoints_from_landscape(landscape)
    except (KeyError, ValueError) as error:
        raise click.ClickException(str(error.args[0])) from error
    if not endpoints:
        raise click.ClickException(f"no system in {landscape_package(package)!r} declares a webhook")
    settings = ReceiverLimits(**limits)
    runs = RunStarter(dagster_url, webhook_jobs(landscape)) if dagster_url else None
    app = create_receiver(endpoints, Inbox(database_url()), settings, runs)
    click.echo(f"receiving webhooks for {', '.join(endpoints)} at http://{host}:{port}/webhooks/<system>")
    server = uvicorn.Server(receiver_config(app, settings, host=host, port=port, log_config=log_config()))
    server.run(sockets=[shared_socket(host, port)] if reuse_port else None)


def _subscribed(landscape: Landscape) -> dict[str, set[str]]:
    """Per system, the event types some flow turns into runs (each such flow has an inbox sensor)."""
    return {system: set(types) for system, types in webhook_jobs(landscape).items()}


@dataclass
class _Health:
    """One system's line of `webhooks status`."""

    system: str
    subscribed_types: list[str]
    last_received_at: str | None
    backlog: int = 0
    oldest_backlog_age_seconds: float | None = None
    ignored: int = 0
    ignored_types: dict[str, int] = field(default_factory=dict)


@webhooks.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@package_option
def status(as_json: bool, package: str | None) -> None:
    """Per system: the backlog (unprocessed events a flow will process) and its oldest age, apart
    from the ignored events no flow subscribes to (which are never processed, so they only age)."""
    landscape = _landscape(package)
    subscribed = _subscribed(landscape)
    declared = [name for name, system in landscape.systems.items() if system.webhook]
    inbox = Inbox(database_url())
    try:
        last = {s.system: s.last_received_at for s in inbox.stats(declared).values()}
        pending = inbox.pending_by_type()
    finally:
        inbox.close()
    now = datetime.now(UTC)
    rows = {name: _Health(name, sorted(subscribed.get(name, ())), received.isoformat() if received else None)
            for name, received in last.items()}  # sorted by system, as stats() returns them
    for p in pending:
        row = rows[p.system]
        if p.event_type in subscribed.get(p.system, ()):
            age = (now - p.oldest_received_at).total_seconds()
            row.backlog += p.count
            row.oldest_backlog_age_seconds = max(age, row.oldest_backlog_age_seconds or 0.0)
        else:
            row.ignored += p.count
            row.ignored_types[p.event_type] = p.count
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows.values()]))
        return
    if not declared:
        click.echo(f"no system declares a webhook ({', '.join(sorted(landscape.systems))} send none)")
        return
    click.echo(f"{'system':<16} {'backlog':>8} {'oldest':>9} {'ignored':>8}  last received")
    for row in rows.values():
        oldest = "-" if row.oldest_backlog_age_seconds is None else f"{row.oldest_backlog_age_seconds:.0f} s"
        received = row.last_received_at[:19] if row.last_received_at else "never"
        click.echo(f"{row.system:<16} {row.backlog:>8} {oldest:>9} {row.ignored:>8}  {received}")
    ignored = [f"{row.system} " + ", ".join(f"{kind} ({n})" for kind, n in row.ignored_types.items())
               for row in rows.values() if row.ignored]
    if ignored:
        click.echo("ignored (no flow subscribes to them; never processed): " + "; ".join(ignored))


class _Age(click.ParamType):
    """An age such as 7d, 36h, 90m or 600s."""

    name = "age"
    _UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip()
        if not (text[:-1].isdigit() and text[-1:] in self._UNITS):
            self.fail(f"{value!r} is not an age like 7d, 36h, 90m or 600s", param, ctx)
        age = timedelta(**{self._UNITS[text[-1]]: int(text[:-1])})
        if age < MIN_RETENTION:
            self.fail(f"{value!r} is under {self.show(MIN_RETENTION)}, twice the signature window", param, ctx)
        return age

    @staticmethod
    def show(age: timedelta) -> str:
        """The age in its largest whole unit: 7d, 36h, 90m, 600s."""
        seconds = int(age.total_seconds())
        unit, size = next((u, n) for u, n in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)) if seconds % n == 0)
        return f"{seconds // size}{unit}"


@webhooks.command()
@click.option("--older-than", type=_Age(), help="Purge every system's events older than this, instead of each "
              "system's declared retention (webhook.retention_days).")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@package_option
def purge(older_than: timedelta | None, dry_run: bool, as_json: bool, package: str | None) -> None:
    """Delete processed events older than their system's retention; unprocessed events stay.

    The daily schedule `webhook_inbox_purge_schedule` does the same. Exit status: 0 done (or
    nothing to purge), 1 the landscape has problems or the hub store cannot be reached, 2 bad usage.
    """
    if older_than is None:
        systems = _landscape(package).systems.values()
        retention = {s.name: timedelta(days=s.webhook.retention_days) for s in systems if s.webhook}
    else:
        retention = {}
    default = older_than or DEFAULT_RETENTION
    url = database_url()
    try:
        inbox = Inbox(url)
        try:
            counts = dict.fromkeys(retention, 0) | inbox.purge(retention, default, dry_run)
        finally:
            inbox.close()
    except sa.exc.OperationalError as error:
        shown = sa.make_url(url).render_as_string(hide_password=True)
        raise click.ClickException(f"cannot reach the hub store at {shown}: {error.orig}") from error
    rows = [(system, retention.get(system, default), n) for system, n in sorted(counts.items())]
    if as_json:
        click.echo(json.dumps({
            "dry_run": dry_run,
            "systems": [{"system": s, "older_than_seconds": age.total_seconds(), "events": n} for s, age, n in rows],
            "total": sum(n for *_, n in rows),
        }))
        return
    verb = "would purge" if dry_run else "purged"
    click.echo(f"{'system':<16} {'older than':>12} {verb:>12}")
    for system, age, n in rows:
        click.echo(f"{system:<16} {_Age.show(age):>12} {n:>12}")
    click.echo(f"{'total':<16} {'':>12} {sum(n for *_, n in rows):>12}")
