"""The rules a run is judged by: validity, the dead-letter queue, schema drift, volume, reconciliation.

Each is a plain function over a leg, a step's figures and the hub store, returning a typed report
(and alerting the owners when it fails); the Dagster layer only turns reports into check results.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from integration_project.connectors import Connector
from integration_project.model import DataObject, Flow, Ingest
from integration_project.model.mapping import content_hash, get_path
from integration_project.runtime.alerts import alert
from integration_project.runtime.engine import Shape, Stats, canonicalize, translate_inbound
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
    """Source, hub and consumer compared by record id and by content; parked records are known
    differences. A difference is named `record:field` (a mapped field by its canonical name, a
    composed one by the consumer's path), never by its values."""

    source: int
    hub: int
    parked: int
    waiting: int
    consumer: int
    missing_in_hub: list[str]
    missing_in_consumer: list[str]
    only_in_consumer: list[str]
    mismatched_in_hub: list[str] = field(default_factory=list)  # the hub holds another value than the source
    changed_since_read: list[str] = field(default_factory=list)  # source records the next ingest reads (not judged)
    compared: int = 0  # consumer records whose content was compared with their delivered payload
    mismatched_in_consumer: list[str] = field(default_factory=list)  # the consumer holds another value than sent
    content_checkable: bool = True  # False: the consumer cannot be read back, only its ids are compared

    @property
    def passed(self) -> bool:
        """Every source record is in the hub or parked, with the source's content unless the source
        changed it since the hub's cursor; every eligible hub record is in the consumer, holding
        what it was last sent."""
        return not (self.missing_in_hub or self.missing_in_consumer or self.mismatched_in_hub
                    or self.mismatched_in_consumer)


def same(sent: Any, held: Any) -> bool:
    """Whether a consumer holds a value sent: equal, both blank, equal numbers (a vendor may answer
    `12.5` as `"12.50"`), or, for a nested value, the same at each part sent that the system keeps
    (it may add parts of its own, and keep none of a part its schema lacks: the 3PL's order lines
    hold SKU and quantity, not the price)."""
    if isinstance(sent, dict):
        return isinstance(held, dict) and all(same(v, held[k]) for k, v in sent.items() if v is not None and k in held)
    if isinstance(sent, list):
        return isinstance(held, list) and len(sent) == len(held) and all(map(same, sent, held))
    if sent == held or (sent in (None, "") and held in (None, "")):
        return True
    if isinstance(sent, datetime) and isinstance(held, datetime) and (sent.tzinfo is None) != (held.tzinfo is None):
        return sent.replace(tzinfo=None) == held.replace(tzinfo=None)  # a column that keeps no time zone
    number = _number(sent)
    return number is not None and number == _number(held)


def _number(value: Any) -> Decimal | None:
    """A number, or a string that spells one, as a Decimal; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _paths(flow: Flow, owned: frozenset[str]) -> list[tuple[str, str]]:
    """(name, consumer path) of what the flow sends: mapped fields, then composed ones."""
    mapped = [(f, path) for f, path in flow.binding.mapping.items() if f not in owned]
    return mapped + [(path, path) for path in flow.binding.compose]


def _source_content(flow: Flow, records: list[dict], store: Store, hub: dict[str, dict],
                    parked: set[str]) -> dict[str, list[str]]:
    """Hub records whose content differs from the source's: record id -> the fields (those this
    source owns; records parked aside, their difference is known)."""
    leg, obj = flow.ingest, flow.object
    owned = [f for f in leg.binding.mapping if obj.field_sources.get(f, leg.source.name) == leg.source.name]
    differing: dict[str, list[str]] = {}
    for start in range(0, len(records), 1000):
        valid, _ = canonicalize(records[start:start + 1000], leg.binding.mapping, obj, leg.binding.values)
        translate_inbound(valid, leg, store)
        for rid, rec in valid.items():
            held = hub.get(rid)
            if held is None or rid in parked:
                continue
            fields = [f for f in owned if rec.data.get(f) != held.get(f)]
            if fields:
                differing[rid] = fields
    return differing


def _changed_since(flow: Flow, extractor: Connector, cursor: str | None) -> set[str]:
    """The ids of the source records its next ingest reads: changed since the hub's cursor."""
    binding = flow.source_binding
    path = binding.mapping[flow.object.identity_key]
    return {str(get_path(r, path)) for r in extractor.changed(binding.resource, cursor)}


def _consumer_content(flow: Flow, loader: Connector, store: Store, hub: dict[str, dict],
                      eligible: set[str]) -> tuple[int, list[str]] | None:
    """How many delivered records the consumer was compared on and the `record:field` it holds
    otherwise than last sent; None when it cannot be read back. A record is compared in the version
    the consumer confirmed: done, with the payload the current hub record maps to. A system that
    takes no change of a record keeps the first version it was given, maybe its own from before our
    first sync: it is not read back."""
    binding, obj = flow.binding, flow.object
    if not loader.takes_changes(binding.resource):
        return None
    before = _sends(flow, store)
    try:
        read = iter(loader.scan(binding.resource))
        first = next(read, None)
    except NotImplementedError:
        return None
    id_path = binding.mapping[obj.identity_key]
    held: dict[str, list[dict]] = {}  # a system may hold several records under our id (duplicates of its own)
    for record in [first, *read] if first is not None else []:
        if (ours := get_path(record, id_path)) is not None:
            held.setdefault(str(ours), []).append(record)
    after = _sends(flow, store)  # a record sent while the consumer was read is not judged
    shape = Shape.of(flow)
    paths = _paths(flow, shape.owned)
    compared, mismatched = 0, []
    for rid in sorted(eligible & held.keys() & before.keys()):
        payload, missing = shape.payload(hub[rid], store)
        if missing or after.get(rid) != before[rid] or content_hash(payload) != before[rid][0]:
            continue  # not delivered in this version yet, or sent again meanwhile
        compared += 1
        sent = loader.normal(binding.resource, payload)
        # the record we wrote is the one of them that holds most of what we sent
        differing = [_differing(sent, loader.normal(binding.resource, record), paths) for record in held[rid]]
        mismatched += [f"{rid}:{name}" for name in min(differing, key=len)]
    return compared, mismatched


