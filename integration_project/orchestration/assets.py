"""The executable assets of live flows, with their checks: ingest (source + hub) and deliver."""

import json

import dagster as dg

from integration_project import contract as c
from integration_project.connectors import Connector, connect
from integration_project.model import DataObject, Flow, Landscape, System
from integration_project.model.mapping import get_path
from integration_project.orchestration.resources import HubStore
from integration_project.orchestration.sensors import mark_events_processed
from integration_project.orchestration.specs import ObjectSpecs, consumer_key, hub_key
from integration_project.runtime import alert, deliver, ingest
from integration_project.runtime.store import Store, deliveries, dlq, hub_records
from integration_project.webhooks import Inbox


def _owners(system: System, obj: DataObject) -> list[str]:
    return list(dict.fromkeys([*system.owners, obj.owner]))


def _warn_deprecations(connector: Connector, system: System, obj: DataObject) -> dict[str, str]:
    found = connector.deprecations()
    for where, said in found.items():
        alert(f"{system.title} API deprecation", f"{where} — {said}", _owners(system, obj))
    return found


def _schema_signature(obj: DataObject) -> list[str]:
    return sorted(f"{name}:{field.annotation}" for name, field in obj.model.model_fields.items())


def ingest_asset(specs: ObjectSpecs, landscape: Landscape) -> dg.AssetsDefinition:
    """source + hub of one object in one step: extract, validate, commit; with the hub's checks."""
    source, binding = landscape.source_of(specs.obj.name)
    obj, key = specs.obj, hub_key(specs.obj.name)
    consumed = {b.object for b in source.bindings if b.role == "consumer"}
    inbound_refs = {f: target for f, target in obj.references.items() if target in consumed}
    checks = [
        dg.AssetCheckSpec("valid_share", asset=key, blocking=True,
                          description=f"At most {obj.max_invalid_share:.0%} of a run's records invalid."),
        dg.AssetCheckSpec("dead_letter_queue_empty", asset=key,
                          description="No record of this object waits in the dead-letter queue."),
        dg.AssetCheckSpec("column_schema_unchanged", asset=key,
                          description="The canonical model has the columns of the last run."),
    ]

    @dg.multi_asset(name=f"ingest_{obj.name}", specs=[specs.source_spec, specs.hub_spec],
                    check_specs=checks, op_tags={c.TAG_OBJECT: obj.name}, pool=source.name)
    def _ingest(context: dg.AssetExecutionContext, hub_store: HubStore):
        store = hub_store.open()
        connector = connect(source, binding)
        try:
            stats = ingest(connector, source.name, binding, obj, store, context.run.run_id,
                           inbound_refs).done()
            deprecations = _warn_deprecations(connector, source, obj)
            for name, reason in connector.quarantined().items():
                alert(f"{source.title}: {name} quarantined", f"{reason}. It was not read nor committed; it "
                      f"waits in the drop folder's quarantine/.", _owners(source, obj))
            retries = connector.retries()
        finally:
            connector.close()
        context.log.info("ingested %s from %s: %s", obj.name, source.name, stats)
        inbox = Inbox(store.url)
        try:  # the source's changes are committed: the events that announced them are done
            processed = mark_events_processed(inbox, context.run.tags, binding.events)
            waiting = inbox.stats([source.name]).get(source.name)
        finally:
            inbox.close()
        previous = context.instance.get_latest_materialization_event(key)
        signature = _schema_signature(obj)
        yield dg.MaterializeResult(asset_key=specs.source_spec.key, metadata={
            "read": stats["read"], "cursor": stats["cursor"] or "", "seconds": stats["seconds"],
            "retries": retries, "events_processed": processed,
            "inbox_depth": waiting.depth if waiting else 0,
            "inbox_oldest_age_seconds": (waiting.oldest_age_seconds or 0.0) if waiting else 0.0,
            "deprecations": dg.MetadataValue.json(deprecations)})
        yield dg.MaterializeResult(asset_key=key, metadata={
            **{k: stats[k] for k in ("valid", "rejected", "written", "unchanged")},
            "schema_signature": dg.MetadataValue.json(signature)})
        yield from _hub_checks(store, obj, source, stats, previous, signature)

    return _ingest


def _hub_checks(store: Store, obj: DataObject, source: System, stats: dict, previous, signature):
    # new rejects only (a record already parked and read again is no new problem), and at least one
    # is allowed: in a real-time run of a handful of records, one bad record is no trend
    share = stats["new_rejects"] / stats["read"] if stats["read"] else 0.0
    valid = stats["new_rejects"] <= max(obj.max_invalid_share * stats["read"], 1)
    if not valid:
        alert(f"{obj.name}: too many invalid records from {source.title}",
              f"{stats['rejected']} of {stats['read']} ({share:.1%}) failed the canonical model; "
              f"the limit is {obj.max_invalid_share:.0%}. Consumers were not loaded.", _owners(source, obj))
    yield dg.AssetCheckResult(check_name="valid_share", asset_key=hub_key(obj.name), passed=valid,
                              metadata={"invalid_share": share, "limit": obj.max_invalid_share})
    reasons = store.open_reasons(obj.name)
    if stats["rejected"]:
        alert(f"{obj.name}: {stats['rejected']} record(s) parked in the dead-letter queue",
              f"From {source.title}; `integrations dlq list --object {obj.name}` shows them.",
              _owners(source, obj))
    yield dg.AssetCheckResult(check_name="dead_letter_queue_empty", asset_key=hub_key(obj.name),
                              passed=not reasons, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"open": sum(reasons.values()),
                                        "reasons": dg.MetadataValue.json(dict(list(reasons.items())[:50]))})
    before = (previous.asset_materialization.metadata.get("schema_signature") if previous else None)
    old = before.value if before else signature
    yield dg.AssetCheckResult(
        check_name="column_schema_unchanged", asset_key=hub_key(obj.name), passed=old == signature,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"added": dg.MetadataValue.json(sorted(set(signature) - set(old))),
                  "removed": dg.MetadataValue.json(sorted(set(old) - set(signature)))})


