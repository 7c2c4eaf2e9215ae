"""`integrations webhooks`: serve the receiver; show the inbox's depth and age per system; purge it."""

from __future__ import annotations

import json
from datetime import timedelta

import click
import sqlalchemy as sa

from integration_project.errors import DeclarationError
from integration_project.model import Landscape, load_landscape
from integration_project.settings import database_url
from integration_project.webhooks.app import DEFAULT_MAX_BODY, create_receiver
from integration_project.webhooks.endpoints import endpoints_from_landscape
from integration_project.webhooks.inbox import DEFAULT_RETENTION, MIN_RETENTION, Inbox

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


@webhooks.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8100, show_default=True, type=int, help="Port to listen on.")
@click.option("--max-body", default=DEFAULT_MAX_BODY, show_default=True, type=int, help="Largest body, in bytes.")
@_package
def serve(host: str, port: int, max_body: int, package: str) -> None:
    """Receive POST /webhooks/<system> for every system that declares a webhook.

    Each system's secret is read from the environment variable it declares (several secrets
    separated by spaces while rotating). Events go to the inbox in the hub store.
    """
    import uvicorn

    try:
        endpoints = endpoints_from_landscape(_landscape(package))
    except (KeyError, ValueError) as error:
        raise click.ClickException(str(error.args[0])) from error
    if not endpoints:
        raise click.ClickException(f"no system in {package!r} declares a webhook")
    app = create_receiver(endpoints, Inbox(database_url()), max_body=max_body)
    click.echo(f"receiving webhooks for {', '.join(endpoints)} at http://{host}:{port}/webhooks/<system>")
    uvicorn.run(app, host=host, port=port, server_header=False)


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
@_package
def purge(older_than: timedelta | None, dry_run: bool, as_json: bool, package: str) -> None:
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
