"""The landscape graph -> a self-contained static site (HTML, or a Markdown tree for MkDocs/TechDocs).

No CDN and no fetch: styles, the search index and the SVG diagrams ship inside the site, so it works
from file:// as well as from any web server.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import networkx as nx

from docs_gen import diagrams
from docs_gen.errors import DocsError
from docs_gen.graph import HUB, fingerprint, nodes, related, to_json
from docs_gen.impact import impact, lineage
from docs_gen.lint import lifecycle, report, sources_of_truth
from docs_gen.paths import page_of, relative, slug

TEMPLATES = Path(__file__).parent / "templates"
STATIC = ("style.css", "site.js")
MANIFEST = "manifest.json"
GRAPH = "graph.json"
MATRIX_UP_TO = 40  # systems; past it the ownership page has one row per object, not an object x system matrix


@dataclass
class Page:
    """One page to write: its path, template, context and diagrams."""

    path: str
    template: str
    title: str
    context: dict[str, Any] = field(default_factory=dict)
    diagrams: list[diagrams.Diagram] = field(default_factory=list)
    search_text: str = ""


@dataclass
class BuildResult:
    """What a build produced, for the CLI and the benchmark."""

    out: Path
    pages: int
    diagrams: int
    layout_seconds: float
    slowest_layout: tuple[str, float]
    layout_errors: list[str]
    fingerprint: str
    seconds: float


class Site:
    """Every page of the docs as views over one landscape graph."""

    def __init__(self, g: nx.MultiDiGraph, dagster_url: str = "http://127.0.0.1:3000", fmt: str = "html"):
        self.g = g
        self.dagster_url = dagster_url.rstrip("/")
        self.fmt = fmt
        self.lint = report(g)
        self.lineage = lineage(g)
        self.findings_by_subject: dict[str, list[dict[str, str]]] = {}
        for f in self.lint["findings"]:
            self.findings_by_subject.setdefault(f["subject"], []).append(f)

    def ext(self, path: str) -> str:
        """A site path in the output format (`.md` pages in Markdown)."""
        return re.sub(r"\.html(#|$)", r".md\1", path) if self.fmt == "markdown" else path

    def href(self, from_page: str) -> diagrams.Href:
        """A function giving the relative link to a node's page from `from_page`."""
        return lambda nid: relative(self.ext(page_of(nid)), self.ext(from_page))

    def dhref(self, from_page: str) -> diagrams.Href:
        """Links inside diagrams: relative page links inline in HTML; none in Markdown's SVG files."""
        return self.href(from_page) if self.fmt == "html" else (lambda nid: None)

    def ui(self, asset: dict[str, Any], checks: bool = False) -> str:
        """The asset (or its checks tab) in the Dagster UI."""
        url = f"{self.dagster_url}/assets/{'/'.join(asset['key'])}"
        return url + "?view=checks" if checks else url

    def dagster_page(self, node: dict[str, Any]) -> str | None:
        """A job's, schedule's or sensor's page in the Dagster UI; None when the code location is unknown."""
        location = self.g.graph.get("location")
        if not location or node.get("kind") not in ("job", "schedule", "sensor"):
            return None
        return f"{self.dagster_url}/locations/{quote(location, safe='')}/{node['kind']}s/{quote(node['name'])}"

    def node(self, nid: str) -> dict[str, Any]:
        """A node's attributes plus its id."""
        return {"id": nid, **self.g.nodes[nid]}

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Every node of a kind, with ids."""
        return [{"id": n, **a} for n, a in nodes(self.g, kind)]

    def rel(self, nid: str, relation: str, outgoing: bool = True) -> list[dict[str, Any]]:
        """Related nodes, with ids."""
        return [self.node(n) for n in related(self.g, nid, relation, outgoing)]

    def pages(self) -> Iterator[Page]:
        """Every page of the site."""
        yield self._index()
        for s in self.all("system"):
            yield self._system(s)
            yield self._impact(s)
        for o in self.all("object"):
            yield self._object(o)
        for f in self.all("flow"):
            yield self._flow(f)
        for a in self.all("asset"):
            yield self._asset(a)
        yield self._triggers()
        yield self._ownership()
        yield self._owners()
        yield Page("lint.html", "lint", "Lint", {"lint": self.lint})
        yield Page("search.html", "search", "Search")

    def _index(self) -> Page:
        """The landscape overview: counts, systems, objects, flows and the landscape diagram."""
        counts = {k: len(nodes(self.g, k)) for k in
                  ("system", "object", "flow", "asset", "check", "schedule", "sensor", "job", "owner")}
        summary = landscape_counts(self.g)
        modes = {m: sum(1 for _, f in nodes(self.g, "flow") if f.get("mode") == m and f.get("consumer") != HUB)
                 for m in ("realtime", "batch")}
        return Page("index.html", "index", "Integration landscape", {
            "counts": counts, "summary": summary, "modes": modes, "systems": self.all("system"), "objects": self.all("object"),
            "flows": self.all("flow"), "lint": self.lint, "lifecycle": lifecycle(self.g),
            "unclassified": [a for a in self.all("asset") if not a.get("object")],
            "origin": self.g.graph.get("origin", ""),
        }, [diagrams.landscape(self.g, self.dhref("index.html"))], "landscape overview systems objects flows")

    def _system(self, s: dict[str, Any]) -> Page:
        """A system: owner, vendor, API, credentials' env-var names, objects, flows, triggers, context."""
        sid, path = s["id"], page_of(s["id"])
        assets = self.rel(sid, "contains")
        triggers = {t for a in assets for t in related(self.g, a["id"], "triggers", outgoing=False)}
        triggers |= {t for f in related(self.g, sid, "sends") + related(self.g, sid, "delivers", outgoing=False)
                     for t in related(self.g, f, "runs_flow", outgoing=False)}
        ctx = {
            "s": s, "assets": assets, "owned": self.rel(sid, "source_of_truth"), "consumed": self.rel(sid, "consumes"),
            "outbound": self.rel(sid, "sends"), "inbound": self.rel(sid, "delivers", outgoing=False),
            "triggers": [self.node(t) for t in sorted(triggers) if self.g.nodes[t]["kind"] != "job"],
            "findings": self.findings_by_subject.get(sid, []),
        }
        api = s.get("api") or {}
        text = " ".join([s["name"], *s.get("owners", []), *(" ".join(v) if isinstance(v, list) else str(v)
                                                            for k, v in api.items() if k != "auth")])
        return Page(path, "system", f"System {s['name']}", ctx, [diagrams.system_context(self.g, sid, self.dhref(path))], text)

    def _impact(self, s: dict[str, Any]) -> Page:
        """What is affected if a system, or one of its objects, changes."""
        path = page_of(f"impact:{s['name']}")
        result = impact(self.g, s["name"], self.lineage)
        per_object = [impact(self.g, f"{s['name']}.{o}", self.lineage) for o in result["objects"]]
        return Page(path, "impact", f"Impact of {s['name']}", {"s": s, "result": result, "per_object": per_object},
                    search_text=f"impact {s['name']}")

    def _object(self, o: dict[str, Any]) -> Page:
        """An object: schema with PII, sources of truth per object and field, mappings, checks, lineage."""
        oid, path = o["id"], page_of(o["id"])
        assets = self.rel(oid, "instance_of", outgoing=False)
        owned_fields = {f: a["system"] for a in assets for f in a.get("owned_fields", [])}
        mappings = [a for a in assets if a.get("mapping")]
        ctx = {
            "o": o, "assets": assets, "sots": sources_of_truth(self.g, oid), "owned_fields": owned_fields,
            "consumers": self.rel(oid, "consumes", outgoing=False), "flows": self.rel(oid, "carries", outgoing=False),
            "mappings": mappings, "checks": [c for a in assets for c in self.rel(a["id"], "checks", outgoing=False)],
            "findings": self.findings_by_subject.get(oid, []),
        }
        text = " ".join([o["name"], *o.get("owners", []), *(c["name"] for c in o.get("schema", []))])
        return Page(path, "object", f"Object {o['name']}", ctx, [diagrams.object_lineage(self.g, oid, self.dhref(path))], text)

    def _flow(self, f: dict[str, Any]) -> Page:
        """A flow as a runbook: triggers, jobs and retries, dead letters, checks, owners, how to run it now."""
        fid, path = f["id"], page_of(f["id"])
        assets = self.rel(fid, "materializes")
        runners = self.rel(fid, "runs_flow", outgoing=False)
        jobs = [r for r in runners if r["kind"] == "job"]
        for t in runners:
            jobs += [j for j in self.rel(t["id"], "runs") if j not in jobs]
        # every schedule and sensor that runs one of the flow's jobs (sensors carry no flow tag)
        triggers = {r["id"]: r for r in runners if r["kind"] != "job"}
        triggers.update((t["id"], t) for j in jobs for t in self.rel(j["id"], "runs", outgoing=False))
        order = {"source": 0, "hub": 1, "consumer": 2}  # running a flow = extract, hub, load again
        runnable = sorted((a for a in assets if a.get("executable")), key=lambda a: order.get(str(a.get("role")), 3))
        selection = ",".join(a["name"] for a in runnable)
        module, _, attr = str(self.g.graph.get("origin", "")).partition(":")
        command = f"dg launch --assets '{selection}' -m {module}" + (f" -a {attr}" if attr else "")
        owners = sorted({o for a in assets for o in a.get("owners", [])})
        live = f.get("status") != "planned"
        dlq = [f"integrations dlq {verb} --flow {f['name']}" for verb in ("list", "replay --dry-run", "replay")] if live else []
        ctx = {"f": f, "leg": f.get("consumer") == HUB, "assets": assets, "ui": self.ui,
               "triggers": [dict(t, jobs=self.rel(t["id"], "runs")) for _, t in sorted(triggers.items())], "jobs": jobs,
               "run_now": command if selection else "", "owners": owners, "dlq": dlq,
               "checks": [c for a in assets for c in self.rel(a["id"], "checks", outgoing=False)],
               "findings": self.findings_by_subject.get(fid, [])}
        text = " ".join([f["name"], str(f.get("purpose") or ""), *owners])
        return Page(path, "flow", f"Flow {f['name']}", ctx, [diagrams.flow(self.g, fid, self.dhref(path))], text)

    def _asset(self, a: dict[str, Any]) -> Page:
        """An asset: its contract metadata, neighbours, checks, triggers and its Dagster UI link."""
        aid, path = a["id"], page_of(a["id"])
        drawn = [] if a.get("object") else [diagrams.neighbourhood(self.g, aid, self.dhref(path))]
        ctx = {"a": a, "ui": self.ui(a), "ui_checks": self.ui(a, checks=True),
               "parents": self.rel(aid, "lineage", outgoing=False), "children": self.rel(aid, "lineage"),
               "checks": self.rel(aid, "checks", outgoing=False), "flows": self.rel(aid, "materializes", outgoing=False),
               "triggers": self.rel(aid, "triggers", outgoing=False), "jobs": self.rel(aid, "selects", outgoing=False),
               "findings": self.findings_by_subject.get(aid, [])}
        text = " ".join([a["name"], a.get("description", ""), *a.get("owners", []), *a.get("checks", [])])
        return Page(path, "asset", f"Asset {a['name']}", ctx, drawn, text)

    def _triggers(self) -> Page:
        """Every schedule, sensor and job with what it runs."""
        ctx = {kind: [dict(t, flows=self.rel(t["id"], "runs_flow"), assets=self.rel(t["id"], "triggers" if kind != "jobs" else "selects"))
                      for t in self.all(kind[:-1])] for kind in ("schedules", "sensors", "jobs")}
        text = " ".join(t["name"] for k in ("schedule", "sensor", "job") for t in self.all(k))
        return Page("triggers.html", "triggers", "Schedules, sensors and jobs", ctx, search_text=text)

    def _ownership(self) -> Page:
        """Object x system: a full matrix up to MATRIX_UP_TO systems, one row per object beyond."""
        systems = [s for s in self.all("system") if not s.get("hub")]
        dense = len(systems) <= MATRIX_UP_TO
        rows = []
        for o in self.all("object"):
            sots = set(sources_of_truth(self.g, o["id"]))
            consumers = [s["name"] for s in self.rel(o["id"], "consumes", outgoing=False)]
            cells = ["source of truth" if s["name"] in sots else "consumer" if s["name"] in consumers else ""
                     for s in systems] if dense else []
            rows.append({"o": o, "cells": cells, "sots": sorted(sots), "consumers": consumers})
        return Page("ownership.html", "ownership", "Ownership matrix",
                    {"systems": systems if dense else [], "rows": rows},
                    search_text="ownership matrix source of truth consumer")

    def _owners(self) -> Page:
        """Every owner and what they own."""
        owners = [dict(o, owns=self.rel(o["id"], "owns")) for o in self.all("owner")]
        return Page("owners.html", "owners", "Owners", {"owners": owners}, search_text=" ".join(o["name"] for o in owners))