def deliver_asset(flow: Flow, spec: dg.AssetSpec) -> dg.AssetsDefinition:
    """One consumer's asset: load the hub's changes idempotently; with its volume check."""
    volume = flow.binding.volume
    checks = [dg.AssetCheckSpec("volume_within_bounds", asset=spec.key,
                                description=f"{volume.min}..{volume.max} records per run.")] if volume else []
    owners = _owners(flow.consumer, flow.object)

    @dg.multi_asset(name=f"deliver_{flow.name}", specs=[spec], check_specs=checks,
                    op_tags={c.TAG_FLOW: flow.name}, pool=flow.consumer.name)
    def _deliver(context: dg.AssetExecutionContext, hub_store: HubStore):
        connector = connect(flow.consumer, flow.binding)
        try:
            stats = deliver(connector, flow, hub_store.open(), context.run.run_id).done()
            deprecations = _warn_deprecations(connector, flow.consumer, flow.object)
            retries = connector.retries()
        finally:
            connector.close()
        context.log.info("delivered %s to %s: %s", flow.object.name, flow.consumer.name, stats)
        if stats["rejected"] or stats["waiting"]:
            alert(f"{flow.name}: records parked", f"{stats['rejected']} rejected by "
                  f"{flow.consumer.title}, {stats['waiting']} waiting for a prerequisite.", owners)
        yield dg.MaterializeResult(asset_key=spec.key, metadata={
            **{k: stats[k] for k in ("read", "written", "rejected", "skipped", "waiting", "seconds")},
            "skipped_unchanged": stats["unchanged"], "retries": retries,
            "deprecations": dg.MetadataValue.json(deprecations)})
        if volume:
            inside = volume.min <= stats["read"] <= volume.max
            if not inside:
                alert(f"{flow.name}: volume outside its bounds", f"{stats['read']} changed records "
                      f"this run; expected {volume.min}..{volume.max}.", owners)
            yield dg.AssetCheckResult(check_name="volume_within_bounds", asset_key=spec.key,
                                      passed=inside, metadata={"records": stats["read"]})

    return _deliver


def reconciliation_check(flow: Flow, landscape: Landscape) -> dg.AssetChecksDefinition:
    """Source ids == hub ids (+ those parked as invalid) == the consumer's ids (+ those parked for
    it), differences listed."""
    source, binding = flow.source, flow.source_binding
    obj = flow.object

    @dg.asset_check(asset=consumer_key(flow), name="reconciled",
                    description="Every source record is in the hub or parked, and every eligible "
                                "hub record is in the consumer.")
    def _reconciled(hub_store: HubStore) -> dg.AssetCheckResult:
        store = hub_store.open()
        extractor, loader = connect(source, binding), connect(flow.consumer, flow.binding)
        try:
            source_ids = {str(get_path(r, binding.mapping[obj.identity_key]))
                          for r in extractor.scan(binding.resource)}
            listed = loader.index(flow.binding.resource, flow.binding.mapping[obj.identity_key])
        finally:
            extractor.close()
            loader.close()
        # a system that keeps no records of ours to list is compared with what it confirmed to us
        held = set(listed) if listed is not None else store.ids(
            deliveries.c.record_id, system=flow.consumer.name, object=obj.name, status="done")
        hub = store.ids(hub_records.c.record_id, object=obj.name)
        # parked records are known differences with a reason, not silent losses
        parked = store.ids(dlq.c.record_id, flow=f"{obj.name}_{source.name}_to_hub", status="open")
        waiting = store.ids(dlq.c.record_id, flow=flow.name, status="open")
        eligible = hub if not flow.binding.where else {
            r["record_id"] for r in store.rows(hub_records, object=obj.name)
            if all(str(json.loads(r["data"]).get(f)) in allowed for f, allowed in flow.binding.where.items())}
        not_in_hub = sorted(source_ids - hub - parked)
        not_in_consumer = sorted(eligible - held - waiting)
        passed = not not_in_hub and not not_in_consumer
        if not passed:
            alert(f"{flow.name}: systems disagree", f"{len(not_in_hub)} source record(s) missing in "
                  f"the hub, {len(not_in_consumer)} hub record(s) missing in {flow.consumer.title}.",
                  _owners(flow.consumer, obj))
        return dg.AssetCheckResult(passed=passed, metadata={
            "source": len(source_ids), "hub": len(hub), "parked": len(parked), "waiting": len(waiting),
            "consumer": len(held),
            "missing_in_hub": dg.MetadataValue.json(not_in_hub[:100]),
            "missing_in_consumer": dg.MetadataValue.json(not_in_consumer[:100]),
            "only_in_consumer": dg.MetadataValue.json(sorted(held - hub)[:100])})

    return _reconciled
