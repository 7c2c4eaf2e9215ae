"""docs_gen: architecture docs, diagrams and lint generated from the loaded Dagster Definitions.

Reads only what Dagster exposes (assets, checks, jobs, schedules, sensors) and the `integration/*`
metadata keys of `integration_project.contract`; never the declaration model. Typical use:

    defs, origin = load(module="definitions.definitions:defs")
    g = build_graph(defs, origin)
    build(g, Path("site"))            # static site; or build(g, out, "markdown") for MkDocs
    lint(g); impact(g, "crm.customer.email"); backstage_yaml(g)
"""

from docs_gen.errors import DocsError
from docs_gen.graph import build_graph, fingerprint, from_json, to_json
from docs_gen.impact import impact
from docs_gen.lint import Finding, lint, report, topology
from docs_gen.load import load
from docs_gen.publish import backstage_yaml, check, diff
from docs_gen.site import BuildResult, build

__all__ = [
    "BuildResult", "DocsError", "Finding", "backstage_yaml", "build", "build_graph", "check", "diff",
    "fingerprint", "from_json", "impact", "lint", "load", "report", "to_json", "topology",
]
