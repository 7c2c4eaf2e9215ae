"""Lint the landscape graph: sources of truth, write-backs, realtime cycles, stubs, gaps; topology."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

import networkx as nx

from docs_gen.graph import HUB, nodes, related
from docs_gen.paths import page_of


@dataclass(frozen=True)
class Finding:
    """One lint problem: `error` fails the lint, `warning` is listed."""

    severity: str
    rule: str
    subject: str  # node id, e.g. "object:customer"
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.rule}: {self.subject}: {self.message}"


RULES = {  # rule -> (severity, what it flags); errors fail `integrations lint`
    "stub_asset": ("error", "a dependency nobody declared (Dagster auto-created a stub asset)"),
    "no_source_of_truth": ("error", "an object with no source of truth"),
    "several_sources_of_truth": ("error", "an object with more than one source of truth"),
    "writeback": ("error", "a consumer writing back to the object's source of truth"),
    "realtime_cycle": ("error", "records of one object circulate in real time between systems"),
    "missing_contract": ("warning", "an asset without the integration/* contract keys"),
    "no_owner": ("warning", "an asset with no owner"),
    "no_description": ("warning", "an asset with no description"),
    "unused_system": ("warning", "a system that sends and receives nothing"),
    "planned": ("warning", "a declared asset that does not run, and why"),
    "docs_url_mismatch": ("warning", "an asset whose integration/docs_url is not its page in these docs"),
    "api_unsupported": ("error", "a system's pinned API version past the vendor's published support end"),
    "api_support_ending": ("warning", "a system's pinned API version within its declared warning days of the "
                           "vendor's published support end"),
}


def finding(rule: str, subject: str, message: str) -> Finding:
    """A finding of one rule, at the rule's severity."""
    return Finding(RULES[rule][0], rule, subject, message)


def sources_of_truth(g: nx.MultiDiGraph, oid: str) -> list[str]:
    """The system names declared source of truth of an object."""
    return [g.nodes[s]["name"] for s in related(g, oid, "source_of_truth", outgoing=False)]


def _asset_findings(g: nx.MultiDiGraph) -> list[Finding]:
    """Per-asset problems: stubs, missing contract keys, owners, descriptions."""
    out = []
    for aid, a in nodes(g, "asset"):
        if a["stub"]:
            children = ", ".join(g.nodes[c]["name"] for c in related(g, aid, "lineage"))
            out.append(finding("stub_asset", aid, f"{children} depends on it but nothing defines it"))
            continue
        if a["missing_keys"]:
            out.append(finding("missing_contract", aid, "lacks " + ", ".join(a["missing_keys"])))
        if not a["owners"]:
            out.append(finding("no_owner", aid, "no owners"))
        if not a["description"]:
            out.append(finding("no_description", aid, "no description"))
        if a.get("status") == "planned":
            out.append(finding("planned", aid, a.get("status_reason") or "planned, no reason given"))
        if a.get("docs_url") and not a["docs_url"].endswith("/" + page_of(aid)):
            out.append(finding("docs_url_mismatch", aid, f"{a['docs_url']} does not end with /{page_of(aid)}"))
    return out


def _object_findings(g: nx.MultiDiGraph) -> list[Finding]:
    """Per-object problems: zero or several sources of truth; write-backs; realtime cycles."""
    out = []
    for oid, _ in nodes(g, "object"):
        sots = sources_of_truth(g, oid)
        sources = [g.nodes[a]["system"] for a in related(g, oid, "instance_of", outgoing=False)
                   if g.nodes[a].get("role") == "source"]
        owners = sorted(set(sots) | set(sources))
        if not owners:
            out.append(finding("no_source_of_truth", oid, "no system is its source of truth"))
        elif len(owners) > 1:
            out.append(finding("several_sources_of_truth", oid, "claimed by " + ", ".join(owners)))
        realtime = nx.DiGraph()
        for fid in related(g, oid, "carries", outgoing=False):
            f = g.nodes[fid]
            if len(owners) == 1 and f.get("consumer") == owners[0]:
                out.append(finding("writeback", fid,
                                   f"{f.get('source')} writes {f.get('object')} back to {f.get('consumer')}, its source of truth"))
            if f.get("mode") == "realtime" and f.get("source") and f.get("consumer"):
                realtime.add_edge(f["source"], f["consumer"])
        for cycle in sorted(_rotated(cy) for cy in nx.simple_cycles(realtime)):
            out.append(finding("realtime_cycle", oid, " -> ".join([*cycle, cycle[0]])))
    return out


