"""Runs started the moment a webhook is stored, instead of at the inbox sensor's next tick.

Dagster's sensor daemon evaluates sensors at most every 5 s, which is most of a change's way to
its consumer. So the receiver, once an event is committed, asks Dagster (the webserver's GraphQL
API, as any client would) for a run of each realtime job its system and type start (one per
source leg: the change goes to the hub, then to each realtime consumer, in one run), tagged to
cover every event pending when the run begins to read (`<system>:*`, see runtime/events.Covered).

A job gets a new run only when none of its runs waits to start (queued, not started, starting):
one that has not begun reads every change stored before it does, so a burst is one run, and a
lone event waits for nothing. The inbox sensors stay the backstop: they skip while a run waits,
and start runs for whatever is left pending (Dagster down, a launch refused). A failed launch is
logged, pauses that job's launches for `PAUSE_SECONDS`, and never fails the webhook, whose event
is already stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from integration_project import contract as c
from integration_project.connectors import is_live
from integration_project.model import Landscape

logger = logging.getLogger(__name__)

PAUSE_SECONDS = 5.0  # after a failed start, a job's next events wait this long before trying again

WAITING = ["QUEUED", "NOT_STARTED", "STARTING"]  # a run in these states has not read its source yet
WORKSPACE = """query { workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on RepositoryLocation { repositories { name jobs { name } } } } } } } }"""
WAITING_RUNS = """query($filter: RunsFilter!) { runsOrError(filter: $filter, limit: 1) {
  __typename ... on Runs { results { runId } } ... on PythonError { message } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on PipelineNotFoundError { message } } }"""


def webhook_jobs(landscape: Landscape) -> dict[str, dict[str, list[str]]]:
    """Per system and event type, the jobs whose runs that event starts: the realtime job of each
    source leg with live realtime flows and webhooks (the legs that have an inbox sensor)."""
    jobs: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for flow in landscape.flows():
        if flow.mode == "realtime" and flow.source.webhook and flow.ingest.events and is_live(flow):
            for event_type in flow.ingest.events:
                jobs[flow.source.name][event_type].add(flow.ingest.realtime_name)
    return {system: {t: sorted(names) for t, names in types.items()} for system, types in jobs.items()}


class DagsterError(Exception):
    """Dagster's GraphQL API refused or could not answer."""


class RunStarter:
    """Starts jobs' runs through Dagster's GraphQL API at `url` (e.g. http://127.0.0.1:3000); `jobs`
    names, per system and event type, the jobs that event starts (`webhook_jobs`)."""

    def __init__(self, url: str, jobs: Mapping[str, Mapping[str, list[str]]], timeout: float = 10.0):
        self.jobs = jobs
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout)
        self._where: dict[str, tuple[str, str]] = {}  # job -> (code location, repository)
        self._busy: set[str] = set()
        self._again: set[str] = set()
        self._paused: dict[str, float] = {}  # job -> when its starts may be tried again (after a failure)
        self._tasks: set[asyncio.Task[None]] = set()

    def stored(self, system: str, event_types: Iterable[str]) -> None:
        """Events of these types from `system` were committed: start their jobs (in the background)."""
        wanted = {job for t in event_types for job in self.jobs.get(system, {}).get(t, ())}
        now = time.monotonic()
        for job in sorted(f for f in wanted if self._paused.get(f, 0.0) <= now):
            if job in self._busy:  # a launch of this job is under way: it looks again when done
                self._again.add(job)
                continue
            self._busy.add(job)
            task = asyncio.create_task(self._start(job, system))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Until every launch asked for so far is done (for tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Finish the launches under way, then close the connection to Dagster."""
        await self.wait_idle()
        await self._http.aclose()

    async def _start(self, job: str, system: str) -> None:
        try:
            while True:
                self._again.discard(job)
                try:
                    run_id = await self._start_unless_waiting(job, system)
                    if run_id:
                        logger.info("run %s of %s started for new %s events", run_id, job, system)
                except (httpx.HTTPError, DagsterError, ValueError) as error:
                    logger.warning("could not start a run of %s (the inbox sensor will; next try in %g s): %s",
                                   job, PAUSE_SECONDS, error)
                    self._paused[job] = time.monotonic() + PAUSE_SECONDS
                    return
                if job not in self._again:
                    return
        finally:
            self._busy.discard(job)

    async def _start_unless_waiting(self, job: str, system: str) -> str | None:
        """A new run of `job` unless one waits to start; its run id, or None."""
        waiting = await self._query(WAITING_RUNS, filter={"pipelineName": job, "statuses": WAITING})
        runs = waiting["runsOrError"]
        if runs["__typename"] != "Runs":
            raise DagsterError(runs.get("message", runs["__typename"]))
        if runs["results"]:
            return None
        location, repository = await self._job(job)
        tags = {c.TAG_INBOX: f"{system}:*", c.TAG_STARTED_BY: "webhook"}  # the job's own tags name its flows
        launched = (await self._query(LAUNCH, params={
            "selector": {"repositoryLocationName": location, "repositoryName": repository, "jobName": job},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}}))["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            self._where.pop(job, None)  # the job may have moved: look it up again next time
            problems = [e["message"] for e in launched.get("errors", [])] or [launched.get("message", "")]
            raise DagsterError(f"{launched['__typename']}: {'; '.join(p for p in problems if p)}")
        return str(launched["run"]["runId"])

    async def _job(self, job: str) -> tuple[str, str]:
        """The code location and repository that hold `job` (looked up once, then kept)."""
        if job not in self._where:
            workspace = (await self._query(WORKSPACE))["workspaceOrError"]
            for entry in workspace.get("locationEntries", []):
                location = entry["locationOrLoadError"] or {}
                for repository in location.get("repositories", []):
                    for each in repository["jobs"]:
                        self._where.setdefault(each["name"], (entry["name"], repository["name"]))
            if job not in self._where:
                loading = [e["name"] for e in workspace.get("locationEntries", []) if e["loadStatus"] == "LOADING"]
                raise DagsterError(f"Dagster's code locations {', '.join(loading)} are still loading" if loading
                                   else f"no code location in Dagster's workspace has a job named {job}")
        return self._where[job]

    async def _query(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self._http.post("/graphql", json={"query": query, "variables": variables})
        response.raise_for_status()
        answer = response.json()
        if answer.get("errors"):
            raise DagsterError("; ".join(e.get("message", "") for e in answer["errors"]))
        return dict(answer["data"])
