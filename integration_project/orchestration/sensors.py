"""Sensors: changes in a source start its flows (webhook inbox, new files in a drop folder, else
polling); failures alert.

A webhook event only says that something changed; the run then reads the source's changes since
the hub's committed cursor, through the same engine as the batch runs. So duplicate, late or
out-of-order events can neither overwrite a newer record nor be lost: the source is the truth.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from integration_project import contract as c
from integration_project.connectors import DropFolder, connect, connector_class
from integration_project.model import Ingest, Landscape
from integration_project.orchestration.resources import HubStore
from integration_project.runtime import alert
from integration_project.runtime.events import BATCH, Covered

SENSOR_INTERVAL_SECONDS = 4  # the sensor daemon loops every 5 s; 5 exactly would skip ticks
WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]
# A flow whose runs the webhook receiver started lately (webhooks/runs.py) gets runs from its
# inbox sensor only for the events the receiver left pending for a while (Dagster was down, say).
RECEIVER_STARTS_SECONDS = 3600
BACKSTOP_SECONDS = 30


def change_sensors(legs: list[Ingest], jobs: dict[str, Any]) -> list[dg.SensorDefinition]:
    """Per source leg with realtime flows, the sensor that runs its realtime job (`jobs`, by the
    leg's `realtime_name`) on a change: an inbox sensor (the source sends webhooks), a file-arrival
    sensor (it drops files), else a polling sensor. One change, one run, every consumer."""
    sensors = []
    for leg in legs:
        job, cls = jobs[leg.realtime_name], connector_class(leg.source, leg.binding)
        if leg.source.webhook and leg.events:
            sensors.append(_inbox_sensor(leg, job))
        elif cls is not None and issubclass(cls, DropFolder):
            sensors.append(_file_sensor(leg, job))
        else:
            sensors.append(_polling_sensor(leg, job))
    return sensors


def _inbox_sensor(leg: Ingest, job) -> dg.SensorDefinition:
    system, events, name = leg.source.name, set(leg.events), leg.realtime_name

    @dg.sensor(name=f"{name}_sensor", job=job, minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Runs {name} for new {leg.source.title} webhook events "
                           f"({', '.join(sorted(events))}); one run covers every new event.")
    def evaluate(context: dg.SensorEvaluationContext, hub_store: HubStore):
        if context.cursor is None:  # a new deployment syncs at once, then follows the events
            context.update_cursor("0")
            return dg.RunRequest(run_key=f"{name}:initial")  # the job's tags name its flows
        if _runs(context, name, statuses=WAITING):
            return dg.SkipReason(f"a run of {name} waits to start: it will read every change announced")
        after = int(context.cursor)
        inbox = hub_store.inbox()
        try:
            rows = inbox.pending(system, after_id=after, limit=BATCH)
        finally:
            inbox.close()
        if not rows:
            return dg.SkipReason(f"no new {system} events after #{after}")
        now = datetime.now(UTC)
        if _runs(context, name, tags={c.TAG_STARTED_BY: "webhook"},
                 created_after=now - timedelta(seconds=RECEIVER_STARTS_SECONDS)):
            rows = [r for r in rows if r.received_at < now - timedelta(seconds=BACKSTOP_SECONDS)]
            if not rows:
                return dg.SkipReason(f"the webhook receiver starts {name}'s runs; no event it left "
                                     f"pending over {BACKSTOP_SECONDS} s")
        context.update_cursor(str(rows[-1].id))
        relevant = [r for r in rows if r.event_type in events]
        if not relevant:
            return dg.SkipReason(f"{len(rows)} {system} event(s), none about {leg.object.name}")
        covered = Covered(system, relevant[0].id, relevant[-1].id)
        return dg.RunRequest(run_key=f"{name}:{covered.first}-{covered.last}",
                             tags={c.TAG_INBOX: str(covered)})

    return evaluate


def _runs(context: dg.SensorEvaluationContext, job: str, **filters: Any) -> bool:
    """Whether the instance has a run of `job` matching `filters` (dagster.RunsFilter's)."""
    return bool(context.instance.get_run_ids(dg.RunsFilter(job_name=job, **filters), limit=1))


def _file_sensor(leg: Ingest, job) -> dg.SensorDefinition:
    """One run per batch of new files; the sensor's cursor is the newest file it ran for."""
    binding, name = leg.binding, leg.realtime_name

    def evaluate(context: dg.SensorEvaluationContext):
        connector = connect(leg.source, binding)
        try:
            if not isinstance(connector, DropFolder):
                raise TypeError(f"{leg.source.name}/{binding.object} is not read from a drop folder")
            names = connector.arrivals(binding.resource, context.cursor)
        except OSError as exc:  # an unmounted share is a skipped tick, not a crashed sensor
            return dg.SkipReason(f"{leg.source.name} drop folder unreadable: {type(exc).__name__}")
        finally:
            connector.close()
        if not names:
            return dg.SkipReason(f"no new {leg.source.name} file after {context.cursor}")
        context.update_cursor(names[-1])
        return dg.RunRequest(run_key=f"{name}:{names[0]}..{names[-1]}",
                             tags={c.TAG_FILES: ",".join(names)[:1000]})

    return dg.SensorDefinition(
        name=f"{name}_sensor", job=job, evaluation_fn=evaluate,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Runs {name} when a new file matching {binding.resource.partition('?')[0]} "
                    f"lands in {leg.source.title}'s drop folder.",
    )


def _polling_sensor(leg: Ingest, job) -> dg.SensorDefinition:
    """Runs the leg's realtime job when the source has changes after the hub's cursor."""
    name = leg.realtime_name

    @dg.sensor(name=f"{name}_sensor", job=job, minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Polls {leg.source.title} for {leg.object.name} changes and runs {name}.")
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
        if _runs(context, name, statuses=WAITING):
            return dg.SkipReason(f"a run of {name} waits to start: it will read every change")
        return dg.RunRequest(run_key=f"{name}:{since}:{page.cursor}")

    return evaluate


def failure_sensor(landscape: Landscape) -> dg.SensorDefinition:
    """Alerts the flow's owners when one of its runs fails."""
    owners = {leg.name: leg.owners for leg in landscape.ingests().values()}
    owners.update((f.name, f.owners) for f in landscape.flows())

    @dg.run_failure_sensor(name="alert_on_run_failure", default_status=dg.DefaultSensorStatus.RUNNING,
                           minimum_interval_seconds=SENSOR_INTERVAL_SECONDS)
    def _alert(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        tagged = run.tags.get(c.TAG_FLOW, run.job_name).split(",")
        # a run of several flows alerts the owners of the flows whose steps failed
        failed = [f for f in tagged if any(e.step_key == f"deliver_{f}" for e in context.get_step_failure_events())]
        flows = failed or tagged
        error = context.failure_event.message or "run failed"
        alert(f"run of {', '.join(flows)} failed", f"run {run.run_id}: {error}",
              list(dict.fromkeys(o for f in flows for o in owners.get(f, []))))

    return _alert
