"""The sync engine: extract -> validate -> commit to the hub, and hub -> map -> idempotent load."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from functools import partial
from queue import Queue
from threading import Thread
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Connection

from integration_project.connectors import Connector, Ours, Outcome, Page, Patterns, Upsert
from integration_project.errors import PermanentError
from integration_project.model import DataObject, Flow, Ingest
from integration_project.model.mapping import (Values, canonical_json, canonical_mapper, content_hash, get_path,
                                               text_hash, to_system)
from integration_project.runtime.store import HubRecord, Store, hub_records


@dataclass
class Stats:
    """What one step did; reported as materialization metadata."""

    read: int = 0
    valid: int = 0
    rejected: int = 0
    written: int = 0
    unchanged: int = 0
    skipped: int = 0
    waiting: int = 0
    deleted: int = 0  # tombstones: into the hub on ingest; carried out (deleted, archived) on deliver
    new_rejects: int = 0  # rejects not already parked (a re-read boundary record is not news)
    cursor: str | None = None
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic, repr=False)

    def done(self) -> dict[str, object]:
        """The figures as a dict, with the elapsed time."""
        self.seconds = round(time.monotonic() - self.started, 3)
        return {k: v for k, v in asdict(self).items() if k != "started"}


def hub_record(record_id: str, data: dict) -> HubRecord:
    """A canonical record with its stored JSON and that JSON's hash: one dump serves both."""
    text = canonical_json(data)
    return HubRecord(record_id, data, text_hash(text), text)


Reject = tuple[dict, object, str]  # the payload parked, its record id (None when unknown), the reason


