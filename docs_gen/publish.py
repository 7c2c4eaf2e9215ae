"""Publishing and truth: Backstage catalog export, diff of two builds, staleness check, serving."""

from __future__ import annotations

import functools
import http.server
import json
import re
from pathlib import Path
from typing import Any

import networkx as nx

from docs_gen.errors import DocsError
from docs_gen.graph import fingerprint, from_json, nodes, related
from docs_gen.lint import sources_of_truth
from docs_gen.site import GRAPH, MANIFEST

# --- Backstage -------------------------------------------------------------------------------


def _entity_name(text: str) -> str:
    """A Backstage entity name: [a-zA-Z0-9-_.], at most 63 characters."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip("-_.")[:63] or "unnamed"


def _owner_ref(owners: list[str]) -> str:
    """Dagster owners (`team:x` or an email) as one Backstage owner reference."""
    if not owners:
        return "group:default/unowned"
    owner = next((o for o in owners if o.startswith("team:")), owners[0])  # a team outlives a person
    if owner.startswith("team:"):
        return f"group:default/{_entity_name(owner[5:])}"
    return f"user:default/{_entity_name(owner.split('@')[0])}"


def _entity(kind: str, name: str, description: str, spec: dict[str, Any], **annotations: str) -> dict[str, Any]:
    """One catalog entity."""
    meta: dict[str, Any] = {"name": _entity_name(name), "description": description or name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}


def backstage_entities(g: nx.MultiDiGraph) -> list[dict[str, Any]]:
    """System per system, API per vendor API, Resource per hub object, Component per flow."""
    out = []
    for _, s in nodes(g, "system"):
        api = s.get("api") or {}
        out.append(_entity("System", s["name"], api.get("title") or f"{s['name']} system",
                           {"owner": _owner_ref(s.get("owners", []))}))
        if api:
            definition = "\n".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in sorted(api.items()))
            out.append(_entity("API", f"{s['name']}-api", f"{api.get('vendor', s['name'])} API {api.get('version', '')}",
                               {"type": "rest", "lifecycle": "production", "owner": _owner_ref(s.get("owners", [])),
                                "system": _entity_name(s["name"]), "definition": definition}))
    for oid, o in nodes(g, "object"):
        sots = sources_of_truth(g, oid)
        out.append(_entity("Resource", f"object-{o['name']}", f"canonical {o['name']} in the hub store"
                           + (f"; source of truth: {', '.join(sots)}" if sots else ""),
                           {"type": "data-object", "owner": _owner_ref(o.get("owners", [])), "system": "hub"}))
    apis = {s["name"] for _, s in nodes(g, "system") if s.get("api")}
    for fid, f in nodes(g, "flow"):
        assets = [g.nodes[a] for a in related(g, fid, "materializes")]
        consumer = [a for a in assets if a.get("role") == "consumer" and a.get("system") == f.get("consumer")]
        # a hub-only leg belongs to its source's team first, then the object's steward
        by_role = sorted(assets, key=lambda a: a.get("role") != "source")
        owners = consumer[0].get("owners", []) if consumer else [o for a in by_role for o in a.get("owners", [])]
        spec: dict[str, Any] = {
            "type": "integration-flow", "owner": _owner_ref(owners),
            "lifecycle": "experimental" if f.get("status") == "planned" else "production",
            "system": _entity_name(str(f.get("consumer") or "hub")),
            "dependsOn": [f"resource:default/{_entity_name('object-' + str(f.get('object')))}"],
            "consumesApis": [f"api:default/{_entity_name(str(s) + '-api')}"
                             for s in (f.get("source"), f.get("consumer")) if s in apis],
        }
        out.append(_entity("Component", f"flow-{f['name']}", str(f.get("purpose") or f["name"]), spec,
                           **{"integration/mode": str(f.get("mode") or "")}))
    return out


def _yaml(value: Any, indent: int = 0) -> str:
    """Block YAML for dicts, lists and scalars; strings double-quoted (JSON strings are valid YAML)."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "\n".join(
            f"{pad}{k}:" + (f"\n{_yaml(v, indent + 1)}" if isinstance(v, (dict, list)) and v else f" {_yaml(v)}")
            for k, v in value.items())
    if isinstance(value, list):
        if not value:
            return "[]"
        return "\n".join(f"{pad}- " + _yaml(v, indent + 1).lstrip() for v in value)
    return json.dumps(value)


