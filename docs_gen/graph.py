"""Definitions -> one networkx graph of systems, objects, assets, flows, triggers and owners.

Every page, diagram, lint finding and impact answer is a view over this graph; nothing else reads
the Definitions. Node ids are `<kind>:<name>`; every attribute is plain JSON, so the graph exports
as node-link JSON and two builds can be compared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import networkx as nx

from integration_project import contract as c

STUB_KEY = "dagster/auto_created_stub_asset"
SCHEMA_KEY = "dagster/column_schema"
CODE_REFS_KEY = "dagster/code_references"
API_FIELDS = ("vendor", "title", "base_url", "version", "auth", "credentials_env", "docs_url", "released",
              "support_ends", "support_source", "support_warning_days")
HUB = "hub"


def node_id(kind: str, name: str) -> str:
    """The id of a node: `system:crm`, `asset:crm/customer`, `owner:team:crm`."""
    return f"{kind}:{name}"


def asset_name(key: dg.AssetKey) -> str:
    """An asset key as one slash-joined string, as Dagster's UI and CLI write it."""
    return "/".join(key.path)


def redact_url(url: Any) -> Any:
    """Drop any user:password from a URL; docs show where a system is, never how to log in."""
    if not isinstance(url, str) or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _plain(value: Any) -> Any:
    """A metadata value as plain JSON data (MetadataValue wrappers and JSON text unwrapped)."""
    if isinstance(value, dg.MetadataValue):
        value = value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _json(value: Any) -> Any:
    """A contract value that is JSON by definition, whether stored as data or as JSON text."""
    value = _plain(value)
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _records(value: Any) -> list[dict[str, Any]]:
    """A table value's rows as dicts (a JSON list of dicts, from a hand-written asset, as well)."""
    if isinstance(value, dg.TableMetadataValue):
        return [_plain(dict(r.data)) for r in value.records]
    data = _json(value)
    return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []


def _pairs(value: Any) -> Any:
    """A two-column (key, value) table as a dict; other values as `_json` reads them."""
    if not isinstance(value, dg.TableMetadataValue):
        return _json(value)
    key, val = (col.name for col in value.schema.columns[:2])
    return {str(r.data.get(key)): _plain(r.data.get(val)) for r in value.records}


def _value_map(value: Any) -> dict[str, dict[str, str | None]]:
    """A binding's value map (field -> {ours: the system's or None}); {} when absent or not one."""
    found = _json(value)
    if not isinstance(found, dict):
        return {}
    return {str(f): {str(k): None if v is None else str(v) for k, v in table.items()}
            for f, table in found.items() if isinstance(table, dict)}


