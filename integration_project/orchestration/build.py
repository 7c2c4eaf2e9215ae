"""Landscape -> dagster.Definitions: assets, jobs, schedules and sensors of every flow."""


import dagster as dg

from integration_project import contract as c
from integration_project.connectors import connect
from integration_project.model import Flow, Landscape
from integration_project.orchestration.resources import HubStore
from integration_project.orchestration.specs import ObjectSpecs, consumer_key, object_specs
from integration_project.runtime import deliver, ingest

SENSOR_INTERVAL_SECONDS = 4  # the sensor daemon loops every 5 s; 5 exactly would skip ticks


def build_definitions(landscape: Landscape) -> dg.Definitions:
    """Every system's assets plus the flows' jobs, schedules and sensors."""
    shares = [system_definitions(landscape, name) for name in landscape.systems]
    flows = [f for specs in _all_specs(landscape) for f in specs.live_flows]
    jobs = {f.name: _job(f, landscape) for f in flows}
    schedules = [
        dg.ScheduleDefinition(name=f"{f.name}_schedule", job=jobs[f.name], cron_schedule=f.binding.cron,
                              execution_timezone=f.binding.timezone, tags={c.TAG_FLOW: f.name},
                              default_status=dg.DefaultScheduleStatus.RUNNING,
                              description=f"Batch run of {f.name}: {f.binding.purpose}")
        for f in flows if f.binding.cron
    ]
    sensors = [_change_sensor(f, jobs[f.name]) for f in flows if f.mode == "realtime"]
    return dg.Definitions.merge(
        *shares,
        # in-process: one run is one process, not one per step (each costs seconds of CPU here)
        dg.Definitions(jobs=list(jobs.values()), schedules=schedules, sensors=sensors,
                       resources={"hub_store": HubStore()}, executor=dg.in_process_executor),
    )


def system_definitions(landscape: Landscape, system: str) -> dg.Definitions:
    """One system's share: its source assets, the hub assets of what it owns, its consumer assets."""
    assets: list = []
    for specs in _all_specs(landscape):
        live = {f.name for f in specs.live_flows}
        if specs.source.name == system:
            if live:
                assets.append(_ingest_asset(specs, landscape))
            else:
                assets += [specs.source_spec, specs.hub_spec]
        for flow_name, spec in specs.consumer_specs.items():
            if spec.group_name != system:
                continue
            flow = next((f for f in specs.live_flows if f.name == flow_name), None)
            assets.append(_deliver_asset(flow, spec) if flow else spec)
    return dg.Definitions(assets=assets)


def _all_specs(landscape: Landscape) -> list[ObjectSpecs]:
    return [object_specs(landscape, o) for o in landscape.objects.values()]


def _ingest_asset(specs: ObjectSpecs, landscape: Landscape) -> dg.AssetsDefinition:
    source, binding = landscape.source_of(specs.obj.name)
    obj = specs.obj

    @dg.multi_asset(name=f"ingest_{obj.name}", specs=[specs.source_spec, specs.hub_spec],
                    can_subset=False, op_tags={c.TAG_OBJECT: obj.name})
    def _ingest(context: dg.AssetExecutionContext, hub_store: HubStore):
        connector = connect(source)
        try:
            stats = ingest(connector, source.name, binding, obj, hub_store.open(), context.run.run_id).done()
        finally:
            connector.close()
        context.log.info("ingested %s from %s: %s", obj.name, source.name, stats)
        yield dg.MaterializeResult(asset_key=specs.source_spec.key, metadata={
            "read": stats["read"], "cursor": stats["cursor"] or "", "seconds": stats["seconds"]})
        yield dg.MaterializeResult(asset_key=specs.hub_spec.key, metadata={
            k: stats[k] for k in ("valid", "rejected", "written", "unchanged")})

    return _ingest


def _deliver_asset(flow: Flow, spec: dg.AssetSpec) -> dg.AssetsDefinition:
    @dg.multi_asset(name=f"deliver_{flow.name}", specs=[spec], op_tags={c.TAG_FLOW: flow.name})
    def _deliver(context: dg.AssetExecutionContext, hub_store: HubStore):
        connector = connect(flow.consumer)
        try:
            stats = deliver(connector, flow, hub_store.open(), context.run.run_id).done()
        finally:
            connector.close()
        context.log.info("delivered %s to %s: %s", flow.object.name, flow.consumer.name, stats)
        return dg.MaterializeResult(asset_key=spec.key, metadata={
            "read": stats["read"], "written": stats["written"], "rejected": stats["rejected"],
            "skipped_unchanged": stats["unchanged"], "seconds": stats["seconds"]})

    return _deliver


def _job(flow: Flow, landscape: Landscape):
    keys = [dg.AssetKey([flow.source.name, flow.object.name]), dg.AssetKey(["hub", flow.object.name]),
            consumer_key(flow)]
    return dg.define_asset_job(
        flow.name, selection=dg.AssetSelection.assets(*keys), tags={c.TAG_FLOW: flow.name},
        description=f"{flow.object.name}: {flow.source.title} -> hub -> {flow.consumer.title}. "
                    f"{flow.binding.purpose}",
    )


def _change_sensor(flow: Flow, job) -> dg.SensorDefinition:
    """Polls the source for records changed after the committed cursor; one run covers them all."""
    binding = flow.source_binding

    def evaluate(context: dg.SensorEvaluationContext):
        store = HubStore().open()
        since = store.cursor(f"{flow.source.name}/{flow.object.name}")
        connector = connect(flow.source)
        try:
            page = next(iter(connector.pages(binding.resource, since=since)), None)
        except Exception as exc:  # an unreachable source is a skipped tick, not a crashed sensor
            return dg.SkipReason(f"{flow.source.name} unreachable: {type(exc).__name__}")
        finally:
            connector.close()
        if page is None or (since is not None and page.cursor == since):
            return dg.SkipReason(f"no change in {flow.source.name} since {since}")
        return dg.RunRequest(run_key=f"{flow.name}:{since}:{page.cursor}",
                             tags={c.TAG_FLOW: flow.name})

    return dg.SensorDefinition(
        name=f"{flow.name}_sensor", job=job, evaluation_fn=evaluate,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Runs {flow.name} when {flow.source.title} has changes.",
    )
