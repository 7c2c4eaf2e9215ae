"""Landscape -> dagster.Definitions: assets, checks, jobs, schedules and sensors of every flow."""

from collections import defaultdict

import dagster as dg

from integration_project import contract as c
from integration_project.connectors import value_problems
from integration_project.errors import declaration_error
from integration_project.model import Flow, Landscape
from integration_project.orchestration.assets import deliver_asset, ingest_asset, reconciliation_check
from integration_project.orchestration.instance import executor
from integration_project.orchestration.maintenance import maintenance_definitions
from integration_project.orchestration.resources import HubStore
from integration_project.orchestration.specs import ObjectSpecs, consumer_key, hub_key, object_specs
from integration_project.orchestration.sensors import change_sensors, failure_sensor

RECONCILE_CRON = "0 6 * * *"


def build_definitions(landscape: Landscape) -> dg.Definitions:
    """Every system's assets plus the flows' checks, jobs, schedules and sensors; a value map naming
    a value the vendor refuses is a DeclarationError."""
    if problems := value_problems(landscape):
        raise declaration_error(problems)
    shares = [system_definitions(landscape, name) for name in landscape.systems]
    every = _all_specs(landscape)
    flows = [f for specs in every for f in specs.live_flows]
    # an object nobody consumes yet is still brought into the hub (assessed, checked, kept)
    hub_only = {s.ingest.name: s for s in every if s.ingestible and not s.live_flows}
    ingest_jobs = {name: dg.define_asset_job(name, selection=dg.AssetSelection.assets(
        s.source_spec.key, s.hub_spec.key), tags={c.TAG_FLOW: name, c.TAG_LANE: name},
        description=f"{s.obj.name}: {s.source.title} -> hub.") for name, s in hub_only.items()}
    reconciles = {f.name: reconciliation_check(f) for f in flows}
    jobs = {f.name: _job(f, reconciles[f.name]) for f in flows}
    realtime: dict[str, list[Flow]] = defaultdict(list)  # per source leg, its flows kept in real time
    for f in flows:
        if f.mode == "realtime":
            realtime[f.ingest.realtime_name].append(f)
    realtime_jobs = {name: _realtime_job(name, group, reconciles) for name, group in realtime.items()}
    reconcile_jobs = [
        dg.define_asset_job(f"reconcile_{f.name}", selection=dg.AssetSelection.checks(reconciles[f.name]),
                            tags={c.TAG_FLOW: f.name, c.TAG_LANE: lane(f)},
                            description=f"Compares {f.source.title}, the hub and {f.consumer.title}.")
        for f in flows
    ]
    schedules = [
        dg.ScheduleDefinition(name=f"{f.name}_schedule", job=jobs[f.name], cron_schedule=f.binding.cron,
                              execution_timezone=f.binding.timezone, tags={c.TAG_FLOW: f.name},
                              default_status=dg.DefaultScheduleStatus.RUNNING,
                              description=f"Batch run of {f.name}: {f.binding.purpose}")
        for f in flows if f.binding.cron
    ] + [
        dg.ScheduleDefinition(name=f"{job.name}_schedule", job=job, cron_schedule=RECONCILE_CRON,
                              default_status=dg.DefaultScheduleStatus.RUNNING,
                              description="Daily reconciliation of source, hub and consumer ids.")
        for job in reconcile_jobs
    ] + [
        dg.ScheduleDefinition(name=f"{name}_schedule", job=ingest_jobs[name], cron_schedule=binding.cron,
                              execution_timezone=binding.timezone, tags={c.TAG_FLOW: name},
                              default_status=dg.DefaultScheduleStatus.RUNNING,
                              description=f"Batch run of {name}: {binding.purpose}")
        for name, s in hub_only.items() if (binding := s.ingest.binding).cron
    ]
    sensors = change_sensors([group[0].ingest for group in realtime.values()], realtime_jobs)
    return dg.Definitions.merge(
        *shares, maintenance_definitions(landscape),
        dg.Definitions(asset_checks=list(reconciles.values()), jobs=[*jobs.values(), *realtime_jobs.values(), *reconcile_jobs,
                                                                      *ingest_jobs.values()],
                       schedules=schedules, sensors=[*sensors, failure_sensor(landscape)],
                       resources={"hub_store": HubStore()}, executor=executor()),
    )


def system_definitions(landscape: Landscape, system: str) -> dg.Definitions:
    """One system's share: its source assets, the hub assets of what it owns, its consumer assets."""
    assets: list = []
    for specs in _all_specs(landscape):
        if specs.source.name == system:
            assets += [ingest_asset(specs)] if specs.ingestible else [specs.source_spec, specs.hub_spec]
        for flow_name, spec in specs.consumer_specs.items():
            if spec.group_name == system:
                flow = next((f for f in specs.live_flows if f.name == flow_name), None)
                assets.append(deliver_asset(flow, spec) if flow else spec)
    return dg.Definitions(assets=assets)


def _all_specs(landscape: Landscape) -> list[ObjectSpecs]:
    return [object_specs(landscape, leg) for leg in landscape.ingests().values()]


def lane(flow: Flow) -> str:
    """The runs a flow's runs must not overlap: its own, and its source's realtime runs if it is
    realtime (they deliver to its consumer too)."""
    return flow.ingest.realtime_name if flow.mode == "realtime" else flow.name


def _job(flow: Flow, reconcile: dg.AssetChecksDefinition):
    """One flow's job, for its schedule and for a run by hand: source -> hub -> its consumer."""
    keys = [dg.AssetKey([flow.source.name, flow.object.name]), hub_key(flow.object.name), consumer_key(flow)]
    return dg.define_asset_job(
        flow.name, selection=dg.AssetSelection.assets(*keys) - dg.AssetSelection.checks(reconcile),
        tags={c.TAG_FLOW: flow.name, c.TAG_LANE: lane(flow)},
        description=f"{flow.object.name}: {flow.source.title} -> hub -> {flow.consumer.title}. "
                    f"{flow.binding.purpose}",
    )


def _realtime_job(name: str, flows: list[Flow], reconciles: dict[str, dg.AssetChecksDefinition]):
    """A source's change in one run: read once into the hub, then delivered to each realtime consumer
    (independent steps: one consumer's failure holds up no other)."""
    first = flows[0]
    keys = [dg.AssetKey([first.source.name, first.object.name]), hub_key(first.object.name),
            *(consumer_key(f) for f in flows)]
    return dg.define_asset_job(
        name, selection=dg.AssetSelection.assets(*keys) - dg.AssetSelection.checks(*(reconciles[f.name] for f in flows)),
        tags={c.TAG_FLOW: ",".join(f.name for f in flows), c.TAG_LANE: name},
        description=f"{first.object.name} changes in {first.source.title}: to the hub, then to "
                    f"{', '.join(f.consumer.title for f in flows)} in the same run.",
    )
