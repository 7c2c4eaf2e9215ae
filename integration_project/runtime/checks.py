"""The rules a run is judged by: validity, the dead-letter queue, schema drift, volume, reconciliation.

Each is a plain function over a leg, a step's figures and the hub store, returning a typed report
(and alerting the owners when it fails); the Dagster layer only turns reports into check results.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from integration_project.connectors import Connector
from integration_project.model import DataObject, Flow, Ingest
from integration_project.model.mapping import get_path
from integration_project.runtime.alerts import alert
from integration_project.runtime.engine import Stats
from integration_project.runtime.store import Store, deliveries, dlq, hub_records


@dataclass(frozen=True)
class Validity:
    """The share of new invalid records a flow takes in, against the object's limit (a failure
    blocks the flow's consumer)."""

    flow: str  # the flow judged (or, for an object nobody consumes, its leg into the hub)
    read: int
    new_rejects: int
    limit: float

    @property
    def share(self) -> float:
        """New rejects per record read."""
        return self.new_rejects / self.read if self.read else 0.0

    @property
    def passed(self) -> bool:
        """At most the declared share, and always one: in a real-time run of a handful of records,
        one bad record is no trend."""
        return self.new_rejects <= max(self.limit * self.read, 1)


def validity(leg: Ingest, store: Store, flows: Sequence[Flow] = ()) -> list[Validity]:
    """Judge each flow on the records its leg into the hub read since the flow was last judged,
    whichever run read them: flows sharing a source (two consumers of one nightly file) get the
    same verdict on the same records, not the first run the records and the others nothing. Only
    new rejects count (a record already parked and read again is no new problem). With no flow,
    the leg itself is judged. A failing flow's owners are alerted."""
    judged = store.judge(leg.name, [f.name for f in flows] or [leg.name])
    found = []
    judges: list[Flow | None] = [*flows] or [None]
    for flow in judges:
        name = flow.name if flow else leg.name
        read, rejected = judged[name]
        verdict = Validity(name, read, rejected, leg.object.max_invalid_share)
        if not verdict.passed:
            blocked = f"{flow.consumer.title} was not loaded." if flow else "Nothing consumes it yet."
            alert(f"{leg.object.name}: too many invalid records from {leg.source.title}",
                  f"{rejected} of {read} ({verdict.share:.1%}) failed the canonical model since "
                  f"{name} last ran; the limit is {verdict.limit:.0%}. {blocked}",
                  flow.owners if flow else leg.owners)
        found.append(verdict)
    return found


@dataclass(frozen=True)
class DeadLetters:
    """What waits in the dead-letter queue for one object, counted by reason."""

    reasons: dict[str, int]

    @property
    def open(self) -> int:
        """Entries still open."""
        return sum(self.reasons.values())

    @property
    def passed(self) -> bool:
        """Nothing waits."""
        return not self.reasons


def dead_letters(leg: Ingest, store: Store, parked_now: int) -> DeadLetters:
    """The object's open entries; alerts the owners when this run parked records."""
    if parked_now:
        alert(f"{leg.object.name}: {parked_now} record(s) parked in the dead-letter queue",
              f"From {leg.source.title}; `integrations dlq list --object {leg.object.name}` shows them.",
              leg.owners)
    return DeadLetters(store.open_reasons(leg.object.name))


def quarantined(leg: Ingest, files: dict[str, str]) -> None:
    """Alert the leg's owners of each file its source set aside unread (file name -> reason)."""
    for name, why in files.items():
        alert(f"{leg.source.title}: {name} quarantined", f"{why}. It was not read nor committed; it "
              f"waits in the drop folder's quarantine/.", leg.owners)


def schema_signature(obj: DataObject) -> list[str]:
    """The canonical model's columns and types, as compared from run to run."""
    return sorted(f"{name}:{field.annotation}" for name, field in obj.model.model_fields.items())


