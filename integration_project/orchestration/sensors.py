"""Sensors: changes in a source start its flows (webhook inbox, new files in a drop folder, else
polling); failures alert.

A webhook event only says that something changed; the run then reads the source's changes since
the hub's committed cursor, through the same engine as the batch runs. So duplicate, late or
out-of-order events can neither overwrite a newer record nor be lost: the source is the truth.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from integration_project import contract as c
from integration_project.connectors import DropFolder, connect, connector_class
from integration_project.model import Flow, Landscape
from integration_project.orchestration.resources import HubStore
from integration_project.runtime import alert
from integration_project.runtime.events import BATCH, Covered

SENSOR_INTERVAL_SECONDS = 4  # the sensor daemon loops every 5 s; 5 exactly would skip ticks
WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]
# A flow whose runs the webhook receiver started lately (webhooks/runs.py) gets runs from its
# inbox sensor only for the events the receiver left pending for a while (Dagster was down, say).
RECEIVER_STARTS_SECONDS = 3600
BACKSTOP_SECONDS = 30


def change_sensors(flows: list[Flow], jobs: dict[str, Any]) -> list[dg.SensorDefinition]:
    """Per realtime flow an inbox sensor (the source sends webhooks) or a file-arrival sensor (it
    drops files); per object one polling sensor for the rest, so a change starts each flow once."""
    sensors, polled = [], defaultdict(list)
    for flow in (f for f in flows if f.mode == "realtime"):
        cls = connector_class(flow.source, flow.source_binding)
        if flow.source.webhook and flow.ingest.events:
            sensors.append(_inbox_sensor(flow, jobs[flow.name]))
        elif cls is not None and issubclass(cls, DropFolder):
            sensors.append(_file_sensor(flow, jobs[flow.name]))
        else:
            polled[flow.object.name].append(flow)
    return [*sensors, *(_polling_sensor(group, jobs) for group in polled.values())]


def _inbox_sensor(flow: Flow, job) -> dg.SensorDefinition:
    leg = flow.ingest
    system, events = leg.source.name, set(leg.events)

    @dg.sensor(name=f"{flow.name}_sensor", job=job, minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Runs {flow.name} for new {leg.source.title} webhook events "
                           f"({', '.join(sorted(events))}); one run covers every new event.")
    def evaluate(context: dg.SensorEvaluationContext, hub_store: HubStore):
        if context.cursor is None:  # a new deployment syncs at once, then follows the events
            context.update_cursor("0")
            return dg.RunRequest(run_key=f"{flow.name}:initial", tags={c.TAG_FLOW: flow.name})
        if _runs(context, flow.name, statuses=WAITING):
            return dg.SkipReason(f"a run of {flow.name} waits to start: it will read every change announced")
        after = int(context.cursor)
        inbox = hub_store.inbox()
        try:
            rows = inbox.pending(system, after_id=after, limit=BATCH)
        finally:
            inbox.close()
        if not rows:
            return dg.SkipReason(f"no new {system} events after #{after}")
        now = datetime.now(UTC)
        if _runs(context, flow.name, tags={c.TAG_STARTED_BY: "webhook"},
                 created_after=now - timedelta(seconds=RECEIVER_STARTS_SECONDS)):
            rows = [r for r in rows if r.received_at < now - timedelta(seconds=BACKSTOP_SECONDS)]
            if not rows:
                return dg.SkipReason(f"the webhook receiver starts {flow.name}'s runs; no event it left "
                                     f"pending over {BACKSTOP_SECONDS} s")
        context.update_cursor(str(rows[-1].id))
        relevant = [r for r in rows if r.event_type in events]
        if not relevant:
            return dg.SkipReason(f"{len(rows)} {system} event(s), none about {flow.object.name}")
        covered = Covered(system, relevant[0].id, relevant[-1].id)
        return dg.RunRequest(run_key=f"{flow.name}:{covered.first}-{covered.last}",
                             tags={c.TAG_FLOW: flow.name, c.TAG_INBOX: str(covered)})

    return evaluate


def _runs(context: dg.SensorEvaluationContext, job: str, **filters: Any) -> bool:
    """Whether the instance has a run of `job` matching `filters` (dagster.RunsFilter's)."""
    return bool(context.instance.get_run_ids(dg.RunsFilter(job_name=job, **filters), limit=1))


def _file_sensor(flow: Flow, job) -> dg.SensorDefinition:
    """One run per batch of new files; the sensor's own cursor is the newest file it ran for, so
    each flow of the object runs once per file even when another flow's run ingested it first."""
    binding = flow.source_binding

    def evaluate(context: dg.SensorEvaluationContext):
        connector = connect(flow.source, binding)
        try:
            if not isinstance(connector, DropFolder):
                raise TypeError(f"{flow.source.name}/{binding.object} is not read from a drop folder")
            names = connector.arrivals(binding.resource, context.cursor)
        except OSError as exc:  # an unmounted share is a skipped tick, not a crashed sensor
            return dg.SkipReason(f"{flow.source.name} drop folder unreadable: {type(exc).__name__}")
        finally:
            connector.close()
        if not names:
            return dg.SkipReason(f"no new {flow.source.name} file after {context.cursor}")
        context.update_cursor(names[-1])
        return dg.RunRequest(run_key=f"{flow.name}:{names[0]}..{names[-1]}",
                             tags={c.TAG_FLOW: flow.name, c.TAG_FILES: ",".join(names)[:1000]})

    return dg.SensorDefinition(
        name=f"{flow.name}_sensor", job=job, evaluation_fn=evaluate,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Runs {flow.name} when a new file matching {binding.resource.partition('?')[0]} "
                    f"lands in {flow.source.title}'s drop folder.",
    )


def _polling_sensor(group: list[Flow], jobs: dict[str, Any]) -> dg.SensorDefinition:
    """One sensor for an object's polled flows: when the source has changes after the hub's cursor,
    each flow gets a run (the first to ingest moves the cursor; the others still deliver)."""
    leg = group[0].ingest

    @dg.sensor(name=f"{leg.object.name}_{leg.source.name}_poll_sensor", jobs=[jobs[f.name] for f in group],
               minimum_interval_seconds=SENSOR_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Polls {leg.source.title} for {leg.object.name} changes and runs "
                           f"{', '.join(f.name for f in group)}.")
    def evaluate(context: dg.SensorEvaluationContext, hub_store: HubStore):
        since = hub_store.open().cursor(leg.cursor_key)
        connector = connect(leg.source, leg.binding)
        try:
            page = next(iter(connector.pages(leg.binding.resource, since=since)), None)
        except Exception as exc:  # an unreachable source is a skipped tick, not a crashed sensor
            return dg.SkipReason(f"{leg.source.name} unreachable: {type(exc).__name__}")
        finally:
            connector.close()
        if page is None or not page.records or (since is not None and page.cursor == since):
            return dg.SkipReason(f"no change in {leg.source.name} since {since}")
        return [dg.RunRequest(run_key=f"{f.name}:{since}:{page.cursor}", job_name=f.name,
                              tags={c.TAG_FLOW: f.name}) for f in group]

    return evaluate


def failure_sensor(landscape: Landscape) -> dg.SensorDefinition:
    """Alerts the flow's owners when one of its runs fails."""
    owners = {leg.name: leg.owners for leg in landscape.ingests().values()}
    owners.update((f.name, f.owners) for f in landscape.flows())

    @dg.run_failure_sensor(name="alert_on_run_failure", default_status=dg.DefaultSensorStatus.RUNNING,
                           minimum_interval_seconds=SENSOR_INTERVAL_SECONDS)
    def _alert(context: dg.RunFailureSensorContext) -> None:
        flow = context.dagster_run.tags.get(c.TAG_FLOW, context.dagster_run.job_name)
        error = context.failure_event.message or "run failed"
        alert(f"run of {flow} failed", f"run {context.dagster_run.run_id}: {error}", owners.get(flow, []))

    return _alert
