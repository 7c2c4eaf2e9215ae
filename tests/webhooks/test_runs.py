"""The receiver starts a flow's run through Dagster's GraphQL API as soon as an event is stored:
one run while one waits to start, none for an event no flow takes, a refusal logged, never raised.

A real dagster-webserver on loopback, over a module of plain jobs; no daemon runs, so a launched
run stays queued (the state in which it covers every later event).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from graphql import parse, validate

from integration_project import build_definitions, load_landscape
from integration_project import contract as c
from integration_project.connectors import is_live
from integration_project.webhooks import runs as r
from tests.servers import dagster_webserver, free_port, graphql

JOBS = """
import dagster as dg
@dg.op
def step():
    pass
@dg.job(tags={"integration/flow": "contacts_to_billing"})
def contacts_to_billing():
    step()
@dg.job(tags={"integration/flow": "contacts_to_desk"})
def contacts_to_desk():
    step()
@dg.job
def deals_to_billing():
    step()
defs = dg.Definitions(jobs=[contacts_to_billing, contacts_to_desk, deals_to_billing])
"""
STARTS = {"crm": {"contact.propertyChange": ["contacts_to_billing", "contacts_to_desk"],
                 "deal.creation": ["contacts_to_desk"]}}


@pytest.fixture(scope="module")
def dagster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("runs")
    (root / "jobs.py").write_text(JOBS)
    with dagster_webserver(root / "home", target=("-f", str(root / "jobs.py")), cwd=root) as url:
        deadline = time.monotonic() + 120
        while "contacts_to_billing" not in str(graphql(url, r.WORKSPACE)):  # the webserver answers before it loads
            assert time.monotonic() < deadline, "the code location did not load"
            time.sleep(0.2)
        yield url, root / "home"


def started(home: Path, job: str) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs(dg.RunsFilter(job_name=job)))


def test_the_queries_are_valid_against_dagsters_graphql_schema() -> None:
    from dagster_graphql.schema import create_schema

    schema = create_schema().graphql_schema
    for document in (r.WORKSPACE, r.WAITING_RUNS, r.LAUNCH):
        assert not validate(schema, parse(document)), document


def test_an_event_starts_each_of_its_jobs_once_while_a_run_waits(dagster: tuple[str, Path]) -> None:
    url, home = dagster

    async def scenario() -> None:
        starter = r.RunStarter(url, STARTS)
        starter.stored("crm", ["contact.propertyChange"])
        await starter.wait_idle()
        for _ in range(20):  # a burst, while the first runs wait in the queue
            starter.stored("crm", ["contact.propertyChange", "deal.creation"])
            await asyncio.sleep(0)
        await starter.aclose()

    asyncio.run(scenario())
    for job in ("contacts_to_billing", "contacts_to_desk"):
        (run,) = started(home, job)
        assert run.status == dg.DagsterRunStatus.QUEUED
        assert run.tags[c.TAG_FLOW] == job and run.tags[c.TAG_INBOX] == "crm:*"  # the job's tag, and ours
        assert run.tags[c.TAG_STARTED_BY] == "webhook"


def test_an_event_no_job_takes_starts_nothing(dagster: tuple[str, Path]) -> None:
    url, home = dagster

    async def scenario(system: str, event_type: str) -> None:
        starter = r.RunStarter(url, {"crm": {"deal.creation": ["deals_to_billing"]}})
        starter.stored(system, [event_type])
        await starter.aclose()

    asyncio.run(scenario("crm", "company.creation"))  # a type no flow takes
    asyncio.run(scenario("billing", "deal.creation"))  # the type, from another system
    assert started(home, "deals_to_billing") == []
    asyncio.run(scenario("crm", "deal.creation"))
    assert len(started(home, "deals_to_billing")) == 1


@pytest.mark.parametrize("where", ["unreachable", "no such job"])
def test_a_failed_start_is_logged_and_left_to_the_sensor(dagster: tuple[str, Path], where: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    url = dagster[0] if where == "no such job" else f"http://127.0.0.1:{free_port()}"

    async def scenario() -> None:
        starter = r.RunStarter(url, {"crm": {"contact.creation": ["not_a_job"]}})
        starter.stored("crm", ["contact.creation"])
        await starter.wait_idle()
        starter.stored("crm", ["contact.creation"])  # within the pause: not tried again
        await starter.aclose()

    with caplog.at_level(logging.WARNING, logger=r.__name__):
        asyncio.run(scenario())
    (line,) = [m for m in caplog.messages if m.startswith("could not start a run of not_a_job (the inbox sensor will; next try in 5 s)")]
    if where == "no such job":
        assert "no code location in Dagster's workspace has a job named not_a_job" in line


def test_a_contact_change_starts_its_sources_one_realtime_job() -> None:
    """The example's CRM contact events start one job, which delivers to every realtime consumer."""
    landscape = load_landscape("definitions")
    starts = r.webhook_jobs(landscape)
    assert starts["crm"]["contact.propertyChange"] == ["customer_crm_realtime"]
    job = build_definitions(landscape).resolve_job_def("customer_crm_realtime")
    consumers = {k.path[0] for k in job.asset_layer.selected_asset_keys} - {"crm", "hub"}
    realtime = {f.consumer.name for f in landscape.flows()
                if f.object.name == "customer" and f.mode == "realtime" and is_live(f)}
    assert consumers == realtime and len(realtime) >= 2