@dataclass(frozen=True)
class SchemaDrift:
    """Columns added to and removed from the canonical model since the last run."""

    added: list[str]
    removed: list[str]

    @property
    def passed(self) -> bool:
        """The model has the columns of the last run."""
        return not self.added and not self.removed


def schema_drift(previous: list[str] | None, current: list[str]) -> SchemaDrift:
    """Compare this run's signature with the last run's (none yet: no drift)."""
    old = current if previous is None else previous
    return SchemaDrift(sorted(set(current) - set(old)), sorted(set(old) - set(current)))


@dataclass(frozen=True)
class VolumeCheck:
    """A delivery's records against the binding's declared bounds."""

    records: int
    low: int
    high: int

    @property
    def passed(self) -> bool:
        """Within the bounds."""
        return self.low <= self.records <= self.high


def volume(flow: Flow, stats: Stats) -> VolumeCheck | None:
    """Judge a delivery's volume (None when neither its binding nor its object declares one); alerts when outside."""
    bounds = flow.volume
    if bounds is None:
        return None
    found = VolumeCheck(stats.read, bounds.min, bounds.max)
    if not found.passed:
        alert(f"{flow.name}: volume outside its bounds", f"{stats.read} changed records "
              f"this run; expected {bounds.min}..{bounds.max}.", flow.owners)
    return found


def delivered(flow: Flow, stats: Stats) -> None:
    """Alert the flow's owners when a delivery parked records (rejected, or waiting)."""
    if stats.rejected or stats.waiting:
        alert(f"{flow.name}: records parked", f"{stats.rejected} rejected by "
              f"{flow.consumer.title}, {stats.waiting} waiting for a prerequisite.", flow.owners)


@dataclass(frozen=True)
class Reconciliation:
    """Source, hub and consumer compared by record id; parked records are known differences."""

    source: int
    hub: int
    parked: int
    waiting: int
    consumer: int
    missing_in_hub: list[str]
    missing_in_consumer: list[str]
    only_in_consumer: list[str]

    @property
    def passed(self) -> bool:
        """Every source record is in the hub or parked; every eligible hub record in the consumer."""
        return not self.missing_in_hub and not self.missing_in_consumer


def reconcile(flow: Flow, extractor: Connector, loader: Connector, store: Store) -> Reconciliation:
    """Source ids == hub ids (+ those parked as invalid) == the consumer's ids (+ those parked for
    it); alerts the owners when they disagree."""
    source, consumer, obj = flow.source_binding, flow.binding, flow.object
    source_ids = {str(get_path(r, source.mapping[obj.identity_key])) for r in extractor.scan(source.resource)}
    listed = loader.index(consumer.resource, consumer.mapping[obj.identity_key])
    # a system that keeps no records of ours to list is compared with what it confirmed to us
    held = set(listed) if listed is not None else store.ids(
        deliveries.c.record_id, system=flow.consumer.name, object=obj.name, status="done")
    hub = store.ids(hub_records.c.record_id, object=obj.name, deleted_at=None)  # tombstones aside
    buried = store.ids(hub_records.c.record_id, object=obj.name) - hub  # kept or archived by an on_delete
    parked = store.ids(dlq.c.record_id, flow=flow.ingest.name, status="open")
    waiting = store.ids(dlq.c.record_id, flow=flow.name, status="open")
    eligible = hub if not consumer.where else {
        r["record_id"] for r in store.rows(hub_records, object=obj.name, deleted_at=None)
        if flow.admits(json.loads(r["data"]))}
    found = Reconciliation(
        source=len(source_ids), hub=len(hub), parked=len(parked), waiting=len(waiting), consumer=len(held),
        missing_in_hub=sorted(source_ids - hub - parked), missing_in_consumer=sorted(eligible - held - waiting),
        only_in_consumer=sorted(held - hub - buried))
    if not found.passed:
        alert(f"{flow.name}: systems disagree", f"{len(found.missing_in_hub)} source record(s) missing in "
              f"the hub, {len(found.missing_in_consumer)} hub record(s) missing in {flow.consumer.title}.",
              flow.owners)
    return found
