"""The inbox sensor beside the receiver's own run starts: it skips while a run of its job waits to
start, and for a job the receiver starts it takes only the events left pending over 30 s."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from integration_project import build_definitions, load_landscape
from integration_project import contract as c
from integration_project.orchestration.sensors import BACKSTOP_SECONDS
from integration_project.webhooks import Inbox
from integration_project.webhooks.inbox import inbox_table
from integration_project.webhooks.signatures import Event

JOB = "customer_crm_realtime"  # the customer's realtime flows from the CRM, in one run


@pytest.fixture
def tick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.sqlite'}")
    defs = build_definitions(load_landscape("definitions"))
    sensor = defs.get_repository_def().get_sensor_def(f"{JOB}_sensor")
    with dg.DagsterInstance.ephemeral() as instance:

        def evaluate() -> dg.SensorExecutionData:
            context = dg.build_sensor_context(instance=instance, cursor="0", resources=defs.resources)
            return sensor.evaluate_tick(context)

        yield instance, evaluate


def run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, **tags: str) -> None:
    instance.add_run(dg.DagsterRun(job_name=JOB, run_id=str(uuid.uuid4()), status=status, tags=tags))


def stored(n: int, age: timedelta = timedelta(0)) -> list[int]:
    inbox = Inbox()
    try:
        ids = inbox.add("crm", [Event(f"{datetime.now(UTC).timestamp()}-{i}", "contact.propertyChange", b"[]")
                                for i in range(n)])
    finally:
        inbox.close()
    with sa.create_engine(os.environ["INTEGRATIONS_DATABASE_URL"]).begin() as connection:  # as if received `age` ago
        connection.execute(sa.update(inbox_table).where(inbox_table.c.id.in_(ids))
                           .values(received_at=datetime.now(UTC) - age))
    return ids


def test_pending_events_start_a_run_covering_them(tick) -> None:
    _, evaluate = tick
    ids = stored(3)
    (request,) = evaluate().run_requests
    assert request.tags[c.TAG_INBOX] == f"crm:{ids[0]}:{ids[-1]}"


# (a queued run needs a code location's origin; the receiver's test has real ones, queued)
@pytest.mark.parametrize("status", [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING])
def test_the_sensor_skips_while_a_run_of_its_job_waits_to_start(tick, status) -> None:
    instance, evaluate = tick
    stored(3)
    run(instance, status)
    result = evaluate()
    assert not result.run_requests and "waits to start" in (result.skip_message or "")
    assert result.cursor == "0"  # the events stay for the run, or the next tick


def test_for_a_job_the_receiver_starts_only_events_left_pending_get_a_run(tick) -> None:
    instance, evaluate = tick
    run(instance, dg.DagsterRunStatus.SUCCESS, **{c.TAG_STARTED_BY: "webhook"})
    fresh = stored(2)
    result = evaluate()
    assert not result.run_requests and "the webhook receiver starts" in (result.skip_message or "")
    left = stored(2, age=timedelta(seconds=BACKSTOP_SECONDS + 5))
    (request,) = evaluate().run_requests
    assert request.tags[c.TAG_INBOX] == f"crm:{left[0]}:{left[-1]}" and fresh[-1] < left[0]