def _listed(value: Any) -> list[str]:
    """A list field: a list, or the ", "-joined text a table cell holds."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value or []]


def _flow(row: dict[str, Any]) -> dict[str, Any]:
    """One `integration/flows` row as flow attributes; `trigger` gathers when it runs."""
    trigger = dict(row["trigger"]) if isinstance(row.get("trigger"), dict) else {}  # the JSON form
    trigger.update({k: row[k] for k in c.TRIGGER_FIELDS if row.get(k) not in (None, "", False)})
    given = {k: _plain(row[k]) for k in ("object", "source", "purpose") if row.get(k)}  # a hand-written JSON row's
    return {**{k: _plain(row.get(k)) for k in c.FLOW_FIELDS if k not in c.TRIGGER_FIELDS}, **given, "trigger": trigger}


def _api(value: Any) -> dict[str, Any] | None:
    """The `integration/api` dict restricted to its documented fields, URLs without credentials."""
    data = _pairs(value)
    if not isinstance(data, dict):
        return None
    api = {k: data.get(k) for k in API_FIELDS if data.get(k) is not None}
    for key in ("base_url", "docs_url"):
        if key in api:
            api[key] = redact_url(api[key])
    env = api.get("credentials_env")
    if isinstance(env, dict):  # {purpose: ENV_NAME}: keep the names only
        api["credentials_env"] = sorted(str(v) for v in env.values())
    elif env is not None:
        api["credentials_env"] = _listed(env)
    return api


def _schema(value: Any) -> list[dict[str, Any]]:
    """`dagster/column_schema` as a list of {name, type, description, nullable} rows."""
    schema = value.schema if isinstance(value, dg.TableSchemaMetadataValue) else value
    if not isinstance(schema, dg.TableSchema):
        return []
    return [
        {
            "name": col.name,
            "type": col.type,
            "description": col.description or "",
            "nullable": col.constraints.nullable if col.constraints else True,
        }
        for col in schema.columns
    ]


def _local(path: str) -> str:
    """A file path as the docs show it: relative to the folder the docs are built in when inside it,
    so two checkouts of one commit give the same docs (and no machine's folders are published)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path


def _code_refs(value: Any) -> list[str]:
    """`dagster/code_references` as `path:line` or URL strings."""
    refs = getattr(value, "code_references", None) or []
    out = []
    for ref in refs:
        if isinstance(ref, dg.LocalFileCodeReference):
            path = _local(ref.file_path)
            out.append(f"{path}:{ref.line_number}" if ref.line_number else path)
        elif isinstance(ref, dg.UrlCodeReference):
            out.append(redact_url(ref.url))
    return out


def _str_or_none(value: Any) -> str | None:
    """A contract string value, or None when absent or empty."""
    value = _plain(value)
    return str(value) if value not in (None, "") else None


def _asset_attrs(node: Any, checks: list[str]) -> dict[str, Any]:
    """Everything docs show about one asset, read from its Dagster asset node and metadata."""
    meta = dict(node.metadata)
    trigger = _pairs(meta.get(c.TRIGGER))
    if isinstance(trigger, dict) and "events" in trigger:
        trigger["events"] = _listed(trigger["events"])
    return {
        "key": list(node.key.path),
        "system": _str_or_none(meta.get(c.SYSTEM)),
        "object": _str_or_none(meta.get(c.OBJECT)),
        "role": _str_or_none(meta.get(c.ROLE)),
        "source_of_truth": _str_or_none(meta.get(c.SOURCE_OF_TRUTH)),
        "flows": [_flow(f) for f in _records(meta.get(c.FLOWS))],
        "mode": _str_or_none(meta.get(c.MODE)),
        "status": _str_or_none(meta.get(c.STATUS)),
        "status_reason": _str_or_none(meta.get(c.STATUS_REASON)),
        "purpose": _str_or_none(meta.get(c.PURPOSE)),
        "api": _api(meta.get(c.API)),
        "docs_url": _str_or_none(meta.get(c.DOCS_URL)),
        "identity_key": _str_or_none(meta.get(c.IDENTITY_KEY)),
        "pii": _listed(_json(meta.get(c.PII))),
        "mapping": {str(k): str(v) for k, v in (_pairs(meta.get(c.MAPPING)) or {}).items()},
        "value_map": _value_map(meta.get(c.VALUES)),
        "owned_fields": [str(f) for f in _json(meta.get(c.OWNED_FIELDS)) or []],
        "trigger": trigger,
        "volume": _json(meta.get(c.VOLUME)),
        "freshness_minutes": _plain(meta.get(c.FRESHNESS_MINUTES)),
        "on_delete": _str_or_none(meta.get(c.ON_DELETE)),
        "declared_in": _str_or_none(meta.get(c.DECLARED_IN)),
        "assessment": _json(meta.get(c.ASSESSMENT)),
        "group": node.group_name,
        "owners": sorted(node.owners),
        "kinds": sorted(node.kinds),
        "description": node.description or "",
        "schema": _schema(meta.get(SCHEMA_KEY)),
        "code_refs": _code_refs(meta.get(CODE_REFS_KEY)),
        "stub": bool(_plain(meta.get(STUB_KEY))),
        "executable": bool(node.is_executable),
        "missing_keys": [k for k in c.REQUIRED if k not in meta],
        "other_metadata": sorted(k for k in meta if not k.startswith((c.NS, "dagster/"))),
        "checks": checks,
    }


def _targets(automation: Any, jobs: dict[str, set[str]], asset_graph: Any) -> tuple[list[str], set[str]]:
    """The job names a schedule or sensor runs and the asset names those runs materialize."""
    if isinstance(automation, dg.SensorDefinition):
        job_names = sorted({t.job_name for t in automation.targets})
        selection = automation.asset_selection
    else:
        job_names, selection = [automation.job_name], None
    assets = {asset_name(k) for k in selection.resolve(asset_graph)} if selection is not None else set()
    for name in job_names:
        assets |= jobs.get(name, set())
    return job_names, assets


class GraphBuilder:
    """Adds the nodes and edges of one Definitions to a MultiDiGraph (edge key = relation)."""

    def __init__(self) -> None:
        self.g = nx.MultiDiGraph()

    def node(self, kind: str, name: str, **attrs: Any) -> str:
        """Add or update a node; attributes merge into an existing one."""
        nid = node_id(kind, name)
        self.g.add_node(nid, kind=kind, name=name)
        self.g.nodes[nid].update(attrs)
        return nid

    def edge(self, src: str, dst: str, relation: str, **attrs: Any) -> None:
        """Add one relation between two nodes (idempotent per relation)."""
        self.g.add_edge(src, dst, key=relation, relation=relation, **attrs)

    def owners(self, target: str, owners: Iterable[str]) -> None:
        """Add owner nodes and `owns` edges to a target node."""
        for owner in owners:
            self.edge(self.node("owner", owner), target, "owns")

    def add(self, defs: dg.Definitions, origin: str, location: str = "") -> nx.MultiDiGraph:
        """Read assets, checks, jobs, schedules and sensors of `defs` into the graph."""
        self.g.graph.update(origin=origin, location=location)
        asset_graph = defs.resolve_asset_graph()
        repo = defs.get_repository_def()
        checks_by_asset: dict[str, list[str]] = {}
        for check_key in sorted(asset_graph.asset_check_keys, key=str):
            check = asset_graph.get(check_key)
            target = asset_name(check_key.asset_key)
            checks_by_asset.setdefault(target, []).append(check_key.name)
            cid = self.node("check", f"{target}:{check_key.name}", check=check_key.name,
                            asset=target, description=check.description or "", blocking=check.blocking)
            self.edge(cid, node_id("asset", target), "checks")
        for key in sorted(asset_graph.get_all_asset_keys(), key=asset_name):
            self._asset(asset_graph.get(key), checks_by_asset.get(asset_name(key), []))
        for key in asset_graph.get_all_asset_keys():
            for parent in asset_graph.get(key).parent_keys:
                self.edge(node_id("asset", asset_name(parent)), node_id("asset", asset_name(key)), "lineage")
        self._systems_and_objects()
        jobs = self._jobs(defs, repo, asset_graph)
        for schedule in repo.schedule_defs:
            job_names, assets = _targets(schedule, jobs, asset_graph)
            sid = self.node("schedule", schedule.name, cron=schedule.cron_schedule,
                            timezone=schedule.execution_timezone or "UTC", jobs=job_names,
                            description=schedule.description or "", tags=dict(schedule.tags),
                            default_status=schedule.default_status.value)
            self._trigger_edges(sid, job_names, assets, schedule.tags)
        for sensor in repo.sensor_defs:
            job_names, assets = _targets(sensor, jobs, asset_graph)
            sid = self.node("sensor", sensor.name, interval_seconds=sensor.minimum_interval_seconds,
                            jobs=job_names, description=sensor.description or "",
                            tags=dict(sensor.tags), default_status=sensor.default_status.value,
                            sensor_type=sensor.sensor_type.value)
            self._trigger_edges(sid, job_names, assets, sensor.tags)
        return self.g

    def _asset(self, node: Any, checks: list[str]) -> None:
        """One asset node, its owners, and its flows."""
        attrs = _asset_attrs(node, checks)
        aid = self.node("asset", asset_name(node.key), **attrs)
        self.owners(aid, attrs["owners"])
        for flow in attrs["flows"]:
            name = str(flow.get("name") or "")
            if not name:
                continue
            flow.setdefault("object", attrs["object"])  # every row of an asset is of its object,
            flow.setdefault("source", attrs["source_of_truth"])  # from the object's source of truth
            # the binding that makes the flow says why and when: the consumer's, or a hub-only leg's source
            if attrs["role"] == "consumer" or flow.get("consumer") == HUB:
                if attrs["purpose"]:
                    flow.setdefault("purpose", attrs["purpose"])
                if attrs["on_delete"]:
                    flow.setdefault("on_delete", attrs["on_delete"])
                if not flow["trigger"]:
                    flow["trigger"] = {k: v for k, v in (attrs["trigger"] or {}).items()
                                       if k in c.TRIGGER_FIELDS and v not in (None, "", False, "false")}
            if not flow["trigger"]:
                del flow["trigger"]  # another asset's row may say it
            fid = self.node("flow", name, **{k: v for k, v in flow.items() if k != "name"})
            self.edge(fid, aid, "materializes")

    def _systems_and_objects(self) -> None:
        """System and object nodes from the assets' contract keys; SoT, consumer and flow edges."""
        for aid, a in list(self.g.nodes(data=True)):
            if a["kind"] == "asset" and a.get("system"):
                sid = self._system(aid, a)
                if a.get("object"):
                    self._object(aid, a, sid)
        for fid, f in list(self.g.nodes(data=True)):
            if f["kind"] == "flow":
                self._flow_edges(fid, f)
        for nid, n in list(self.g.nodes(data=True)):
            if n["kind"] in ("system", "object"):
                n.setdefault("owners", [])
                self.owners(nid, n["owners"])

    def _system(self, aid: str, a: dict[str, Any]) -> str:
        """The asset's system node, gathering owners, kinds and the first API description seen."""
        sid = self.node("system", a["system"], hub=a["system"] == HUB)
        self.edge(sid, aid, "contains")
        system = self.g.nodes[sid]
        system["owners"] = sorted(set(system.get("owners", [])) | set(a["owners"]))
        system["kinds"] = sorted(set(system.get("kinds", [])) | set(a["kinds"]))
        if a["api"] and not system.get("api"):
            system["api"] = a["api"]
        return sid

    def _object(self, aid: str, a: dict[str, Any], sid: str) -> None:
        """The asset's object node; the hub asset's facts win over a source's or consumer's."""
        oid = self.node("object", a["object"])
        self.edge(aid, oid, "instance_of")
        if a.get("source_of_truth"):
            sot = self.node("system", a["source_of_truth"], hub=a["source_of_truth"] == HUB)
            self.edge(sot, oid, "source_of_truth")
        if a.get("role") == "consumer":
            self.edge(sid, oid, "consumes")
        obj = self.g.nodes[oid]
        for field in ("identity_key", "freshness_minutes", "volume"):
            if a.get(field) is not None and (a["role"] == "hub" or obj.get(field) is None):
                obj[field] = a[field]
        obj["pii"] = sorted(set(obj.get("pii", [])) | set(a["pii"]))
        if a["schema"] and (a["role"] == "hub" or not obj.get("schema")):
            obj["schema"] = a["schema"]
        if a["role"] == "hub":
            obj["owners"], obj["description"] = a["owners"], a["description"]

    def _flow_edges(self, fid: str, f: dict[str, Any]) -> None:
        """source system -sends-> flow -delivers-> consumer system; flow -carries-> object."""
        if f.get("source"):
            self.edge(self.node("system", str(f["source"]), hub=f["source"] == HUB), fid, "sends")
        if f.get("consumer"):
            self.edge(fid, self.node("system", str(f["consumer"]), hub=f["consumer"] == HUB), "delivers")
        if f.get("object"):
            self.edge(fid, self.node("object", str(f["object"])), "carries")

    def _jobs(self, defs: dg.Definitions, repo: Any, asset_graph: Any) -> dict[str, set[str]]:
        """Job nodes and the assets each materializes, read from each job's asset selection.

        Resolving every asset job into an executable JobDefinition (`get_all_jobs`) costs Dagster
        ~20 ms a job and grows with the asset count; the selection alone says what a job runs.
        """
        found: dict[str, Any] = {job.name: job for job in defs.jobs or []}
        for automation in [*repo.schedule_defs, *repo.sensor_defs]:
            for target in automation.targets if isinstance(automation, dg.SensorDefinition) else [automation.target]:
                found.setdefault(target.job_name, target.resolvable_to_job)
        jobs: dict[str, set[str]] = {}
        for name, job in sorted(found.items()):
            if name.startswith("__"):  # Dagster's implicit asset job is not a user's job
                continue
            selection = getattr(job, "selection", None)  # an asset job not resolved yet
            keys = selection.resolve(asset_graph) if selection is not None else job.asset_layer.selected_asset_keys
            jobs[name] = selected = {asset_name(k) for k in keys}
            retry = job.op_retry_policy
            jid = self.node("job", name, description=job.description or "", tags=dict(job.tags),
                            run_retries=job.tags.get("dagster/max_retries"),
                            op_retries=retry.max_retries if retry else None)
            for asset in sorted(selected):
                self.edge(jid, node_id("asset", asset), "selects")
            self._flow_tag(jid, job.tags)
        return jobs

    def _trigger_edges(self, tid: str, job_names: list[str], assets: set[str], tags: Any) -> None:
        """Edges from a schedule or sensor to its jobs, assets and tagged flow."""
        for name in job_names:
            if node_id("job", name) in self.g:
                self.edge(tid, node_id("job", name), "runs")
        for name in sorted(assets):
            self.edge(tid, node_id("asset", name), "triggers")
        self._flow_tag(tid, tags)

    def _flow_tag(self, nid: str, tags: Any) -> None:
        """Link a job, schedule or sensor to the flow named by its `integration/flow` tag, when the
        assets declare that flow (a maintenance job uses the tag only to run one at a time)."""
        for flow in str((tags or {}).get(c.TAG_FLOW, "")).split(","):
            if flow.strip() and node_id("flow", flow.strip()) in self.g:
                self.edge(nid, node_id("flow", flow.strip()), "runs_flow")


OBSERVED = "assessment"  # the node attribute filled from the instance's observations, not the Definitions


def build_graph(defs: dg.Definitions, origin: str = "", location: str = "",
                instance: dg.DagsterInstance | None = None) -> nx.MultiDiGraph:
    """The landscape graph of one loaded Definitions; `location` is its code location's name in
    Dagster; with an instance, each asset also shows the latest assessment observed there
    (`integrations assess` records it; observed, not defined)."""
    g = GraphBuilder().add(defs, origin, location)
    if instance is not None:
        for _, attrs in nodes(g, "asset"):
            records = instance.fetch_observations(dg.AssetKey(attrs["key"]), limit=1).records
            observation = records[0].event_log_entry.asset_observation if records else None
            if observation is not None and (found := _json(observation.metadata.get(c.ASSESSMENT))):
                attrs["assessment"] = found
    return g


def to_json(g: nx.MultiDiGraph) -> dict[str, Any]:
    """Node-link JSON, sorted so equal graphs give equal text."""
    data = nx.node_link_data(g, edges="edges")
    data["nodes"] = sorted(data["nodes"], key=lambda n: n["id"])
    data["edges"] = sorted(data["edges"], key=lambda e: (e["source"], e["target"], e["key"]))
    return data


def from_json(data: dict[str, Any]) -> nx.MultiDiGraph:
    """The graph back from its node-link JSON."""
    return nx.node_link_graph(data, directed=True, multigraph=True, edges="edges")


def fingerprint(g: nx.MultiDiGraph) -> str:
    """A sha256 of the graph's content; it changes exactly when the Definitions' docs would."""
    data = to_json(g)
    data["graph"] = {}  # where the Definitions were loaded from is not part of what they say
    for node in data["nodes"]:
        node.pop(OBSERVED, None)  # what was last observed is not what is defined
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def nodes(g: nx.MultiDiGraph, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(id, attributes) of every node of one kind, sorted by name."""
    return sorted(((n, a) for n, a in g.nodes(data=True) if a["kind"] == kind), key=lambda p: p[1]["name"])


def related(g: nx.MultiDiGraph, nid: str, relation: str, outgoing: bool = True) -> list[str]:
    """Neighbour ids over one relation, out of (or into) a node, sorted."""
    edges = g.out_edges(nid, keys=True) if outgoing else g.in_edges(nid, keys=True)
    return sorted({(v if outgoing else u) for u, v, k in edges if k == relation})
