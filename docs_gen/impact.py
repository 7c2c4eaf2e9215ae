"""Impact analysis: what is affected if a system, an object of a system, or one field changes."""

from __future__ import annotations

from typing import Any

import networkx as nx

from docs_gen.graph import node_id, related
from docs_gen.errors import DocsError


def lineage(g: nx.MultiDiGraph) -> nx.DiGraph:
    """The asset lineage alone, as a plain DiGraph."""
    view = nx.DiGraph()
    view.add_nodes_from(n for n, a in g.nodes(data=True) if a["kind"] == "asset")
    view.add_edges_from((u, v) for u, v, k in g.edges(keys=True) if k == "lineage")
    return view


def _fields(g: nx.MultiDiGraph, oid: str) -> list[str]:
    """The canonical fields of an object (its schema), plus any mapped field."""
    names = [col["name"] for col in g.nodes[oid].get("schema", [])]
    for aid in related(g, oid, "instance_of", outgoing=False):
        names += [f for f in g.nodes[aid].get("mapping", {}) if f not in names]
    return names


def _field_name(g: nx.MultiDiGraph, oid: str, system: str, field: str) -> str:
    """The canonical name of a field given canonically or in the system's own vocabulary."""
    if field in _fields(g, oid):
        return field
    for aid in related(g, oid, "instance_of", outgoing=False):
        a = g.nodes[aid]
        for canonical, own in a.get("mapping", {}).items():
            if a.get("system") == system and own == field:
                return canonical
    raise DocsError(f"unknown field {field!r} of {system}.{g.nodes[oid]['name']}; fields: {', '.join(_fields(g, oid))}")


def _resolve(g: nx.MultiDiGraph, target: str) -> tuple[str, str | None, str | None]:
    """Check `system[.object[.field]]` names things in the graph; return its parts."""
    parts = target.split(".")
    if not target or len(parts) > 3 or not all(parts):
        raise DocsError(f"bad target {target!r}: expected system[.object[.field]]")
    system = parts[0]
    obj, field = (parts[1:] + [None, None])[:2]
    if node_id("system", system) not in g:
        known = ", ".join(sorted(a["name"] for _, a in g.nodes(data=True) if a["kind"] == "system"))
        raise DocsError(f"unknown system {system!r}; systems: {known}")
    if obj is not None and not _system_assets(g, system, obj):
        raise DocsError(f"{system} has no asset for object {obj!r}")
    return system, obj, field


def _system_assets(g: nx.MultiDiGraph, system: str, obj: str | None = None) -> list[str]:
    """The system's assets, optionally only those of one object."""
    if obj is None:
        return related(g, node_id("system", system), "contains")
    oid = node_id("object", obj)  # from the object's side: the hub system contains every object's asset
    candidates = related(g, oid, "instance_of", outgoing=False) if oid in g else []
    return [a for a in candidates if g.nodes[a].get("system") == system]


def impact(g: nx.MultiDiGraph, target: str, view: nx.DiGraph | None = None) -> dict[str, Any]:
    """Everything affected if `target` (system, system.object or system.object.field) changes.

    `view` is `lineage(g)`, passed in by callers asking many questions of one graph.
    """
    system, obj, field = _resolve(g, target)
    sid = node_id("system", system)
    objects = sorted({g.nodes[a]["object"] for a in _system_assets(g, system, obj) if g.nodes[a].get("object")})
    flows: set[str] = set()
    fields: dict[str, list[str]] = {}
    for name in objects:
        oid = node_id("object", name)
        owned = sid in related(g, oid, "source_of_truth", outgoing=False)
        carried = set(related(g, oid, "carries", outgoing=False))
        mine = {f for f in carried if system in (g.nodes[f].get("source"), g.nodes[f].get("consumer"))}
        flows |= carried if owned or system == "hub" else mine
        fields[name] = [_field_name(g, oid, system, field)] if field else _fields(g, oid)
    if field:  # a field only travels on flows whose consumer maps it (or takes the canonical shape)
        canonical = fields[objects[0]][0]
        flows = {f for f in flows if _maps(g, f, canonical)}
    seeds = set(_system_assets(g, system, obj))
    view = view if view is not None else lineage(g)
    assets = set(seeds)
    for aid in seeds:
        assets |= nx.descendants(view, aid)
    if field:
        assets = {a for a in assets if g.nodes[a].get("object") != objects[0] or _asset_maps(g, a, fields[objects[0]][0])}
    systems = {g.nodes[a].get("system") for a in assets if g.nodes[a].get("system")}
    owners = {o for a in assets for o in g.nodes[a].get("owners", [])}
    for name in objects:
        owners |= set(g.nodes[node_id("object", name)].get("owners", []))
    triggers = {t for a in assets for t in related(g, a, "triggers", outgoing=False)}
    triggers |= {t for f in flows for t in related(g, f, "runs_flow", outgoing=False) if g.nodes[t]["kind"] != "job"}
    return {
        "target": target,
        "kind": "field" if field else "object" if obj else "system",
        "objects": objects,
        "fields": fields,
        "flows": sorted(g.nodes[f]["name"] for f in flows),
        "consumers": sorted(s for s in systems if s not in (system, "hub")),
        "systems": sorted(systems),
        "assets": sorted(g.nodes[a]["name"] for a in assets),
        "checks": sorted(g.nodes[ch]["name"] for a in assets for ch in related(g, a, "checks", outgoing=False)),
        "triggers": sorted(t.split(":", 1)[0] + " " + g.nodes[t]["name"] for t in triggers),
        "owners": sorted(owners),
    }


def _asset_maps(g: nx.MultiDiGraph, aid: str, canonical: str) -> bool:
    """Whether an asset carries a canonical field: mapped, or no mapping declared (canonical shape)."""
    mapping = g.nodes[aid].get("mapping") or {}
    return not mapping or canonical in mapping or g.nodes[aid].get("role") in ("source", "hub")


def _maps(g: nx.MultiDiGraph, fid: str, canonical: str) -> bool:
    """Whether a flow's consumer asset carries the field."""
    consumer = g.nodes[fid].get("consumer")
    return any(_asset_maps(g, a, canonical) for a in related(g, fid, "materializes")
               if g.nodes[a].get("system") == consumer) or not related(g, fid, "materializes")
