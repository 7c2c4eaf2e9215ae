"""Graphviz views over the landscape graph, laid out to SVG under a timeout.

`dot` lays out the small views (a system's context, an object's lineage, a flow). The landscape is
aggregated to systems around the hub (`dot`: senders | hub | receivers) up to SFDP_ABOVE systems,
each side wrapped into columns of COLUMN systems (edge labels become tooltips) past COLUMN, and
laid out by `sfdp` without edge labels beyond, because `dot` time explodes with crossing edges
(DESIGN.md, "Diagrams at scale"). Every layout runs under a timeout. In the HTML site every
diagram can be zoomed, panned and focused on one node's neighbourhood (site.js).
"""

from __future__ import annotations

import html
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import graphviz
import networkx as nx

from docs_gen.graph import HUB, nodes, related
from docs_gen.lint import topology

SFDP_ABOVE = 40  # systems; beyond this the landscape is laid out by sfdp, without edge labels
COLUMN = 10  # systems per column on each side of the hub; more wrap into further columns, unlabelled
TIMEOUT_S = 60.0
COLOURS = {
    "realtime": "#1F6FB2", "batch": "#6B6B6B", "planned": "#B5B5B5", "planned_realtime": "#9DBBD6", "hub": "#F2A900",
    "system": "#E8F1FA", "focus": "#FFE8A3", "object": "#FFF6D6", "asset": "#FFFFFF",
    "stub": "#F8D7DA", "trigger": "#E6F4EA", "p2p": "#C62828", "border": "#333333",
}
Href = Callable[[str], "str | None"]  # node id -> URL of its page, relative to the diagram's page; None: no link


@dataclass
class Diagram:
    """One view: a name, a Graphviz source, the engine to lay it out, and (after render) the SVG."""

    name: str
    graph: graphviz.Digraph
    engine: str = "dot"
    svg: str = ""
    seconds: float = 0.0
    error: str = ""


