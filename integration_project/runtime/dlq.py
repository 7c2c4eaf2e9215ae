"""Dead-letter queue operations: list, replay through the same validation and load, discard."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from integration_project.connectors import Connector, connect, is_live
from integration_project.errors import ConnectorError
from integration_project.model import Binding, Flow, Ingest, Landscape, System
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
    found = landscape.leg(flow)
    return (flow, found.ingest.name) if isinstance(found, Flow) else (flow,)


def _ends(landscape: Landscape, flow: str) -> tuple[str, str]:
    leg = landscape.leg(flow)
    if isinstance(leg, Ingest):
        return leg.source.name, "hub"
    if isinstance(leg, Flow):
        return "hub", leg.consumer.name
    raise LookupError(f"no flow {flow!r} in the landscape")


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


Connect = Callable[[System, Binding], Connector]


def replay(landscape: Landscape, store: Store, rows: list[dict[str, Any]],
           dry_run: bool = False, connect: Connect = connect) -> list[dict[str, Any]]:
    """Send entries again through validation and the idempotent load; say what happened to each.

    A record rejected by validation is read again from its source (it may have been fixed there)
    and committed by its leg's rules, as a run would; one rejected by a consumer, or waiting for a
    prerequisite, is delivered from the hub again.
    """
    run_id = f"replay-{int(time.time())}"
    by_flow: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_flow[row["flow"]].append(row)
    report: list[dict[str, Any]] = []
    touched: set[str] = set()  # objects whose consumers must be brought up to date
    for flow_name, group in by_flow.items():
        leg = landscape.leg(flow_name)
        if isinstance(leg, Ingest):
            report += _replay_source(leg, store, group, run_id, dry_run, connect)
            touched.add(leg.object.name)
        elif isinstance(leg, Flow):
            report += [_preview(leg, store, row) if dry_run else {"id": row["id"], "flow": flow_name,
                       "record_id": row["record_id"], "action": "deliver"} for row in group]
            if not dry_run:
                _deliver(leg, store, run_id, connect)
        else:
            report += [{"id": row["id"], "flow": flow_name, "record_id": row["record_id"], "action": "none",
                        "detail": f"no flow {flow_name!r} in the landscape; discard it"} for row in group]
    if not dry_run:
        for flow in landscape.flows():
            if flow.object.name in touched and is_live(flow):
                try:
                    _deliver(flow, store, run_id, connect)
                except ConnectorError as exc:  # one unreachable consumer does not stop the others
                    report.append({"id": 0, "flow": flow.name, "record_id": None, "action": "deliver",
                                   "outcome": "not reached", "detail": f"{flow.consumer.name}: {exc}"})
        still = {r["id"] for r in entries(store, Filters(ids=tuple(r["id"] for r in rows)))}
        for item in report:
            item.setdefault("outcome", "still open" if item["id"] in still else "resolved")
    return report


def _replay_source(leg: Ingest, store: Store, rows: list[dict[str, Any]], run_id: str, dry_run: bool,
                   connect: Connect) -> list[dict[str, Any]]:
    binding, obj = leg.binding, leg.object
    ids = {r["record_id"] for r in rows if r["record_id"]}
    connector = connect(leg.source, binding)
    try:
        current = connector.fetch(binding.resource, binding.mapping[obj.identity_key], ids)
    finally:
        connector.close()
    by_id = {str(to_canonical(r, binding.mapping, binding.values).get(obj.identity_key)): r for r in current}
    out = []
    for row in rows:
        item = {"id": row["id"], "flow": row["flow"], "record_id": row["record_id"]}
        raw = by_id.get(row["record_id"] or "")
        if raw is None:
            out.append({**item, "action": "none", "detail": f"not found in {leg.source.name}; discard it"})
            continue
        try:
            mapped = to_canonical(raw, binding.mapping, binding.values)
            canonical = obj.model.model_validate(mapped).model_dump(mode="json")
        except ValidationError as exc:
            out.append({**item, "action": "none", "detail": f"still invalid: {reason(exc)}"})
            continue
        out.append({**item, "action": "ingest", "record": canonical})
    if not dry_run and by_id:
        commit(list(by_id.values()), leg, store, run_id, Stats())
    return out


def _preview(flow: Flow, store: Store, row: dict[str, Any]) -> dict[str, Any]:
    found = store.rows(hub_records, object=flow.object.name, record_id=row["record_id"])
    payload = to_system(json.loads(found[0]["data"]), flow.binding.mapping, flow.binding.compose,
                        flow.binding.values) if found else None
    return {"id": row["id"], "flow": flow.name, "record_id": row["record_id"], "action": "deliver",
            "payload": payload}


def _deliver(flow: Flow, store: Store, run_id: str, connect: Connect) -> None:
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
