"""`integrations webhooks`: serve the receiver; show the inbox's backlog per system."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import click

from integration_project.connectors import is_live
from integration_project.errors import DeclarationError
from integration_project.model import Landscape, load_landscape
from integration_project.settings import database_url
from integration_project.webhooks.app import ReceiverLimits, create_receiver
from integration_project.webhooks.endpoints import endpoints_from_landscape
from integration_project.webhooks.inbox import Inbox

_package = click.option(
    "--package", default="definitions", show_default=True, help="The landscape package that declares the systems."
)


def _landscape(package: str) -> Landscape:
    """Load the landscape, or stop with its problems."""
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
@_package
def serve(host: str, port: int, package: str, **limits: Any) -> None:
    """Receive POST /webhooks/<system> for every system that declares a webhook.

    Each system's secret is read from the environment variable it declares (several secrets
    separated by spaces while rotating). Events go to the inbox in the hub store. Refusals are
    logged at WARNING with the system, the reason and a request id.
    """
    import uvicorn

    from integration_project.webhooks.server import log_config, receiver_config  # uvicorn only when serving

    try:
        endpoints = endpoints_from_landscape(_landscape(package))
    except (KeyError, ValueError) as error:
        raise click.ClickException(str(error.args[0])) from error
    if not endpoints:
        raise click.ClickException(f"no system in {package!r} declares a webhook")
    settings = ReceiverLimits(**limits)
    app = create_receiver(endpoints, Inbox(database_url()), settings)
    click.echo(f"receiving webhooks for {', '.join(endpoints)} at http://{host}:{port}/webhooks/<system>")
    uvicorn.Server(receiver_config(app, settings, host=host, port=port, log_config=log_config())).run()


def _subscribed(landscape: Landscape) -> dict[str, set[str]]:
    """Per system, the event types some flow turns into runs: the `events` of a source binding
    whose object has a live realtime flow (each such flow gets an inbox sensor)."""
    subscribed: dict[str, set[str]] = defaultdict(set)
    for flow in landscape.flows():
        if flow.mode == "realtime" and flow.source.webhook and is_live(flow):
            subscribed[flow.source.name] |= set(flow.source_binding.events)
    return subscribed


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
@_package
def status(as_json: bool, package: str) -> None:
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
    click.echo(f"{'system':<16} {'backlog':>8} {'oldest':>9} {'ignored':>8}  last received")
    for row in rows.values():
        oldest = "-" if row.oldest_backlog_age_seconds is None else f"{row.oldest_backlog_age_seconds:.0f} s"
        received = row.last_received_at[:19] if row.last_received_at else "never"
        click.echo(f"{row.system:<16} {row.backlog:>8} {oldest:>9} {row.ignored:>8}  {received}")
    ignored = [f"{row.system} " + ", ".join(f"{kind} ({n})" for kind, n in row.ignored_types.items())
               for row in rows.values() if row.ignored]
    if ignored:
        click.echo("ignored (no flow subscribes to them; never processed): " + "; ".join(ignored))