def reason(error: ValidationError) -> str:
    """A one-line, value-free reason: which fields failed and why (no personal data)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '-'}: {e['msg']}" for e in error.errors())


def prefetched(pages: Iterator[Page], depth: int = 2) -> Iterator[Page]:
    """Pages read by a background thread, so the next request overlaps this page's validation."""
    queue: Queue = Queue(maxsize=depth)
    done = object()

    def read() -> None:
        try:
            for page in pages:
                queue.put(page)
            queue.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(exc)

    Thread(target=read, daemon=True, name="prefetch").start()
    while (item := queue.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


GROUP = 500  # records of pages that advance no cursor committed in one transaction at most


def grouped(pages: Iterator[Page], size: int = GROUP) -> Iterator[Page]:
    """Consecutive pages joined while none carries a cursor, up to `size` records, with the page
    that carries one: a transaction's fixed costs (its lock, lookups, statements and commit) spread
    over several pages. A cursor is still committed only with every record it covers."""
    records: list[dict] = []
    try:
        for page in pages:
            records += page.records
            if page.cursor is not None or len(records) >= size:
                yield Page(records, page.cursor)
                records = []
    except Exception:  # the pages read before a failed read are committed, as page by page
        if records:
            yield Page(records, None)
        raise
    if records:
        yield Page(records, None)


def canonicalize(records: list[dict], mapping: dict[str, str], obj: DataObject, values: Values | None = None
                 ) -> tuple[dict[str, HubRecord], list[Reject]]:
    """Map source records to the canonical shape (values read through the binding's value map) and
    validate each against the object's model: the valid ones by id, with their content hash, and the
    rejects with a reason each. A record read twice counts as it was read last: a reject followed by
    a valid version of the same record is dropped, as a later page would have resolved it."""
    validate, dump = obj.model.__pydantic_validator__.validate_python, obj.model.__pydantic_serializer__.to_python
    to_canonical = canonical_mapper(mapping, values)
    valid: dict[str, HubRecord] = {}
    last_valid: dict[str, int] = {}  # record id -> where its last valid version was read
    rejects: list[Reject] = []
    rejected_at: list[int] = []
    for at, raw in enumerate(records):
        data = to_canonical(raw)
        try:
            canonical = dump(validate(data), mode="json")
        except ValidationError as exc:
            rejects.append((raw, data.get(obj.identity_key), reason(exc)))
            rejected_at.append(at)
            continue
        rid = str(canonical[obj.identity_key])
        valid[rid] = hub_record(rid, canonical)
        last_valid[rid] = at
    if rejects and any(str(r[1]) in last_valid for r in rejects if r[1] is not None):
        rejects = [r for r, at in zip(rejects, rejected_at, strict=True)
                   if r[1] is None or last_valid.get(str(r[1]), -1) < at]
    return valid, rejects


def _park_duplicates(conn, store: Store, obj: DataObject, key: str, valid: dict[str, HubRecord],
                     rejects: list, in_hub: Iterable[str]) -> None:
    """Move records whose match-key value another record holds (in the hub or earlier in this
    batch) from `valid` to `rejects`; claim the values of the records that stay (`in_hub`: which of
    them the hub holds, the only ones that may hold an older value)."""
    values = {rid: str(r.data[key]).strip().lower() for rid, r in valid.items() if r.data.get(key) not in (None, "")}
    owners = store.key_owners(conn, obj.name, key, set(values.values()))
    claims: dict[str, str] = {}
    for rid, value in values.items():
        owner = owners.get(value)
        if owner is None:
            owners[value] = rid
            claims[rid] = value
        elif owner != rid:
            rejects.append((valid.pop(rid).data, rid, f"{key}: duplicate of {obj.name} {owner}"))
        # else: the record holds this value already
    store.claim_keys(conn, obj.name, key, claims, holders=in_hub)


def ingest(connector: Connector, leg: Ingest, store: Store, run_id: str,
           announced: Sequence[tuple[str, Any]] = ()) -> Stats:
    """Pull the source's changes since the leg's cursor into the hub; invalid records go to the DLQ.
    The records the source deleted are tombstoned: those it lists (`tombstones`), and those the
    webhook events this run covers (`announced`: event type, body) announce as deleted."""
    stats, resource = Stats(), leg.binding.resource
    id_path = leg.binding.mapping[leg.object.identity_key]
    snapshot: set[str] | None = set() if resource in Patterns(connector.snapshots) else None
    pages = prefetched(grouped(connector.pages(resource, since=store.cursor(leg.cursor_key))))
    with store.engine.connect() as conn:  # one connection for every page; a transaction a group
        for page in pages:  # a group of pages each (`grouped`)
            commit(page.records, leg, store, run_id, stats, cursor=page.cursor, conn=conn)
            if snapshot is not None:  # invalid rows too: the source still holds them
                snapshot.update(str(get_path(r, id_path)) for r in page.records)
                if page.cursor is not None:  # the whole export is read: what it lacks is gone at the source
                    held = store.ids(hub_records.c.record_id, object=leg.object.name, source=leg.source.name,
                                     deleted_at=None)
                    bury(sorted(held - snapshot), leg, store, run_id, stats, conn)
                    snapshot = set()
        if resource in Patterns(connector.tombstones):
            bury([str(get_path(r, id_path)) for r in connector.deleted(resource)], leg, store, run_id, stats, conn)
        gone = [found for event_type, body in announced
                if (found := connector.announced_deletion(resource, event_type, body)) is not None]
        if gone:
            bury([str(get_path(r, id_path)) for r in gone], leg, store, run_id, stats, conn)
    return stats


def bury(ids: list[str], leg: Ingest, store: Store, run_id: str, stats: Stats,
         conn: Connection | None = None) -> None:
    """Tombstone the hub records the leg's source reports deleted (those it holds, once each), with a
    ledger row each, in one transaction; each consumer then carries out its binding's on_delete."""
    with store.transaction(conn) as conn:
        store.serialize(conn, "ingest", leg.object.name)
        buried = store.tombstone(conn, leg.object.name, leg.source.name, ids)
        store.record_page(conn, run_id=run_id, flow=leg.name, obj=leg.object.name, from_system=leg.source.name,
                          to_system="hub", transfers=[(r.record_id, "deleted", f"{r.record_id}:{r.content_hash}")
                                                      for r in buried])
    stats.deleted += len(buried)


def translate_inbound(valid: dict[str, HubRecord], leg: Ingest, store: Store) -> list[Reject]:
    """Translate the references a source writes in its own ids (`leg.inbound_refs`) into canonical
    ids, in place, through what we delivered to the source; the records whose reference we cannot
    translate leave `valid` and are returned as rejects."""
    rejects: list[Reject] = []
    source = leg.source.name
    for field, target in leg.inbound_refs.items():
        ours = store.record_ids(source, target, {str(r.data[field]) for r in valid.values()
                                                 if r.data.get(field) is not None})
        for rid, rec in list(valid.items()):
            theirs = rec.data.get(field)
            if theirs is None:
                continue
            if str(theirs) not in ours:
                del valid[rid]
                rejects.append((rec.data, rid, f"{field}: {target} {theirs} in {source} is unknown to the hub"))
                continue
            valid[rid] = hub_record(rid, {**rec.data, field: ours[str(theirs)]})
    return rejects


def commit(records: list[dict], leg: Ingest, store: Store, run_id: str, stats: Stats,
           cursor: str | None = None, conn: Connection | None = None) -> None:
    """Validate raw records of a leg's source and commit the valid ones, the rejects and the cursor
    in one transaction (on `conn` if given).

    References the source writes in its own ids (`leg.inbound_refs`: a billing invoice names a
    billing customer) are translated back to canonical ids through what we delivered to the
    source; a record whose reference we cannot translate is parked.
    """
    obj, source = leg.object, leg.source.name
    stats.read += len(records)
    valid, rejects = canonicalize(records, leg.binding.mapping, obj, leg.binding.values)
    rejects += translate_inbound(valid, leg, store)
    # fields another system owns keep the hub's value, whatever this source says
    owned_elsewhere = [f for f, owner in obj.field_sources.items() if owner != source]
    with store.transaction(conn) as conn:
        store.serialize(conn, "ingest", obj.name)  # another flow's run may ingest the same records now
        known = store.hashes(conn, obj.name, valid) if valid else {}
        for key in obj.match_keys:  # the same real-world thing under a second id is parked
            _park_duplicates(conn, store, obj, key, valid, rejects, known)
        stats.valid += len(valid)
        stats.rejected += len(rejects)
        if owned_elsewhere and valid:
            for rid, held in store.hub_data(conn, obj.name, valid).items():
                valid[rid] = hub_record(rid, {**valid[rid].data, **{f: held.get(f) for f in owned_elsewhere}})
        new = [r for rid, r in valid.items() if rid not in known]
        changed = [r for rid, r in valid.items() if rid in known and known[rid] != r.content_hash]
        store.upsert_hub(conn, obj.name, source, new, changed)
        stats.written += len(new) + len(changed)
        stats.unchanged += len(valid) - len(new) - len(changed)
        parked = [(None if rid is None else str(rid), raw, why) for raw, rid, why in rejects]
        # the records gone through close their open entries; the rejects are parked (one SELECT)
        new_rejects = store.dead_letter_many(conn, flow=leg.name, obj=obj.name, stage="validate",
                                             run_id=run_id, entries=parked, resolved=valid)
        stats.new_rejects += new_rejects
        store.add_tally(conn, leg.name, len(records), new_rejects)  # what each flow's validity is judged on
        # a ledger row per transfer: each record ingested, then each parked
        store.record_page(conn, run_id=run_id, flow=leg.name, obj=obj.name, from_system=source, to_system="hub",
                          transfers=[*((r.record_id, "ingested", f"{r.record_id}:{r.content_hash}")
                                       for r in (*new, *changed)),
                                     *((rid, "dead_lettered", None) for rid, _, _ in parked)])
        if cursor is not None:  # the same transaction as the records it covers
            store.set_cursor(conn, leg.cursor_key, cursor)
            stats.cursor = cursor


@dataclass(frozen=True)
class Shape:
    """What a flow's consumer receives of a hub record: the binding's mapping and composed fields,
    without the fields the consumer owns, references in the consumer's own ids."""

    flow: Flow
    owned: frozenset[str]  # fields the consumer owns: never sent to it
    refs: dict[str, str]  # field -> the object it references, translated into the consumer's ids

    @classmethod
    def of(cls, flow: Flow) -> Shape:
        """The flow's shape. A reference is translated into the consumer's own id where the consumer
        receives that object from us; where it keeps no such records, or owns them (its ids are
        ours), our id goes as is."""
        obj, consumer = flow.object, flow.consumer
        received = {b.object for b in consumer.bindings if b.role == "consumer"}
        return cls(flow, frozenset(f for f, system in obj.field_sources.items() if system == consumer.name),
                   {f: t for f, t in obj.references.items() if f in flow.binding.mapping and t in received})

    def payload(self, data: dict, store: Store) -> tuple[dict, list[str]]:
        """The payload sent for a hub record's data, and the referenced records the consumer lacks
        yet (`<object> <id>`; the payload is not to be sent while any is missing)."""
        data, missing = dict(data), []
        for field, target in self.refs.items():
            if data.get(field) is not None:
                theirs = store.external_id(self.flow.consumer.name, target, str(data[field]))
                if theirs is None:
                    missing.append(f"{target} {data[field]}")
                data[field] = theirs
        binding = self.flow.binding
        return to_system({k: v for k, v in data.items() if k not in self.owned}, binding.mapping,
                         binding.compose, binding.values), missing


def deliver(connector: Connector, flow: Flow, store: Store, run_id: str) -> Stats:
    """Send every hub record the consumer lacks in its current version, exactly once.

    Records outside the binding's `where` filter are skipped; references to objects the consumer
    receives from us are translated into its own ids, and a record whose referenced record is not
    in the consumer yet is parked (stage `sequence`) and retried by the next run. Fields the consumer
    owns (the object's `field_sources`) are never sent to it.

    Up to the consumer API's `concurrency` sends are in flight at once, in threads; the hub store is
    used from this thread only: a record is marked pending before it is sent, and done (with its
    ledger row) once its answer is in. A send that fails for good stops the run after the sends
    already in flight are recorded.

    Where the connector writes the resource in batches (`batches`), the pending records go up to
    that many a call (`upsert_many`); each has its own outcome, so a record the system refuses is
    parked and the rest of its batch is done. The last, partial batch goes as soon as the records
    are read: a batch waits for nothing but the hub's reads.
    """
    stats, binding, obj = Stats(), flow.binding, flow.object
    consumer = flow.consumer.name
    shape = Shape.of(flow)
    # The consumer may already hold our records (keyed by our id) before its first sync: record
    # them all as held, so that a record sent later, even one parked today, updates instead of
    # duplicating. After a crash a create may have been sent whose answer was never recorded:
    # look those up too before sending again.
    connector.prepare(binding.resource, obj.model, binding.mapping, obj.identity_key)  # e.g. create its table
    index: dict[str, str] | None = None
    if not store.has_deliveries(consumer, obj.name):
        index = connector.index(binding.resource, binding.mapping[obj.identity_key]) or {}
        store.hold(consumer, obj.name, index)
    total = store.count(obj.name)
    api = flow.consumer.api_for(binding)
    workers = api.concurrency if api else 1
    size = connector.batches.get(binding.resource, 0)  # 0: one record a call (`upsert`)
    in_flight: dict[Future[list[Outcome]], list[tuple[HubRecord, str]]] = {}
    batch: list[tuple[HubRecord, str, Upsert]] = []  # pending records gathered for one `upsert_many`
    failures: list[BaseException] = []

    def one(send: Callable[[], str]) -> list[Outcome]:
        """A single send's outcome: the system's id, or its refusal of this record."""
        try:
            return [send()]
        except PermanentError as exc:
            return [exc]

    def remove(external: str) -> str:
        connector.remove(binding.resource, external, binding.on_delete)
        return external

    def settle(done: Iterable[Future[list[Outcome]]]) -> None:
        for future in done:
            sent = in_flight.pop(future)
            try:
                outcomes = future.result()
            except Exception as exc:  # retries exhausted: its records stay pending, looked up next run
                failures.append(exc)
                continue
            for (rec, sent_as), outcome in zip(sent, outcomes, strict=True):
                record(rec, sent_as, outcome)

    def record(rec: HubRecord, sent_as: str, outcome: Outcome) -> None:
        key = f"{rec.record_id}:{rec.content_hash}"
        if isinstance(outcome, PermanentError):
            stats.rejected += 1
            with store.transaction() as conn:
                store.dead_letter(conn, flow=flow.name, obj=obj.name, stage="load", record_id=rec.record_id,
                                  payload=rec.data, reason=str(outcome), run_id=run_id)
                store.record(conn, run_id=run_id, flow=flow.name, obj=obj.name, record_id=rec.record_id,
                             from_system="hub", to_system=consumer, outcome="dead_lettered", key=key)
            return
        kept = None if rec.deleted and binding.on_delete == "delete" else outcome  # a deleted record: no id
        store.mark_delivery(consumer, obj.name, rec.record_id, rec.content_hash, "done", kept, sent_as)
        with store.transaction() as conn:
            store.resolve_dead_letters(conn, flow.name, [rec.record_id])
            store.record(conn, run_id=run_id, flow=flow.name, obj=obj.name, record_id=rec.record_id,
                         from_system="hub", to_system=consumer,
                         outcome=f"{binding.on_delete}d" if rec.deleted else "delivered", key=key)
        if rec.deleted:
            stats.deleted += 1
        else:
            stats.written += 1

    def submit(call: Callable[[], list[Outcome]], sent: list[tuple[HubRecord, str]]) -> None:
        in_flight[pool.submit(call)] = sent
        if len(in_flight) >= 2 * workers:  # keep the threads busy, memory flat
            settle(wait(in_flight, return_when=FIRST_COMPLETED).done)

    def flush() -> None:
        """Send the records gathered so far in one batch write."""
        if batch:
            writes = [write for _, _, write in batch]
            submit(lambda: connector.upsert_many(binding.resource, writes), [(r, h) for r, h, _ in batch])
            batch.clear()

    with ThreadPoolExecutor(workers, thread_name_prefix=f"load-{consumer}") as pool:
        for rec, sent in store.undelivered(consumer, obj.name):
            if failures:
                break
            stats.read += 1
            if rec.deleted:
                external = sent["external_id"] if sent else None
                if external is None and sent and sent["status"] == "pending":  # a create's answer was lost
                    if index is None:
                        index = connector.index(binding.resource, binding.mapping[obj.identity_key]) or {}
                    external = index.get(rec.record_id)
                if external is None or binding.on_delete == "ignore":  # nothing of it there, or kept on purpose
                    store.mark_delivery(consumer, obj.name, rec.record_id, rec.content_hash, "done", external,
                                        sent["payload_hash"] if sent else None)
                    if external is not None:
                        with store.transaction() as conn:
                            store.record(conn, run_id=run_id, flow=flow.name, obj=obj.name,
                                         record_id=rec.record_id, from_system="hub", to_system=consumer,
                                         outcome="delete_ignored", key=f"{rec.record_id}:{rec.content_hash}")
                    stats.skipped += 1
                    continue
                store.mark_delivery(consumer, obj.name, rec.record_id, rec.content_hash, "pending", external,
                                    binding.on_delete)
                submit(partial(one, partial(remove, external)), [(rec, binding.on_delete)])
                continue
            if not flow.admits(rec.data):
                store.mark_delivery(consumer, obj.name, rec.record_id, rec.content_hash, "skipped", None)
                stats.skipped += 1
                continue
            payload, missing = shape.payload(rec.data, store)
            if missing:
                stats.waiting += 1
                with store.transaction() as conn:
                    store.dead_letter(conn, flow=flow.name, obj=obj.name, stage="sequence",
                                      record_id=rec.record_id, payload=rec.data, run_id=run_id,
                                      reason=f"waiting for {', '.join(missing)} in {consumer}")
                continue
            external = sent["external_id"] if sent else None
            if external is None and sent and sent["status"] == "pending":
                if index is None:
                    index = connector.index(binding.resource, binding.mapping[obj.identity_key]) or {}
                external = index.get(rec.record_id)
            sent_as = content_hash(payload)
            if sent and sent["status"] == "done" and sent["payload_hash"] == sent_as:
                # the new version differs only where this consumer receives nothing: nothing to send
                store.mark_delivery(consumer, obj.name, rec.record_id, rec.content_hash, "done", external, sent_as)
                stats.unchanged += 1
                continue
            store.mark_delivery(consumer, obj.name, rec.record_id, rec.content_hash, "pending", external, sent_as)
            # the connector retries the send; a create whose answer is lost it looks up by our id first
            write = Upsert(external, payload, Ours(binding.mapping[obj.identity_key], rec.record_id))
            if size:
                batch.append((rec, sent_as, write))
                if len(batch) >= size:
                    flush()
            else:
                submit(partial(one, partial(connector.upsert, binding.resource, external, payload, write.ours)),
                       [(rec, sent_as)])
        if not failures:
            flush()  # what is left goes now, however few: no waiting for a batch to fill
        settle(wait(in_flight).done)
    if failures:
        raise failures[0]
    stats.unchanged += total - stats.read
    return stats
