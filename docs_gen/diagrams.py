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
import math
import re
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import graphviz
import networkx as nx

from docs_gen.graph import HUB, nodes, related
from docs_gen.lint import topology

COLUMN = 10  # nodes per column on each side of the hub; past it the hub is a bar and edges unlabelled
OWNERS_ABOVE = 60  # systems; beyond, the landscape draws one node per owning team
SFDP_ABOVE = 60  # nodes a side; beyond, the landscape is one unlabelled sfdp graph
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
    edge points left to right and none cross the hub. Past COLUMN nodes a side the hub becomes a
    bar with a port per node (edges land side by side, not in one point) and each side wraps into
    columns; past OWNERS_ABOVE systems each node is one owning team (its systems in the tooltip,
    its page the owner's); past SFDP_ABOVE nodes a side, one unlabelled sfdp graph.
    """
    systems = [(sid, s) for sid, s in nodes(g, "system") if not s.get("hub")]
    by_team = len(systems) > OWNERS_ABOVE
    group = {sid: (f"owner:{(s.get('owners') or ['nobody'])[0]}" if by_team else sid) for sid, s in systems}
    members: dict[str, list[str]] = {}
    for sid, s in systems:
        members.setdefault(group[sid], []).append(s["name"])
    edges: dict[tuple[str, str, str, str], list[str]] = {}
    for _, f in nodes(g, "flow"):
        if not f.get("source") or not f.get("consumer"):
            continue
        status = "planned" if f.get("status") == "planned" else "live"
        mode = f.get("mode") or "batch"
        for end, name in (("source", f["source"]), ("consumer", f["consumer"])):
            if name != HUB and f"system:{name}" in group:  # a hub-only leg ends at the hub
                edges.setdefault((group[f"system:{name}"], end, mode, status), []).append(str(f.get("object")))
    side = {(gid, end) for gid, end, _, _ in edges}
    linked = {gid for gid, _ in side}
    ends = [(gid, end) for gid in sorted(members, key=_natural) for end in ("source", "consumer")
            if (gid, end) in side or (end == "source" and gid not in linked)]
    widest = max([sum(1 for _, e in ends if e == end) for end in ("source", "consumer")] or [0])
    if widest > SFDP_ABOVE:
        return _sfdp_landscape(href, group, edges)
    d = _digraph("landscape")
    ids = _Ids()
    hub = ids("system:hub")

    def label(gid: str) -> tuple[str, str]:  # a node's text and tooltip
        if not by_team:
            return members[gid][0], (g.nodes[gid].get("api") or {}).get("vendor", members[gid][0])
        return f"{gid.removeprefix('owner:')}\n{len(members[gid])} systems", ", ".join(members[gid])

    for gid, end in ends:
        text, tooltip = label(gid)
        d.node(ids(f"{end}:{gid}"), text, URL=href(gid), tooltip=tooltip)
    ports = _bus(d, hub, ends, ids, href("system:hub")) if widest > COLUMN else None
    if ports is None:
        d.attr(nodesep="0.12", ranksep="1.6")
        d.node(hub, "hub", shape="doublecircle", fillcolor=COLOURS["hub"], URL=href("system:hub"))
    if ports:  # one edge a node: solid if some live flow is realtime; the objects by mode in its tooltip
        merged: dict[tuple[str, str], dict[tuple[str, str], list[str]]] = {}
        for (gid, end, mode, status), objects in edges.items():
            merged.setdefault((gid, end), {})[(mode, status)] = objects
        for (gid, end), by_mode in sorted(merged.items()):
            node, at = ids(f"{end}:{gid}"), f"{hub}:{ports[(gid, end)]}"
            status = "live" if any(st == "live" for _, st in by_mode) else "planned"
            mode = "realtime" if ("realtime", status) in by_mode else "batch"
            carried = "; ".join(f"{m}{' (planned)' if st == 'planned' else ''}: {', '.join(sorted(set(o)))}"
                                for (m, st), o in sorted(by_mode.items()))
            d.edge(*((node, at) if end == "source" else (at, node)), tooltip=carried, **_edge_style(mode, status))
    for (gid, end, mode, status), objects in sorted(edges.items()) if not ports else ():
        node = ids(f"{end}:{gid}")
        tail, head = (node, hub) if end == "source" else (hub, node)
        d.edge(tail, head, label=", ".join(sorted(set(objects))), **_edge_style(mode, status))
    for link in topology(g)["point_to_point"]:  # lineage that bypasses the hub, in red
        src, dst = (f"system:{name}" for name in link.split(" -> "))
        for sid, end in ((src, "source"), (dst, "consumer")):
            if (group[sid], end) not in side:
                text, tooltip = label(group[sid])
                d.node(ids(f"{end}:{group[sid]}"), text, URL=href(group[sid]), tooltip=tooltip)
                side.add((group[sid], end))
        d.edge(ids(f"source:{group[src]}"), ids(f"consumer:{group[dst]}"), label="point-to-point",
               color=COLOURS["p2p"], penwidth="1.6")
    return Diagram("landscape", d)


def _natural(name: str) -> list[Any]:
    """A sort key that puts team:t9 before team:t10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _bus(d: graphviz.Digraph, hub: str, ends: list[tuple[str, str]], ids: _Ids, url: str | None
         ) -> dict[tuple[str, str], str]:
    """The hub as a bar with one port per node on each side, each side wrapped into columns (same
    rank, chained by invisible edges away from the hub); the ports follow the rows, so each node's
    edge lands about level with it. Returns each node's port."""
    d.attr(nodesep="0.1", ranksep="0.6")
    ports: dict[tuple[str, str], str] = {}
    widest = max(sum(1 for _, e in ends if e == end) for end in ("source", "consumer"))
    # rows a column so the whole is about 3:2 (a page's figure), as the columns and rows are about as
    # far apart: 2 * widest / rows columns beside `rows` rows
    height = max(4, min(COLUMN, round(math.sqrt(2 * widest / 1.6))))
    height = math.ceil(widest / max(1, round(widest / height)))  # columns about equally full
    rows = 0
    for end, compass in (("source", "w"), ("consumer", "e")):
        members = [(gid, e) for gid, e in ends if e == end]
        columns = [members[i:i + height] for i in range(0, len(members), height)]
        for column in columns:
            with d.subgraph() as rank:
                rank.attr(rank="same")
                for gid, e in column:
                    rank.node(ids(f"{e}:{gid}"))
        chain = [hub, *(ids(f"{c[len(c) // 2][1]}:{c[len(c) // 2][0]}") for c in columns)]
        for a, b in zip(chain, chain[1:]):
            d.edge(*((b, a) if end == "source" else (a, b)), style="invis", weight="10")
        order = [column[r] for r in range(height) for column in columns if r < len(column)]
        for i, key in enumerate(order):
            ports[key] = f"{end[0]}{i}:{compass}"
        rows = max(rows, len(order))
    cell = max(6, round(84 * min(rows, height) / max(rows, 1)))  # the bar about as tall as a column
    body = "".join(f'<tr><td port="s{i}" width="8" height="{cell}" fixedsize="true"></td>'
                   + (f'<td rowspan="{rows}" width="56">hub</td>' if i == 0 else "")
                   + f'<td port="c{i}" width="8" height="{cell}" fixedsize="true"></td></tr>' for i in range(rows))
    d.node(hub, f'<<table border="1" cellborder="0" cellspacing="0" cellpadding="0" style="rounded" '
                f'bgcolor="{COLOURS["hub"]}">{body}</table>>', shape="plain", URL=url, tooltip="the hub")
    return ports


def _sfdp_landscape(href: Href, group: dict[str, str], edges: dict[tuple[str, str, str, str], list[str]]) -> Diagram:
    """One node per system (or team) around the hub, laid out by sfdp; arrowheads say which way."""
    d = _digraph("landscape")
    d.attr(overlap="prism", splines="false", outputorder="edgesfirst")
    ids = _Ids()
    hub = ids("system:hub")
    d.node(hub, "hub", shape="doublecircle", fillcolor=COLOURS["hub"], URL=href("system:hub"))
    for gid in sorted(set(group.values())):
        d.node(ids(gid), gid.split(":", 1)[1], URL=href(gid))
    both: dict[tuple[str, str, str], set[str]] = {}
    for gid, end, mode, status in edges:
        both.setdefault((gid, mode, status), set()).add(end)
    for (gid, mode, status), seen in sorted(both.items()):
        direction = "both" if len(seen) == 2 else "forward" if "consumer" in seen else "back"
        d.edge(hub, ids(gid), dir=direction, **_edge_style(mode, status))
    return Diagram("landscape", d, "sfdp")


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
        jobs: list[Future[Any]] = [pool.submit(_batch, chunk, timeout) for chunk in chunks]
        jobs += [pool.submit(render, d, timeout) for d in single]
        for job in jobs:
            job.result()