def _sends(flow: Flow, store: Store) -> dict[str, tuple[str, object]]:
    """The consumer's confirmed deliveries: record id -> (payload hash, when marked done). A send
    marks its row pending first, so a row the same before and after a read saw no send meanwhile."""
    return {r["record_id"]: (r["payload_hash"], r["updated_at"]) for r in store.rows(
        deliveries, system=flow.consumer.name, object=flow.object.name, status="done")}


def _differing(sent: dict[str, Any], held: dict[str, Any], paths: list[tuple[str, str]]) -> list[str]:
    """The names of the paths whose value was sent and is not what the system holds."""
    return [name for name, path in paths
            if (value := get_path(sent, path)) is not None and not same(value, get_path(held, path))]


def reconcile(flow: Flow, extractor: Connector, loader: Connector, store: Store) -> Reconciliation:
    """Source == hub (+ those parked as invalid) == the consumer (+ those parked for it), by id and
    by content; alerts the owners when they disagree.

    Source against hub: each hub record's fields the source owns are compared with the source's
    current record, mapped and validated as an ingest would. A record that differs and that the
    source reports changed since the hub's cursor (`changed`, read-only, read after the scan)
    is waiting for the next ingest (`changed_since_read`, not a failure); any other difference is a
    lost update. The cursor is read before the hub, and both before the source: a run committing
    meanwhile can only widen what counts as changed since, never make a waiting change look lost.

    Hub against consumer: each live, eligible record the consumer confirmed in its current payload
    is read back (`scan`) and each field sent compared with what the consumer holds, both in the
    connector's normal form (`normal`); a write the vendor ignored fails the check. A record sent
    while the consumer was read (its delivery row changed meanwhile) is left for the next check. A
    consumer that keeps no records of ours (`index` None), takes no change of one
    (`takes_changes`) or cannot be read back is compared by id only.
    """
    source, consumer, obj = flow.source_binding, flow.binding, flow.object
    cursor = store.cursor(flow.ingest.cursor_key)
    live = {r["record_id"]: json.loads(r["data"]) for r in store.rows(hub_records, object=obj.name, deleted_at=None)}
    hub = set(live)
    records = list(extractor.scan(source.resource))
    source_ids = {str(get_path(r, source.mapping[obj.identity_key])) for r in records}
    listed = loader.index(consumer.resource, consumer.mapping[obj.identity_key])
    # a system that keeps no records of ours to list is compared with what it confirmed to us
    held = set(listed) if listed is not None else store.ids(
        deliveries.c.record_id, system=flow.consumer.name, object=obj.name, status="done")
    buried = store.ids(hub_records.c.record_id, object=obj.name) - hub  # kept or archived by an on_delete
    parked = store.ids(dlq.c.record_id, flow=flow.ingest.name, status="open")
    waiting = store.ids(dlq.c.record_id, flow=flow.name, status="open")
    eligible = hub if not consumer.where else {rid for rid, data in live.items() if flow.admits(data)}
    differing = _source_content(flow, records, store, live, parked)
    changed = _changed_since(flow, extractor, cursor) if differing else set()
    content = None if listed is None else _consumer_content(flow, loader, store, live, eligible)
    compared, mismatched = content or (0, [])
    found = Reconciliation(
        source=len(source_ids), hub=len(hub), parked=len(parked), waiting=len(waiting), consumer=len(held),
        missing_in_hub=sorted(source_ids - hub - parked), missing_in_consumer=sorted(eligible - held - waiting),
        only_in_consumer=sorted(held - hub - buried),
        mismatched_in_hub=[f"{rid}:{f}" for rid in sorted(differing.keys() - changed) for f in differing[rid]],
        changed_since_read=sorted(differing.keys() & changed), compared=compared,
        mismatched_in_consumer=mismatched, content_checkable=content is not None)
    if not found.passed:
        alert(f"{flow.name}: systems disagree", f"{len(found.missing_in_hub)} source record(s) missing in "
              f"the hub, {len(found.missing_in_consumer)} hub record(s) missing in {flow.consumer.title}; "
              f"{len(found.mismatched_in_hub)} field(s) the hub holds otherwise than {flow.source.title}, "
              f"{len(found.mismatched_in_consumer)} field(s) {flow.consumer.title} holds otherwise than "
              f"sent (e.g. {', '.join((found.mismatched_in_hub + found.mismatched_in_consumer)[:5]) or '-'}).",
              flow.owners)
    return found