def backstage_yaml(g: nx.MultiDiGraph) -> str:
    """catalog-info.yaml: every entity as one YAML document."""
    return "".join(f"---\n{_yaml(e)}\n" for e in backstage_entities(g))


# --- diff and check ------------------------------------------------------------------------------


def load_build(site: Path) -> tuple[nx.MultiDiGraph, dict[str, Any]]:
    """The graph and manifest of a built site (HTML or Markdown)."""
    manifest_path = site / MANIFEST
    if not manifest_path.is_file():
        raise DocsError(f"{site} is not a docs build (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    graph_path = site / ("docs" if manifest.get("format") == "markdown" else "") / GRAPH
    return from_json(json.loads(graph_path.read_text())), manifest


def _summary(g: nx.MultiDiGraph) -> dict[str, dict[str, Any]]:
    """What a reader of the docs cares about, per kind: name -> comparable facts."""
    out: dict[str, dict[str, Any]] = {}
    for kind in ("system", "object", "flow", "owner", "asset", "schedule", "sensor"):
        out[kind] = {}
        for nid, a in nodes(g, kind):
            facts: dict[str, Any] = {"owners": a.get("owners", [])} if kind != "owner" else {}
            if kind == "system":
                facts["api"] = a.get("api")
            elif kind == "object":
                facts["source_of_truth"] = sources_of_truth(g, nid)
                facts["fields"] = [c["name"] for c in a.get("schema", [])]
            elif kind == "flow":
                facts = {k: a.get(k) for k in ("source", "consumer", "mode", "trigger", "status")}
            elif kind == "owner":
                facts["owns"] = related(g, nid, "owns")
            elif kind in ("schedule", "sensor"):
                facts = {k: a.get(k) for k in ("cron", "timezone", "interval_seconds", "jobs")}
            out[kind][a["name"]] = facts
    return out


def diff(old: nx.MultiDiGraph, new: nx.MultiDiGraph) -> dict[str, dict[str, Any]]:
    """Added, removed and changed systems, objects, flows, owners, assets and triggers."""
    a, b = _summary(old), _summary(new)
    result: dict[str, dict[str, Any]] = {}
    for kind in a:
        changed = {name: {k: {"old": a[kind][name].get(k), "new": v} for k, v in b[kind][name].items()
                          if a[kind][name].get(k) != v}
                   for name in sorted(set(a[kind]) & set(b[kind])) if a[kind][name] != b[kind][name]}
        entry = {"added": sorted(set(b[kind]) - set(a[kind])), "removed": sorted(set(a[kind]) - set(b[kind])),
                 "changed": changed}
        if any(entry.values()):
            result[kind] = entry
    return result


def check(site: Path, g: nx.MultiDiGraph) -> tuple[bool, str]:
    """Whether the published docs were built from Definitions equal to these; and a message."""
    _, manifest = load_build(site)
    current = fingerprint(g)
    if manifest.get("fingerprint") == current:
        return True, f"docs in {site} are current ({current[:12]})"
    return False, (f"docs in {site} are stale: built from {str(manifest.get('fingerprint'))[:12]}, "
                   f"the Definitions are now {current[:12]}; run `integrations docs build`")


# --- serve ----------------------------------------------------------------------------------


def serve(site: Path, host: str = "127.0.0.1", port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server for the built site (call `serve_forever()` on it)."""
    if not (site / "index.html").is_file():
        raise DocsError(f"no HTML site in {site}; run `integrations docs build --out {site}` first")
    handler = functools.partial(_QuietHandler, directory=str(site))
    return http.server.ThreadingHTTPServer((host, port), handler)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        """Stay quiet."""
