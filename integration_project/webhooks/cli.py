"""`integrations webhooks`: serve the receiver; show the inbox's depth and age per system."""

from __future__ import annotations

import json
from typing import Any

import click

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
@click.option("--read-timeout", default=_DEFAULTS.read_timeout, show_default=True, type=click.FloatRange(min_open=0),
              help="Seconds a request may take to arrive whole (slower: 408, connection closed).")
@click.option("--keep-alive-timeout", default=_DEFAULTS.keep_alive_timeout, show_default=True,
              type=click.FloatRange(min_open=0), help="Seconds an idle connection stays open.")
@click.option("--max-connections-per-client", default=_DEFAULTS.max_connections_per_client, show_default=True,
              type=click.IntRange(1), help="Open connections per client address (more are closed).")
@click.option("--max-connections", default=_DEFAULTS.max_connections, show_default=True, type=click.IntRange(1),
              help="Open connections or requests overall (more: 503).")
@click.option("--commit-timeout", default=_DEFAULTS.commit_timeout, show_default=True,
              type=click.FloatRange(min_open=0), help="Seconds to wait for the inbox's commit (longer: 503).")
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


@webhooks.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_package
def status(as_json: bool, package: str) -> None:
    """Inbox depth (events not yet processed) and the oldest one's age, per system."""
    declared = [name for name, system in _landscape(package).systems.items() if system.webhook]
    inbox = Inbox(database_url())
    stats = inbox.stats(declared)
    inbox.close()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "system": s.system,
                        "depth": s.depth,
                        "oldest_age_seconds": s.oldest_age_seconds,
                        "last_received_at": s.last_received_at.isoformat() if s.last_received_at else None,
                    }
                    for s in stats.values()
                ]
            )
        )
        return
    click.echo(f"{'system':<16} {'depth':>7} {'oldest age':>12}  last received")
    for s in stats.values():
        age = "-" if s.oldest_age_seconds is None else f"{s.oldest_age_seconds:.0f} s"
        last = s.last_received_at.isoformat(timespec="seconds") if s.last_received_at else "never"
        click.echo(f"{s.system:<16} {s.depth:>7} {age:>12}  {last}")
