"""Dead-letter queue operations: list, replay through the same validation and load, discard."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from integration_project.connectors import connect, is_live
from integration_project.errors import ConnectorError
from integration_project.model import Flow, Landscape, System
from integration_project.model.binding import Binding
from integration_project.model.data_object import DataObject
from integration_project.model.mapping import to_canonical, to_system
from integration_project.runtime.engine import Stats, commit, deliver, reason
from integration_project.runtime.store import Store, dlq, hub_records, now


@dataclass(frozen=True)
class Filters:
    """Which DLQ entries an operation applies to."""

    ids: tuple[int, ...] = ()
    flows: tuple[str, ...] = ()  # any of these flows (see `legs`)
    object: str | None = None
    reason: str | None = None  # a substring of the reason
    older_than: timedelta | None = None
    status: str = "open"


def entries(store: Store, f: Filters) -> list[dict[str, Any]]:
    """DLQ rows matching the filters, oldest first."""
    q = sa.select(dlq).where(dlq.c.status == f.status).order_by(dlq.c.id)
    if f.ids:
        q = q.where(dlq.c.id.in_(f.ids))
    if f.flows:
        q = q.where(dlq.c.flow.in_(f.flows))
    if f.object:
        q = q.where(dlq.c.object == f.object)
    if f.reason:
        q = q.where(dlq.c.reason.contains(f.reason))
    if f.older_than:
        q = q.where(dlq.c.created_at <= now() - f.older_than)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings().all()]


def legs(landscape: Landscape, flow: str) -> tuple[str, ...]:
    """The DLQ flows holding records a flow misses: its own and, for a flow to a consumer, its
    source's leg into the hub (validation rejects are parked once, under that leg)."""
    found = next((f for f in landscape.flows() if f.name == flow), None)
    return (flow, f"{found.object.name}_{found.source.name}_to_hub") if found else (flow,)


def _ingest_flows(landscape: Landscape) -> dict[str, tuple[System, Binding, DataObject]]:
    found = {}
    for obj in landscape.objects.values():
        if source := landscape.source_of(obj.name):
            found[f"{obj.name}_{source[0].name}_to_hub"] = (*source, obj)
    return found


def _ends(landscape: Landscape, flow: str) -> tuple[str, str]:
    if hit := _ingest_flows(landscape).get(flow):
        return hit[0].name, "hub"
    consumer = next(f for f in landscape.flows() if f.name == flow)
    return "hub", consumer.consumer.name


def discard(landscape: Landscape, store: Store, rows: list[dict[str, Any]], who: str) -> int:
    """Mark entries discarded; each one is recorded in the ledger."""
    with store.transaction() as conn:
        for row in rows:
            conn.execute(sa.update(dlq).where(dlq.c.id == row["id"]).values(status="discarded"))
            source, target = _ends(landscape, row["flow"])
            store.record(conn, run_id=who, flow=row["flow"], obj=row["object"], record_id=row["record_id"],
                         from_system=source, to_system=target, outcome="discarded",
                         key=f"dlq:{row['id']}")
    return len(rows)


def replay(landscape: Landscape, store: Store, rows: list[dict[str, Any]],
           dry_run: bool = False) -> list[dict[str, Any]]:
    """Send entries again through validation and the idempotent load; say what happened to each.

    A record rejected by validation is read again from its source (it may have been fixed there);
    one rejected by a consumer, or waiting for a prerequisite, is delivered from the hub again.
    """
    run_id = f"replay-{int(time.time())}"
    ingest_flows = _ingest_flows(landscape)
    consumer_flows = {f.name: f for f in landscape.flows()}
    by_flow: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_flow[row["flow"]].append(row)
    report: list[dict[str, Any]] = []
    touched: set[str] = set()  # objects whose consumers must be brought up to date
    for flow_name, group in by_flow.items():
        if flow_name in ingest_flows:
            source, binding, obj = ingest_flows[flow_name]
            report += _replay_source(source, binding, obj, store, group, run_id, dry_run)
            touched.add(obj.name)
        else:
            flow = consumer_flows[flow_name]
            report += [_preview(flow, store, row) if dry_run else {"id": row["id"], "flow": flow_name,
                       "record_id": row["record_id"], "action": "deliver"} for row in group]
            if not dry_run:
                _deliver(flow, store, run_id)
    if not dry_run:
        for flow in consumer_flows.values():
            if flow.object.name in touched and is_live(flow):
                try:
                    _deliver(flow, store, run_id)
                except ConnectorError as exc:  # one unreachable consumer does not stop the others
                    report.append({"id": 0, "flow": flow.name, "record_id": None, "action": "deliver",
                                   "detail": f"{flow.consumer.name} not reached: {exc}"})
        still = {r["id"] for r in entries(store, Filters(ids=tuple(r["id"] for r in rows)))}
        for item in report:
            item["outcome"] = "still open" if item["id"] in still else "resolved"
    return report


def _replay_source(source: System, binding: Binding, obj: DataObject, store: Store,
                   rows: list[dict[str, Any]], run_id: str, dry_run: bool) -> list[dict[str, Any]]:
    ids = {r["record_id"] for r in rows if r["record_id"]}
    connector = connect(source, binding)
    try:
        current = connector.fetch(binding.resource, binding.mapping[obj.identity_key], ids)
    finally:
        connector.close()
    by_id = {str(to_canonical(r, binding.mapping).get(obj.identity_key)): r for r in current}
    out = []
    for row in rows:
        item = {"id": row["id"], "flow": row["flow"], "record_id": row["record_id"]}
        raw = by_id.get(row["record_id"] or "")
        if raw is None:
            out.append({**item, "action": "none", "detail": f"not found in {source.name}; discard it"})
            continue
        try:
            canonical = obj.model.model_validate(to_canonical(raw, binding.mapping)).model_dump(mode="json")
        except ValidationError as exc:
            out.append({**item, "action": "none", "detail": f"still invalid: {reason(exc)}"})
            continue
        out.append({**item, "action": "ingest", "record": canonical})
    if not dry_run and by_id:
        commit(list(by_id.values()), source.name, binding, obj, store, run_id, Stats())
    return out


def _preview(flow: Flow, store: Store, row: dict[str, Any]) -> dict[str, Any]:
    found = store.rows(hub_records, object=flow.object.name, record_id=row["record_id"])
    payload = to_system(json.loads(found[0]["data"]), flow.binding.mapping, flow.binding.compose) if found else None
    return {"id": row["id"], "flow": flow.name, "record_id": row["record_id"], "action": "deliver",
            "payload": payload}


def _deliver(flow: Flow, store: Store, run_id: str) -> None:
    connector = connect(flow.consumer, flow.binding)
    try:
        deliver(connector, flow, store, run_id)
    finally:
        connector.close()


def age(created: datetime) -> str:
    """A short age like '3h' or '2d' for listings."""
    seconds = (now() - (created if created.tzinfo else created.replace(tzinfo=now().tzinfo))).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
