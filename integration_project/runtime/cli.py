"""`integrations dlq …`: operating the dead-letter queue from the shell."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from datetime import timedelta
from typing import Any

import click

from integration_project.errors import DeclarationError
from integration_project.model import Landscape, load_landscape
from integration_project.project import landscape_package, package_option
from integration_project.runtime import dlq as ops
from integration_project.runtime.store import Store

_AGE = re.compile(r"^(\d+)([smhd])$")


def _landscape(package: str | None) -> Landscape:
    """The landscape given by name, else the current project's; its problems stop the command."""
    try:
        return load_landscape(landscape_package(package))
    except DeclarationError as exc:
        raise click.ClickException(f"the landscape has problems; run `integrations check`\n{exc}") from None


def _age(_ctx: Any, _param: Any, value: str | None) -> timedelta | None:
    if value is None:
        return None
    match = _AGE.match(value)
    if not match:
        raise click.BadParameter("use a number and a unit: 30m, 6h, 2d")
    n, unit = int(match[1]), match[2]
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: n})


def _filters(fn):
    for option in reversed([
        click.argument("ids", nargs=-1, type=int),
        click.option("--flow", help="Only this flow (e.g. customer_crm_to_billing), with the records "
                                    "validation rejected on its way into the hub."),
        click.option("--object", "obj", help="Only this object."),
        click.option("--reason", help="Only entries whose reason contains this text."),
        click.option("--older-than", callback=_age, help="Only entries older than this (30m, 6h, 2d)."),
        package_option,
    ]):
        fn = option(fn)
    return fn


def _select(store: Store, package: str | None, ids, flow, obj, reason, older_than, status: str = "open") -> list[dict]:
    flows = ops.legs(_landscape(package), flow) if flow else ()
    return ops.entries(store, ops.Filters(tuple(ids), flows, obj, reason, older_than, status))


@click.group()
def dlq() -> None:
    """The dead-letter queue: records that could not be delivered, with the reason."""


@dlq.command("list")
@_filters
@click.option("--status", type=click.Choice(["open", "resolved", "discarded"]), default="open", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def list_(ids, flow, obj, reason, older_than, package, status, as_json) -> None:
    """List entries: id, age, flow, stage, record, attempts, reason."""
    rows = _select(Store(), package, ids, flow, obj, reason, older_than, status)
    if as_json:
        click.echo(json.dumps([{k: v for k, v in r.items() if k != "payload"} for r in rows], default=str, indent=1))
        return
    for r in rows:
        click.echo(f"{r['id']:>6}  {ops.age(r['created_at']):>4}  {r['flow']:<34} {r['stage']:<8} "
                   f"{r['record_id'] or '-':<12} x{r['attempts']}  {r['reason']}")
    click.echo(f"{len(rows)} {status} entr{'y' if len(rows) == 1 else 'ies'}", err=True)


@dlq.command()
@click.argument("entry", type=int)
@click.option("--json", "as_json", is_flag=True)
def show(entry: int, as_json: bool) -> None:
    """One entry with its raw payload."""
    rows = [r for status in ("open", "resolved", "discarded")
            for r in ops.entries(Store(), ops.Filters(ids=(entry,), status=status))]
    if not rows:
        raise click.ClickException(f"no DLQ entry {entry}")
    row = {**rows[0], "payload": json.loads(rows[0]["payload"])}
    if as_json:
        click.echo(json.dumps(row, default=str, indent=1))
    else:
        for key, value in row.items():
            click.echo(f"{key:>11}: {json.dumps(value, default=str, indent=1) if key == 'payload' else value}")


@dlq.command()
@_filters
@click.option("--dry-run", is_flag=True, help="Show what would be sent; change nothing.")
@click.option("--json", "as_json", is_flag=True)
def replay(ids, flow, obj, reason, older_than, package, dry_run, as_json) -> None:
    """Send entries again through validation and the idempotent load: per entry its action and
    outcome (resolved, still open), and why (exit 1 if some stay open or a consumer was not reached).
    A dry run shows what would be sent and changes nothing."""
    store = Store()
    rows = _select(store, package, ids, flow, obj, reason, older_than)
    results = ops.replay(_landscape(package), store, rows, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(results, default=str, indent=1))
    else:
        for item in results:
            sent = None if not dry_run else item.get("payload") or item.get("record")
            detail = item.get("detail") or (json.dumps(sent, default=str) if sent else "")
            click.echo(f"{item['id']:>6}  {item['flow']:<34} {item['record_id'] or '-':<12} {item['action']:<8} "
                       f"{item.get('outcome', 'dry run'):<11} {detail}".rstrip())
        outcomes = Counter(str(item.get("outcome", "would be replayed")) for item in results)
        click.echo(", ".join(f"{n} {what}" for what, n in sorted(outcomes.items())) or "nothing to replay", err=True)
    if not dry_run and any(r.get("outcome") != "resolved" for r in results):
        sys.exit(1)


@dlq.command()
@_filters
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def discard(ids, flow, obj, reason, older_than, package, yes) -> None:
    """Give up on entries; each discard is recorded in the ledger."""
    store = Store()
    rows = _select(store, package, ids, flow, obj, reason, older_than)
    if rows and not yes:
        click.confirm(f"discard {len(rows)} entr{'y' if len(rows) == 1 else 'ies'}?", abort=True)
    click.echo(f"discarded {ops.discard(_landscape(package), store, rows, who='cli')}")