class _Ids:
    """Short Graphviz-safe node ids for graph node ids (which contain ':' and '/')."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def __call__(self, nid: str) -> str:
        return self.ids.setdefault(nid, f"n{len(self.ids)}")


def _digraph(name: str) -> graphviz.Digraph:
    """A left-to-right Digraph with the house style."""
    d = graphviz.Digraph(name)
    d.attr(rankdir="LR", fontname="Helvetica", fontsize="11", bgcolor="#FFFFFF")
    d.attr("node", fontname="Helvetica", fontsize="10", shape="box", style="rounded,filled",
           color=COLOURS["border"], fillcolor=COLOURS["system"])
    d.attr("edge", fontname="Helvetica", fontsize="9", color=COLOURS["batch"])
    return d


def _edge_style(mode: str | None, status: str | None) -> dict[str, str]:
    """Realtime solid, batch dashed; live in strong colours, planned in pale ones."""
    planned = status == "planned"
    if mode == "realtime":
        return {"color": COLOURS["planned_realtime" if planned else "realtime"], "style": "solid", "penwidth": "1.6"}
    return {"color": COLOURS["planned" if planned else "batch"], "style": "dashed"}


def landscape(g: nx.MultiDiGraph, href: Href) -> Diagram:
    """Sources on the left, the hub in the middle, consumers on the right; one edge per mode, by object.

    A system that both sends and receives appears on both sides (same name, same link), so every
    edge points left to right and none cross the hub. Large landscapes: one node per system, sfdp.
    """
    systems = [(sid, s) for sid, s in nodes(g, "system") if not s.get("hub")]
    large = len(systems) > SFDP_ABOVE
    d = _digraph("landscape")
    ids = _Ids()
    hub = ids("system:hub")
    if large:
        d.attr(overlap="prism", splines="false", outputorder="edgesfirst")
    else:
        d.attr(nodesep="0.12", ranksep="1.6")
    d.node(hub, "hub", shape="doublecircle", fillcolor=COLOURS["hub"], URL=href("system:hub"))
    edges: dict[tuple[str, str, str, str], list[str]] = {}
    for _, f in nodes(g, "flow"):
        if not f.get("source") or not f.get("consumer"):
            continue
        status = "planned" if f.get("status") == "planned" else "live"
        mode = f.get("mode") or "batch"
        edges.setdefault((f"system:{f['source']}", "source", mode, status), []).append(str(f.get("object")))
        if f["consumer"] != HUB:  # a hub-only leg ends at the hub
            edges.setdefault((f"system:{f['consumer']}", "consumer", mode, status), []).append(str(f.get("object")))
    side = {(sid, end) for sid, end, _, _ in edges}
    linked = {sid for sid, _ in side}
    for sid, s in systems:
        tooltip = (s.get("api") or {}).get("vendor", s["name"])
        for end in ("source", "consumer"):
            if (sid, end) in side or (end == "source" and sid not in linked):
                d.node(ids(sid if large else f"{end}:{sid}"), s["name"], URL=href(sid), tooltip=tooltip)
    if large:  # one edge per system and mode; its arrowheads say which way records go
        ends: dict[tuple[str, str, str], set[str]] = {}
        for sid, end, mode, status in edges:
            ends.setdefault((sid, mode, status), set()).add(end)
        for (sid, mode, status), both in sorted(ends.items()):
            direction = "both" if len(both) == 2 else "forward" if "consumer" in both else "back"
            d.edge(hub, ids(sid), dir=direction, **_edge_style(mode, status))
    else:
        wrapped = _columns(d, hub, [(sid, end) for sid, _ in systems for end in ("source", "consumer")
                                    if (sid, end) in side], ids)
        for (sid, end, mode, status), objects in sorted(edges.items()):
            node = ids(f"{end}:{sid}")
            tail, head = (node, hub) if end == "source" else (hub, node)
            carried = ", ".join(sorted(set(objects)))  # on the edge while it fits, else its tooltip
            d.edge(tail, head, **({"tooltip": carried} if wrapped else {"label": carried}), **_edge_style(mode, status))
    for link in topology(g)["point_to_point"]:  # lineage that bypasses the hub, in red
        src, dst = (f"system:{name}" for name in link.split(" -> "))
        for sid, end in ((src, "source"), (dst, "consumer")):
            if large or (sid, end) not in side:
                d.node(ids(sid if large else f"{end}:{sid}"), g.nodes[sid]["name"], URL=href(sid))
                side.add((sid, end))
        tail, head = (ids(src), ids(dst)) if large else (ids(f"source:{src}"), ids(f"consumer:{dst}"))
        d.edge(tail, head, label="" if large else "point-to-point", color=COLOURS["p2p"], penwidth="1.6")
    return Diagram("landscape", d, "sfdp" if large else "dot")


def _columns(d: graphviz.Digraph, hub: str, ends: list[tuple[str, str]], ids: _Ids) -> bool:
    """Past COLUMN systems a side, wrap each side into columns of COLUMN (same rank, chained by
    invisible edges away from the hub), so the landscape grows wide in steps, not into one tall fan."""
    by_side = {end: [ids(f"{end}:{sid}") for sid, e in ends if e == end] for end in ("source", "consumer")}
    if max(len(v) for v in by_side.values()) <= COLUMN:
        return False
    for end, members in by_side.items():
        columns = [members[i:i + COLUMN] for i in range(0, len(members), COLUMN)]
        for column in columns:
            with d.subgraph() as rank:
                rank.attr(rank="same")
                for node in column:
                    rank.node(node)
        chain = [hub, *(c[len(c) // 2] for c in columns)]  # nearest column first, through each middle
        for a, b in zip(chain, chain[1:]):
            d.edge(*((b, a) if end == "source" else (a, b)), style="invis", weight="10")
    return True


def system_context(g: nx.MultiDiGraph, sid: str, href: Href) -> Diagram:
    """One system: the objects it sends through the hub and to whom, and what it receives."""
    name = g.nodes[sid]["name"]
    d = _digraph(f"system_{name}")
    ids = _Ids()
    d.node(ids(sid), name, fillcolor=COLOURS["focus"], penwidth="2")
    flows = related(g, sid, "sends") + related(g, sid, "delivers", outgoing=False)
    for fid in flows:
        f = g.nodes[fid]
        oid = f"object:{f.get('object')}"
        d.node(ids(oid), f"hub/{f.get('object')}", shape="ellipse", fillcolor=COLOURS["object"], URL=href(oid))
        for end in ("source", "consumer"):
            other = f"system:{f.get(end)}"
            if other != sid and other in g and f.get(end) != HUB:
                d.node(ids(other), str(f.get(end)), URL=href(other))
        style = _edge_style(f.get("mode"), f.get("status"))
        d.edge(ids(f"system:{f.get('source')}"), ids(oid), URL=href(fid), **style)
        if f.get("consumer") != HUB:  # a hub-only leg ends in the hub
            d.edge(ids(oid), ids(f"system:{f.get('consumer')}"), label=str(f.get("mode") or ""), URL=href(fid), **style)
    return Diagram(f"system_{name}", d)


def _asset_node(d: graphviz.Digraph, ids: _Ids, g: nx.MultiDiGraph, aid: str, href: Href) -> None:
    """An asset box; stubs in red, hub assets in amber."""
    a = g.nodes[aid]
    fill = COLOURS["stub"] if a.get("stub") else COLOURS["hub"] if a.get("system") == HUB else COLOURS["asset"]
    d.node(ids(aid), a["name"], fillcolor=fill, URL=href(aid))


def object_lineage(g: nx.MultiDiGraph, oid: str, href: Href) -> Diagram:
    """One object's assets from source of truth through the hub to every consumer, per system."""
    name = g.nodes[oid]["name"]
    d = _digraph(f"object_{name}")
    ids = _Ids()
    assets = set(related(g, oid, "instance_of", outgoing=False))
    neighbours = {n for a in assets for n in related(g, a, "lineage") + related(g, a, "lineage", outgoing=False)}
    by_system: dict[str, list[str]] = {}
    for aid in sorted(assets | neighbours):
        by_system.setdefault(g.nodes[aid].get("system") or "(no system)", []).append(aid)
    for system, members in sorted(by_system.items()):
        with d.subgraph(name=f"cluster_{ids('cluster:' + system)}") as sub:
            link = href(f"system:{system}") if f"system:{system}" in g else None
            sub.attr(label=system, style="rounded", color="#9E9E9E", URL=link)
            for aid in members:
                _asset_node(sub, ids, g, aid, href)
    for aid in sorted(assets):
        for child in related(g, aid, "lineage"):
            flows = [g.nodes[f] for f in related(g, child, "materializes", outgoing=False)]
            mode = flows[0].get("mode") if len(flows) == 1 else g.nodes[child].get("mode")
            d.edge(ids(aid), ids(child), **_edge_style(mode, g.nodes[child].get("status")))
        for parent in related(g, aid, "lineage", outgoing=False):
            if parent not in assets:
                d.edge(ids(parent), ids(aid))
    return Diagram(f"object_{name}", d)


