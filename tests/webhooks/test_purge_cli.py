"""`integrations webhooks purge`: each system's declared retention, never an unprocessed event."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from integration_project.cli import main
from integration_project.settings import DATABASE_URL_ENV
from integration_project.webhooks import Event, Inbox
from integration_project.webhooks.inbox import inbox_table
from tests.model.conftest import CRM, OBJECTS, landscape_package  # noqa: F401 - the fixture

# crm keeps its processed events two days, billing thirty; neither sets the default week
CRM_HOOKED = CRM.replace('    bindings=[', '    webhook=Webhook(scheme="hubspot_v3", secret_env="CRM_SECRET", '
                         'retention_days=2),\n    bindings=[').replace("import Api,", "import Api, Webhook,")
BILLING_HOOKED = '''
type: integration_project.SystemComponent
attributes:
  name: billing
  title: Billing
  vendor: Stripe
  kind: stripe
  owners: [team:finance]
  description: Billing.
  webhook: {scheme: stripe, secret_env: BILLING_SECRET, retention_days: 30}
  bindings:
    - object: invoice
      role: source
      purpose: Billing issues invoices.
      resource: invoices
'''


def add_events(url: str, system: str, processed: int, waiting: int, days_old: float) -> None:
    """Store events of a system received `days_old` ago, some of them processed."""
    inbox = Inbox(url)
    ids = inbox.add(system, [Event(f"{system}_{n}", "t", b"{}") for n in range(processed + waiting)])
    inbox.mark_processed(ids[:processed])
    with inbox._engine.begin() as connection:
        connection.execute(sa.update(inbox_table).where(inbox_table.c.id.in_(ids))
                           .values(received_at=datetime.now(UTC) - timedelta(days=days_old)))
    inbox.close()


def left(url: str) -> dict[str, tuple[int, int]]:
    """Per system: (processed, unprocessed) events in the inbox."""
    inbox = Inbox(url)
    rows = inbox.get(range(1, 1000))
    inbox.close()
    return {s: (sum(1 for r in rows if r.system == s and r.processed_at),
                sum(1 for r in rows if r.system == s and not r.processed_at)) for s in sorted({r.system for r in rows})}


@pytest.fixture
def hooked(landscape_package: Callable[..., str], sqlite_url: str) -> str:  # noqa: F811 - the fixture
    """A landscape whose crm keeps events 2 days and billing 30; an inbox with 10-day-old events
    of both and of `legacy`, a system no longer declared (the default week)."""
    for system in ("crm", "billing", "legacy"):
        add_events(sqlite_url, system, processed=3, waiting=2, days_old=10)
    return landscape_package(OBJECTS, crm_py=CRM_HOOKED, billing__defs_yaml=BILLING_HOOKED)


def purge(url: str, *args: str) -> tuple[int, str]:
    """Run the command on this hub store; its exit code and output."""
    result = CliRunner().invoke(main, ["webhooks", "purge", *args], env={DATABASE_URL_ENV: url})
    return result.exit_code, result.output


def test_purge_honours_each_declared_retention_and_keeps_unprocessed(hooked: str, sqlite_url: str) -> None:
    """A dry run counts without deleting; the purge then deletes the same, unprocessed events stay."""
    code, out = purge(sqlite_url, "--package", hooked, "--dry-run", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report == {"dry_run": True, "total": 6, "systems": [
        {"system": "billing", "older_than_seconds": 30 * 86400, "events": 0},
        {"system": "crm", "older_than_seconds": 2 * 86400, "events": 3},
        {"system": "legacy", "older_than_seconds": 7 * 86400, "events": 3},
    ]}
    assert left(sqlite_url) == {"billing": (3, 2), "crm": (3, 2), "legacy": (3, 2)}
    code, out = purge(sqlite_url, "--package", hooked, "--json")
    assert code == 0, out
    assert json.loads(out) == report | {"dry_run": False}
    assert left(sqlite_url) == {"billing": (3, 2), "crm": (0, 2), "legacy": (0, 2)}


def test_older_than_applies_to_every_system_without_the_landscape(hooked: str, sqlite_url: str) -> None:
    """--older-than overrides every retention; the table names each system and the total."""
    code, out = purge(sqlite_url, "--older-than", "9d", "--package", "no_such_landscape")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["system", "older", "than", "purged"]
    assert [line.split() for line in lines[1:]] == [
        ["billing", "9d", "3"], ["crm", "9d", "3"], ["legacy", "9d", "3"], ["total", "9"]]
    assert left(sqlite_url) == {"billing": (0, 2), "crm": (0, 2), "legacy": (0, 2)}


@pytest.mark.parametrize(("age", "message"), [
    ("5m", "under 10m, twice the signature window"),
    ("7 days", "not an age like 7d"),
    ("-3d", "not an age like 7d"),
])
def test_a_bad_age_is_a_usage_error_and_deletes_nothing(hooked: str, sqlite_url: str, age: str, message: str) -> None:
    code, out = purge(sqlite_url, "--older-than", age)
    assert code == 2
    assert message in out
    assert left(sqlite_url) == {"billing": (3, 2), "crm": (3, 2), "legacy": (3, 2)}


def test_a_bad_declaration_stops_the_purge_with_its_line(
        landscape_package: Callable[..., str], sqlite_url: str) -> None:  # noqa: F811 - the fixture
    """retention_days under a day is refused where it is declared; nothing is purged."""
    add_events(sqlite_url, "crm", processed=1, waiting=0, days_old=10)
    package = landscape_package(OBJECTS, crm_py=CRM_HOOKED.replace("retention_days=2", "retention_days=0"))
    code, out = purge(sqlite_url, "--package", package)
    assert code == 1
    assert "crm.py" in out and "retention_days" in out and "at least 1 day" in out
    assert "Traceback" not in out
    assert left(sqlite_url) == {"crm": (1, 0)}


def test_an_unreachable_hub_store_exits_1_without_its_password(hooked: str) -> None:
    url = "postgresql+psycopg://someone:s3cr3t-pw@127.0.0.1:1/none"
    code, out = purge(url, "--package", hooked)
    assert code == 1
    assert "cannot reach the hub store at postgresql+psycopg://someone:***@127.0.0.1:1/none" in out
    assert "s3cr3t-pw" not in out
