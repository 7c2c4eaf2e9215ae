"""Sensors: changes in a source start its flows (webhook inbox, new files in a drop folder, else
polling); failures alert.

A webhook event only says that something changed; the run then reads the source's changes since
the hub's committed cursor, through the same engine as the batch runs. So duplicate, late or
out-of-order events can neither overwrite a newer record nor be lost: the source is the truth.
"""

from collections import defaultdict
from typing import Any

import dagster as dg

from integration_project import contract as c
from integration_project.connectors import DropFolder, connect, connector_class
from integration_project.model import Flow, Landscape
from integration_project.orchestration.resources import HubStore
from integration_project.runtime import alert
from integration_project.webhooks import Inbox

SENSOR_INTERVAL_SECONDS = 4  # the sensor daemon loops every 5 s; 5 exactly would skip ticks
BATCH = 1000  # inbox events covered by one run at most
TAG_INBOX = "integration/inbox"  # "<system>:<first id>:<last id>" of the events a run covers
TAG_FILES = "integration/files"  # the drop-folder files a run was started for, comma-separated


def change_sensors(flows: list[Flow], jobs: dict[str, Any]) -> list[dg.SensorDefinition]:
    """Per realtime flow an inbox sensor (the source sends webhooks) or a file-arrival sensor (it
    drops files); per object one polling sensor for the rest, so a change starts each flow once."""
    sensors, polled = [], defaultdict(list)
    for flow in (f for f in flows if f.mode == "realtime"):
        cls = connector_class(flow.source, flow.source_binding)
        if flow.source.webhook and flow.source_binding.events:
            sensors.append(_inbox_sensor(flow, jobs[flow.name]))
        elif cls is not None and issubclass(cls, DropFolder):
            sensors.append(_file_sensor(flow, jobs[flow.name]))
        else:
            polled[flow.object.name].append(flow)
    return [*sensors, *(_polling_sensor(group, jobs) for group in polled.values())]


def covered_events(tags: dict[str, str]) -> tuple[str, int, int] | None:
    """The inbox range a run was started for, from its tags."""
    if TAG_INBOX not in tags:
        return None
    system, first, last = tags[TAG_INBOX].rsplit(":", 2)
    return system, int(first), int(last)


def mark_events_processed(inbox: Inbox, tags: dict[str, str], event_types: list[str]) -> int:
    """After the source's changes are committed, mark the inbox events the run covered."""
    covered = covered_events(tags)
    if covered is None:
        return 0
    system, first, last = covered
    rows = inbox.pending(system, after_id=first - 1, limit=last - first + 1)
    return inbox.mark_processed(r.id for r in rows if r.id <= last and r.event_type in event_types)


def _inbox_sensor(flow: Flow, job) -> dg.SensorDefinition:
    system, events = flow.source.name, set(flow.source_binding.events)

    def evaluate(context: dg.SensorEvaluationContext):
        if context.cursor is None:  # a new deployment syncs at once, then follows the events
            context.update_cursor("0")
            return dg.RunRequest(run_key=f"{flow.name}:initial", tags={c.TAG_FLOW: flow.name})
        after = int(context.cursor)
        inbox = Inbox()
        try:
            rows = inbox.pending(system, after_id=after, limit=BATCH)
        finally:
            inbox.close()
        if not rows:
            return dg.SkipReason(f"no new {system} events after #{after}")
        context.update_cursor(str(rows[-1].id))
        relevant = [r for r in rows if r.event_type in events]
        if not relevant:
            return dg.SkipReason(f"{len(rows)} {system} event(s), none about {flow.object.name}")
        first, last = relevant[0].id, relevant[-1].id
        return dg.RunRequest(run_key=f"{flow.name}:{first}-{last}",
                             tags={c.TAG_FLOW: flow.name, TAG_INBOX: f"{system}:{first}:{last}"})

    return dg.SensorDefinition(
        name=f"{flow.name}_sensor", job=job, evaluation_fn=evaluate,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Runs {flow.name} for new {flow.source.title} webhook events "
                    f"({', '.join(sorted(events))}); one run covers every new event.",
    )


