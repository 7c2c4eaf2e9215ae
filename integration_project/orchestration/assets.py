"""The executable assets of live flows, with their checks: ingest (source + hub) and deliver.

Glue only: each asset opens its connector, runs a runtime step, and turns the step's figures and
the runtime's reports into Dagster materializations, check results and metadata.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from integration_project import contract as c
from integration_project.connectors import Connector, connect
from integration_project.model import Flow, Ingest
from integration_project.orchestration.resources import HubStore
from integration_project.orchestration.specs import ObjectSpecs, consumer_key, hub_key
from integration_project.runtime import alert, checks, deliver, ingest
from integration_project.runtime.events import Covered, announced, mark_processed

SIGNATURE = "schema_signature"  # the hub asset's metadata entry compared by column_schema_unchanged


def _deprecations(connector: Connector, system_title: str, owners: list[str]) -> dict[str, str]:
    found = connector.deprecations()
    for where, said in found.items():
        alert(f"{system_title} API deprecation", f"{where} — {said}", owners)
    return found


def _json(value: Any) -> dg.MetadataValue:
    return dg.MetadataValue.json(value)


def ingest_asset(specs: ObjectSpecs) -> dg.AssetsDefinition:
    """source + hub of one object in one step: extract, validate, commit; with the hub's checks."""
    leg, key = specs.ingest, hub_key(specs.obj.name)
    checks_ = [
        dg.AssetCheckSpec("valid_share", asset=key, blocking=True,
                          description=f"At most {leg.object.max_invalid_share:.0%} of the records a flow takes in "
                                      "invalid, whichever run read them."),
        dg.AssetCheckSpec("dead_letter_queue_empty", asset=key,
                          description="No record of this object waits in the dead-letter queue."),
        dg.AssetCheckSpec("column_schema_unchanged", asset=key,
                          description="The canonical model has the columns of the last run."),
    ]

    @dg.multi_asset(name=f"ingest_{leg.object.name}", specs=[specs.source_spec, specs.hub_spec],
                    check_specs=checks_, op_tags={c.TAG_OBJECT: leg.object.name}, pool=leg.source.name)
    def _ingest(context: dg.AssetExecutionContext, hub_store: HubStore):
        store = hub_store.open()
        covered, events = None, []
        if tag := context.run.tags.get(c.TAG_INBOX):
            inbox = hub_store.inbox()
            try:
                covered = Covered.before_read(tag, inbox)
                events = announced(inbox, leg, covered)
            finally:
                inbox.close()
        connector = connect(leg.source, leg.binding)
        try:
            stats = ingest(connector, leg, store, context.run.run_id, events)
            deprecations = _deprecations(connector, leg.source.title, leg.owners)
            checks.quarantined(leg, connector.quarantined())
            retries = connector.retries()
        finally:
            connector.close()
        figures = stats.done()
        context.log.info("ingested %s from %s: %s", leg.object.name, leg.source.name, figures)
        inbox = hub_store.inbox()
        try:  # the source's changes are committed: the events that announced them are done
            backlog = mark_processed(inbox, leg, covered)
        finally:
            inbox.close()
        yield dg.MaterializeResult(asset_key=specs.source_spec.key, metadata={
            "read": stats.read, "cursor": stats.cursor or "", "seconds": stats.seconds,
            "retries": retries, "events_processed": backlog.processed, "inbox_depth": backlog.depth,
            "inbox_oldest_age_seconds": backlog.oldest_age_seconds, "deprecations": _json(deprecations)})
        signature = checks.schema_signature(leg.object)
        previous = context.instance.get_latest_materialization_event(key)
        before = previous.asset_materialization.metadata.get(SIGNATURE) if previous else None
        yield dg.MaterializeResult(asset_key=key, metadata={
            "valid": stats.valid, "rejected": stats.rejected, "written": stats.written,
            "unchanged": stats.unchanged, SIGNATURE: _json(signature)})
        flows = _flows_in_run(context, specs)
        yield from _hub_checks(leg, store, stats, flows, before.value if before else None, signature)

    return _ingest


def _flows_in_run(context: dg.AssetExecutionContext, specs: ObjectSpecs) -> list[Flow]:
    """The live flows of the object whose consumers this run loads: those its job is tagged with,
    or those an ad-hoc selection includes; none for a hub-only leg."""
    tagged = set(filter(None, context.run.tags.get(c.TAG_FLOW, "").split(",")))
    selected = context.run.asset_selection or set()
    return [f for f in specs.live_flows
            if f.name in tagged or (not tagged and specs.consumer_specs[f.name].key in selected)]