def landscape_counts(g: nx.MultiDiGraph) -> str:
    """"8 systems (+ the hub), 10 objects, 13 flows to consumers, 2 hub-only legs": what
    `integrations check` says, so the two can be compared."""
    systems = sum(1 for _, s in nodes(g, "system") if not s.get("hub"))
    hub = " (+ the hub)" if any(s.get("hub") for _, s in nodes(g, "system")) else ""
    flows = [f for _, f in nodes(g, "flow")]
    legs = sum(1 for f in flows if f.get("consumer") == HUB)
    return (f"{systems} systems{hub}, {len(nodes(g, 'object'))} objects, {len(flows) - legs} flows to consumers"
            + (f", {legs} hub-only leg{'s' if legs != 1 else ''}" if legs else ""))


def _environment(fmt: str) -> jinja2.Environment:
    """Jinja2 with autoescaping for HTML; Markdown templates escape table cells themselves."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES / fmt), autoescape=fmt == "html",
                             undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["slug"] = slug
    env.filters["json"] = lambda v: json.dumps(v, sort_keys=True)
    env.filters["cell"] = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    return env


CHUNK = 400  # pages held in memory at once: their diagrams are laid out together, then written


def build(g: nx.MultiDiGraph, out: Path, fmt: str = "html", dagster_url: str = "http://127.0.0.1:3000",
          timeout: float = diagrams.TIMEOUT_S) -> BuildResult:
    """Write the whole site (or Markdown tree) into `out`, replacing what was there."""
    start = time.perf_counter()
    site = Site(g, dagster_url, fmt)
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():  # never wipe a folder this tool did not write
            raise DocsError(f"{out} is not empty and holds no previous docs build; choose another --out")
        shutil.rmtree(out)
    docs = out / "docs" if fmt == "markdown" else out
    env = _environment(fmt)
    print_ = fingerprint(g)
    written: list[Page] = []
    times: list[tuple[str, float]] = []
    errors: list[str] = []
    pages = site.pages()
    while chunk := list(itertools.islice(pages, CHUNK)):
        drawn = [d for p in chunk for d in p.diagrams]
        diagrams.render_all(drawn, timeout, workers=os.cpu_count() or 2)
        for page in chunk:
            _write_page(site, env, page, docs, print_)
            written.append(Page(page.path, page.template, page.title, search_text=page.search_text))
        times += [(d.name, d.seconds) for d in drawn]
        errors += [f"{d.name}: {d.error}" for d in drawn if d.error]
    _write_support(site, written, out, docs, fmt, g, print_)
    return BuildResult(out, len(written), len(times), sum(t for _, t in times),
                       max(times, key=lambda t: t[1]) if times else ("", 0.0), errors, print_,
                       time.perf_counter() - start)


NAV = [("index.html", "Landscape"), ("ownership.html", "Ownership"), ("owners.html", "Owners"),
       ("triggers.html", "Triggers"), ("lint.html", "Lint"), ("search.html", "Search")]


def _write_page(site: Site, env: jinja2.Environment, page: Page, docs: Path, print_: str) -> None:
    """Render one page (and, for Markdown, its diagrams as SVG files) into the output."""
    path = site.ext(page.path)
    target = docs / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if site.fmt == "markdown":
        for d in page.diagrams:
            (docs / "diagrams").mkdir(exist_ok=True)
            (docs / "diagrams" / f"{slug(d.name)}.svg").write_text(d.svg)
    text = env.get_template(f"{page.template}.{'md' if site.fmt == 'markdown' else 'html'}").render(
        page=page, title=page.title, root="../" * path.count("/"), href=site.href(page.path),
        link=lambda p: relative(site.ext(p), path), nav=NAV, fingerprint=print_, dagster_page=site.dagster_page,
        diagram_file=lambda d: relative(f"diagrams/{slug(d.name)}.svg", path), **page.context)
    target.write_text(text)


def _write_support(site: Site, pages: list[Page], out: Path, docs: Path, fmt: str, g: nx.MultiDiGraph,
                   print_: str) -> None:
    """Static files, the search index, the graph export, the manifest (and mkdocs.yml for Markdown)."""
    (docs / GRAPH).write_text(json.dumps(to_json(g), sort_keys=True, separators=(",", ":")))
    (out / MANIFEST).write_text(json.dumps({"fingerprint": print_, "origin": g.graph.get("origin", ""),
                                            "format": fmt, "pages": len(pages)}, indent=1))
    if fmt == "markdown":
        (out / "mkdocs.yml").write_text(_mkdocs_yml(site, pages))
        return
    (out / "_static").mkdir(exist_ok=True)
    for name in STATIC:
        shutil.copy(TEMPLATES / "html" / name, out / "_static" / name)
    index = [{"t": p.title, "u": p.path, "x": p.search_text[:400]} for p in pages]
    index += [{"t": f"Owner {o['name']}", "u": page_of(o["id"]),  # each owner, where the owners page lists it
               "x": " ".join(n["name"] for n in site.rel(o["id"], "owns"))[:400]} for o in site.all("owner")]
    (out / "_static" / "search-index.js").write_text("window.SEARCH_INDEX = " + json.dumps(index) + ";\n")


def _mkdocs_yml(site: Site, pages: list[Page]) -> str:
    """mkdocs.yml for the Markdown tree: top pages, then one section per folder (systems, objects…)."""
    lines = ["site_name: Integration landscape", "docs_dir: docs", "plugins: [search]", "nav:"]
    sections: dict[str, list[Page]] = {}
    for p in pages:
        if "/" in p.path:
            sections.setdefault(p.path.split("/")[0], []).append(p)
        else:
            lines.append(f"  - {json.dumps(p.title)}: {json.dumps(site.ext(p.path))}")
    for section, members in sections.items():
        lines.append(f"  - {json.dumps(section.title())}:")
        lines += [f"      - {json.dumps(p.title)}: {json.dumps(site.ext(p.path))}" for p in members]
    return "\n".join(lines) + "\n"