def _rotated(cycle: list[str]) -> list[str]:
    """A cycle starting at its smallest name, so each is reported the same way every time."""
    start = cycle.index(min(cycle))
    return cycle[start:] + cycle[:start]


def _system_findings(g: nx.MultiDiGraph) -> list[Finding]:
    """Systems no flow touches."""
    return [
        finding("unused_system", sid, "no flow sends from or delivers to it")
        for sid, s in nodes(g, "system")
        if not s.get("hub") and not related(g, sid, "sends") and not related(g, sid, "delivers", outgoing=False)
    ]


def _api_findings(g: nx.MultiDiGraph, today: date) -> list[Finding]:
    """Pinned API versions past, or close to, the vendor's published support end."""
    out = []
    for sid, s in nodes(g, "system"):
        api = s.get("api") or {}
        if not api.get("support_ends"):
            continue
        ends, left = date.fromisoformat(str(api["support_ends"])), int(api.get("support_warning_days") or 0)
        said = f"{api.get('vendor')} API {api.get('version')}"
        if today >= ends:
            out.append(finding("api_unsupported", sid, f"{said} out of support since {ends} "
                                                       f"({api.get('support_source')})"))
        elif (ends - today).days <= left:
            out.append(finding("api_support_ending", sid, f"{said} out of support on {ends}, in "
                                                          f"{(ends - today).days} days ({api.get('support_source')})"))
    return out


def lifecycle(g: nx.MultiDiGraph) -> list[dict[str, Any]]:
    """Each system's pinned API version and its published support window, for the landscape table."""
    keys = ("vendor", "version", "released", "support_ends", "support_source")
    return [{"system": s["name"], **{k: (s.get("api") or {}).get(k) for k in keys}}
            for _, s in nodes(g, "system") if not s.get("hub") and (s.get("api") or {}).get("version")]


def topology(g: nx.MultiDiGraph) -> dict[str, Any]:
    """Links between systems as lineage shows them: via the hub or point-to-point; fan-in/out."""
    systems = [s["name"] for _, s in nodes(g, "system") if not s.get("hub")]
    hub_links: set[tuple[str, str]] = set()
    direct: set[tuple[str, str]] = set()
    for aid, a in nodes(g, "asset"):
        if a.get("system") == HUB:
            ups = {g.nodes[p].get("system") for p in related(g, aid, "lineage", outgoing=False)}
            downs = {g.nodes[d].get("system") for d in related(g, aid, "lineage")}
            hub_links |= {(u, d) for u in ups for d in downs if u and d and u != d and HUB not in (u, d)}
        elif a.get("system"):
            for d in related(g, aid, "lineage"):
                other = g.nodes[d].get("system")
                if other and other not in (HUB, a["system"]):
                    direct.add((a["system"], other))
    links = hub_links | direct
    possible = len(systems) * (len(systems) - 1)
    return {
        "systems": len(systems),
        "hub_routed_links": len(hub_links),
        "point_to_point_links": len(direct),
        "links_in_use": len(links),
        "possible_links": possible,
        "share_of_possible_links": round(len(links) / possible, 4) if possible else 0.0,
        "fan": {s: {"in": sum(1 for _, d in links if d == s), "out": sum(1 for u, _ in links if u == s)}
                for s in systems},
        "point_to_point": sorted(f"{u} -> {d}" for u, d in direct),
    }


def lint(g: nx.MultiDiGraph, today: date | None = None) -> list[Finding]:
    """Every finding, errors first; support ends are judged at `today` (default: today, UTC)."""
    day = today or datetime.now(UTC).date()
    found = _asset_findings(g) + _object_findings(g) + _system_findings(g) + _api_findings(g, day)
    return sorted(found, key=lambda f: (f.severity != "error", f.rule, f.subject))


def report(g: nx.MultiDiGraph, today: date | None = None) -> dict[str, Any]:
    """Findings and topology as data (for `--json` and the lint page)."""
    found = lint(g, today)
    return {
        "errors": sum(f.severity == "error" for f in found),
        "warnings": sum(f.severity == "warning" for f in found),
        "findings": [asdict(f) for f in found],
        "rules": RULES,
        "topology": topology(g),
    }