def _hub_checks(leg: Ingest, store, stats, flows: list[Flow], previous: list[str] | None,
                signature: list[str]) -> Iterator[dg.AssetCheckResult]:
    key = hub_key(leg.object.name)
    verdicts = checks.validity(leg, store, flows)
    worst = min(verdicts, key=lambda v: (v.passed, -v.share))  # a failing flow's figures first
    yield dg.AssetCheckResult(
        check_name="valid_share", asset_key=key, passed=all(v.passed for v in verdicts),
        metadata={"invalid_share": worst.share, "limit": worst.limit, "read": worst.read,
                  "rejected": worst.new_rejects, "judged_for": ", ".join(v.flow for v in verdicts)})
    parked = checks.dead_letters(leg, store, stats.rejected)
    yield dg.AssetCheckResult(check_name="dead_letter_queue_empty", asset_key=key, passed=parked.passed,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"open": parked.open, "reasons": _json(dict(list(parked.reasons.items())[:50]))})
    drift = checks.schema_drift(previous, signature)
    yield dg.AssetCheckResult(check_name="column_schema_unchanged", asset_key=key, passed=drift.passed,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"added": _json(drift.added), "removed": _json(drift.removed)})


def deliver_asset(flow: Flow, spec: dg.AssetSpec) -> dg.AssetsDefinition:
    """One consumer's asset: load the hub's changes idempotently; with its volume check."""
    bounds = flow.volume
    checks_ = [dg.AssetCheckSpec("volume_within_bounds", asset=spec.key,
                                 description=f"{bounds.min}..{bounds.max} records per run.")] if bounds else []

    @dg.multi_asset(name=f"deliver_{flow.name}", specs=[spec], check_specs=checks_,
                    op_tags={c.TAG_FLOW: flow.name}, pool=flow.consumer.name)
    def _deliver(context: dg.AssetExecutionContext, hub_store: HubStore):
        connector = connect(flow.consumer, flow.binding)
        try:
            stats = deliver(connector, flow, hub_store.open(), context.run.run_id)
            deprecations = _deprecations(connector, flow.consumer.title, flow.owners)
            retries = connector.retries()
        finally:
            connector.close()
        figures = stats.done()
        context.log.info("delivered %s to %s: %s", flow.object.name, flow.consumer.name, figures)
        checks.delivered(flow, stats)
        yield dg.MaterializeResult(asset_key=spec.key, metadata={
            "read": stats.read, "written": stats.written, "rejected": stats.rejected, "skipped": stats.skipped,
            "waiting": stats.waiting, "seconds": stats.seconds, "skipped_unchanged": stats.unchanged, "retries": retries, "deprecations": _json(deprecations)})
        if (found := checks.volume(flow, stats)) is not None:
            yield dg.AssetCheckResult(check_name="volume_within_bounds", asset_key=spec.key,
                                      passed=found.passed, metadata={"records": found.records})

    return _deliver


def reconciliation_check(flow: Flow) -> dg.AssetChecksDefinition:
    """The flow's daily comparison of source, hub and consumer (runtime.checks.reconcile)."""

    @dg.asset_check(asset=consumer_key(flow), name="reconciled",
                    description="Every source record is in the hub or parked, with the source's content "
                                "(unless changed since the last read); every eligible hub record is in the "
                                "consumer, holding each field as last sent.")
    def _reconciled(hub_store: HubStore) -> dg.AssetCheckResult:
        extractor, loader = connect(flow.source, flow.source_binding), connect(flow.consumer, flow.binding)
        try:
            found = checks.reconcile(flow, extractor, loader, hub_store.open())
        finally:
            extractor.close()
            loader.close()
        return dg.AssetCheckResult(passed=found.passed, metadata={
            "source": found.source, "hub": found.hub, "parked": found.parked, "waiting": found.waiting,
            "consumer": found.consumer, "missing_in_hub": _json(found.missing_in_hub[:100]),
            "missing_in_consumer": _json(found.missing_in_consumer[:100]),
            "only_in_consumer": _json(found.only_in_consumer[:100]),
            # `record:field` only: the values may be personal data
            "mismatched_in_hub": len(found.mismatched_in_hub),
            "mismatched_in_hub_sample": _json(found.mismatched_in_hub[:100]),
            "changed_since_read": len(found.changed_since_read),
            "content_checkable": found.content_checkable, "compared": found.compared,
            "mismatched_in_consumer": len(found.mismatched_in_consumer),
            "mismatched_in_consumer_sample": _json(found.mismatched_in_consumer[:100])})

    return _reconciled