def _file_sensor(flow: Flow, job) -> dg.SensorDefinition:
    """One run per batch of new files; the sensor's own cursor is the newest file it ran for, so
    each flow of the object runs once per file even when another flow's run ingested it first."""
    binding = flow.source_binding

    def evaluate(context: dg.SensorEvaluationContext):
        connector = connect(flow.source, binding)
        try:
            names = connector.arrivals(binding.resource, context.cursor)
        except OSError as exc:  # an unmounted share is a skipped tick, not a crashed sensor
            return dg.SkipReason(f"{flow.source.name} drop folder unreadable: {type(exc).__name__}")
        finally:
            connector.close()
        if not names:
            return dg.SkipReason(f"no new {flow.source.name} file after {context.cursor}")
        context.update_cursor(names[-1])
        return dg.RunRequest(run_key=f"{flow.name}:{names[0]}..{names[-1]}",
                             tags={c.TAG_FLOW: flow.name, TAG_FILES: ",".join(names)[:1000]})

    return dg.SensorDefinition(
        name=f"{flow.name}_sensor", job=job, evaluation_fn=evaluate,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Runs {flow.name} when a new file matching {binding.resource.partition('?')[0]} "
                    f"lands in {flow.source.title}'s drop folder.",
    )


def _polling_sensor(group: list[Flow], jobs: dict[str, Any]) -> dg.SensorDefinition:
    """One sensor for an object's polled flows: when the source has changes after the hub's cursor,
    each flow gets a run (the first to ingest moves the cursor; the others still deliver)."""
    source, binding, obj = group[0].source, group[0].source_binding, group[0].object

    def evaluate(context: dg.SensorEvaluationContext):
        since = HubStore().open().cursor(f"{source.name}/{obj.name}")
        connector = connect(source, binding)
        try:
            page = next(iter(connector.pages(binding.resource, since=since)), None)
        except Exception as exc:  # an unreachable source is a skipped tick, not a crashed sensor
            return dg.SkipReason(f"{source.name} unreachable: {type(exc).__name__}")
        finally:
            connector.close()
        if page is None or not page.records or (since is not None and page.cursor == since):
            return dg.SkipReason(f"no change in {source.name} since {since}")
        return [dg.RunRequest(run_key=f"{f.name}:{since}:{page.cursor}", job_name=f.name,
                              tags={c.TAG_FLOW: f.name}) for f in group]

    return dg.SensorDefinition(
        name=f"{obj.name}_{source.name}_poll_sensor", jobs=[jobs[f.name] for f in group], evaluation_fn=evaluate,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Polls {source.title} for {obj.name} changes and runs {', '.join(f.name for f in group)}.",
    )


def failure_sensor(landscape: Landscape) -> dg.SensorDefinition:
    """Alerts the flow's owners when one of its runs fails."""
    owners = {f.name: list(dict.fromkeys([*f.consumer.owners, *f.source.owners, f.object.owner]))
              for f in landscape.flows()}
    for obj in landscape.objects.values():  # a source -> hub leg's run (ticket_support_to_hub) is theirs too
        if found := landscape.source_of(obj.name):
            owners[f"{obj.name}_{found[0].name}_to_hub"] = list(dict.fromkeys([*found[0].owners, obj.owner]))

    @dg.run_failure_sensor(name="alert_on_run_failure", default_status=dg.DefaultSensorStatus.RUNNING,
                           minimum_interval_seconds=SENSOR_INTERVAL_SECONDS)
    def _alert(context: dg.RunFailureSensorContext) -> None:
        flow = context.dagster_run.tags.get(c.TAG_FLOW, context.dagster_run.job_name)
        error = context.failure_event.message or "run failed"
        alert(f"run of {flow} failed", f"run {context.dagster_run.run_id}: {error}", owners.get(flow, []))

    return _alert