def flow(g: nx.MultiDiGraph, fid: str, href: Href) -> Diagram:
    """One flow: its triggers and jobs, then source -> hub -> consumer assets."""
    f = g.nodes[fid]
    d = _digraph(f"flow_{f['name']}")
    ids = _Ids()
    assets = related(g, fid, "materializes")
    triggers = related(g, fid, "runs_flow", outgoing=False)
    for aid in assets:
        _asset_node(d, ids, g, aid, href)
    for a, b in ((a, b) for a in assets for b in related(g, a, "lineage") if b in assets):
        d.edge(ids(a), ids(b), **_edge_style(f.get("mode"), f.get("status")))
    for tid in triggers:
        t = g.nodes[tid]
        d.node(ids(tid), f"{t['kind']}\n{t['name']}", fillcolor=COLOURS["trigger"], URL=href(tid))
        jobs = [j for j in triggers if j in related(g, tid, "runs")]
        targets = jobs or [a for a in related(g, tid, "triggers") + related(g, tid, "selects") if a in assets]
        for target in targets:
            d.edge(ids(tid), ids(target), style="dotted", arrowhead="vee")
    return Diagram(f"flow_{f['name']}", d)


def neighbourhood(g: nx.MultiDiGraph, aid: str, href: Href) -> Diagram:
    """An asset with its direct parents and children (for assets outside any object's lineage)."""
    d = _digraph(f"asset_{aid}")
    ids = _Ids()
    _asset_node(d, ids, g, aid, href)
    for parent in related(g, aid, "lineage", outgoing=False):
        _asset_node(d, ids, g, parent, href)
        d.edge(ids(parent), ids(aid))
    for child in related(g, aid, "lineage"):
        _asset_node(d, ids, g, child, href)
        d.edge(ids(aid), ids(child))
    return Diagram(re.sub(r"\W", "_", f"asset_{g.nodes[aid]['name']}"), d)


