"""The Definitions carry the webhook inbox's daily purge, and a run of it honours each retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dagster as dg
import sqlalchemy as sa

from integration_project import build_definitions, load_landscape
from integration_project.orchestration.maintenance import maintenance_definitions
from integration_project.orchestration.resources import HubStore
from integration_project.webhooks import Event, Inbox
from integration_project.webhooks.inbox import inbox_table
from tests.model.conftest import BILLING, CRM, OBJECTS, landscape_package  # noqa: F401 - the fixture
from tests.webhooks.test_purge_cli import BILLING_HOOKED, CRM_HOOKED


def test_the_example_definitions_purge_the_inbox_daily() -> None:
    """A job on the hub store and a daily schedule that is on from the start."""
    repo = build_definitions(load_landscape("definitions")).get_repository_def()
    schedule = repo.get_schedule_def("webhook_inbox_purge_schedule")
    assert (schedule.job_name, schedule.cron_schedule) == ("webhook_inbox_purge", "30 3 * * *")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    job = repo.get_job("webhook_inbox_purge")
    assert "hub_store" in job.get_required_resource_defs()


def test_a_landscape_without_webhooks_has_no_purge_job(
        landscape_package: Callable[..., str]) -> None:  # noqa: F811 - the fixture
    """Nothing to purge, nothing drawn in the docs."""
    defs = maintenance_definitions(load_landscape(landscape_package(OBJECTS, crm_py=CRM, billing__defs_yaml=BILLING)))
    assert not list(defs.jobs or []) and not list(defs.schedules or [])


def test_a_purge_run_keeps_each_systems_retention_and_every_unprocessed_event(
        landscape_package: Callable[..., str], tmp_path) -> None:  # noqa: F811 - the fixture
    """crm keeps 2 days, billing 30: of 10-day-old events only crm's processed ones go."""
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    inbox = Inbox(url)
    for system in ("crm", "billing"):
        ids = inbox.add(system, [Event(f"{system}_{n}", "t", b"{}") for n in range(4)])
        inbox.mark_processed(ids[:3])
    with inbox._engine.begin() as connection:
        connection.execute(sa.update(inbox_table).values(received_at=datetime.now(UTC) - timedelta(days=10)))
    landscape = load_landscape(landscape_package(OBJECTS, crm_py=CRM_HOOKED, billing__defs_yaml=BILLING_HOOKED))
    defs = dg.Definitions.merge(maintenance_definitions(landscape),
                                dg.Definitions(resources={"hub_store": HubStore(url=url)}))
    result = defs.get_job_def("webhook_inbox_purge").execute_in_process()
    assert result.success
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.event_specific_data.metadata
    assert {k: v.value for k, v in metadata.items()} == {"purged/billing": 0, "purged/crm": 3}
    left = inbox.get(range(1, 100))
    assert sorted((r.system, r.processed_at is None) for r in left) == [
        ("billing", False), ("billing", False), ("billing", False), ("billing", True), ("crm", True)]
    inbox.close()