def render(diagram: Diagram, timeout: float = TIMEOUT_S) -> Diagram:
    """Lay the diagram out to SVG; past the timeout retry with sfdp, then give an honest placeholder."""
    engines = [diagram.engine] + (["sfdp"] if diagram.engine != "sfdp" else [])
    start = time.perf_counter()
    for engine in engines:
        try:
            done = subprocess.run([engine, "-Tsvg"], input=diagram.graph.source.encode(), capture_output=True,
                                  timeout=timeout, check=True)
        except subprocess.TimeoutExpired:
            diagram.error = f"{engine} layout exceeded {timeout:.0f} s"
            continue
        except subprocess.CalledProcessError as exc:
            diagram.error = f"{engine} failed: {exc.stderr.decode(errors='replace').strip()[:200]}"
            continue
        text = done.stdout.decode()
        diagram.svg, diagram.engine, diagram.error = text[text.index("<svg"):], engine, ""
        break
    else:
        diagram.svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="40"><text x="8" y="24">'
                       f"{html.escape(diagram.name)}: {html.escape(diagram.error)}</text></svg>")
    diagram.seconds = time.perf_counter() - start
    return diagram


def _batch(diagrams: list[Diagram], timeout: float) -> None:
    """Lay out many small diagrams in one process (spawning `dot` costs more than laying one out).

    If the batch fails or times out, each diagram is rendered alone, so one bad view spoils nothing.
    """
    start = time.perf_counter()
    try:
        done = subprocess.run([diagrams[0].engine, "-Tsvg"], input="\n".join(d.graph.source for d in diagrams).encode(),
                              capture_output=True, timeout=timeout, check=True)
        svgs = ["<svg" + part.split("</svg>")[0] + "</svg>\n" for part in done.stdout.decode().split("<svg")[1:]]
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
        svgs = []
    if len(svgs) != len(diagrams):
        for diagram in diagrams:
            render(diagram, timeout)
        return
    share = (time.perf_counter() - start) / len(diagrams)
    for diagram, svg in zip(diagrams, svgs):
        diagram.svg, diagram.seconds = svg, share


def render_all(diagrams: list[Diagram], timeout: float = TIMEOUT_S, workers: int = 2, batch: int = 50) -> None:
    """Render every diagram: small `dot` views in batches, the rest one by one, on `workers` threads."""
    small = [d for d in diagrams if d.engine == "dot" and d.graph.source.count("\n") < 400]
    batched = {id(d) for d in small}
    single = [d for d in diagrams if id(d) not in batched]
    chunks = [small[i:i + batch] for i in range(0, len(small), batch)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = [pool.submit(_batch, chunk, timeout) for chunk in chunks]
        jobs += [pool.submit(render, d, timeout) for d in single]
        for job in jobs:
            job.result()
