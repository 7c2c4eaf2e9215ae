"""The graph is read from the loaded Definitions only, and says what they say."""

import json
from pathlib import Path

import dagster as dg
import docs_landscapes as L
import networkx as nx
import pytest
from docs_fixtures import good_graph  # noqa: F401 (pytest fixtures)

from docs_gen.errors import DocsError
from docs_gen.graph import asset_name, build_graph, fingerprint, from_json, nodes, redact_url, to_json
from docs_gen.load import load, parse_module, targets_from_workspace


def kinds(g: nx.MultiDiGraph, kind: str) -> set[str]:
    """Names of the nodes of one kind."""
    return {a["name"] for _, a in nodes(g, kind)}


def test_every_definition_is_a_node(good_graph: nx.MultiDiGraph) -> None:
    """Assets, checks, schedules, sensors and jobs of the Definitions are nodes, no more, no less."""
    defs = L.good()
    repo = defs.get_repository_def()
    assert kinds(good_graph, "asset") == {asset_name(k) for k in defs.resolve_all_asset_keys()}
    checks = {f"{asset_name(k.asset_key)}:{k.name}" for k in defs.resolve_asset_graph().asset_check_keys}
    assert kinds(good_graph, "check") == checks and len(checks) == 4
    assert kinds(good_graph, "schedule") == {s.name for s in repo.schedule_defs}
    assert kinds(good_graph, "sensor") == {s.name for s in repo.sensor_defs}
    assert kinds(good_graph, "job") == {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")}
    assert kinds(good_graph, "system") == {"crm", "billing", "shop", "erp", "hub"}
    assert kinds(good_graph, "object") == set(L.SOT)
    assert kinds(good_graph, "flow") == {f.name for f in L.FLOWS}
    assert kinds(good_graph, "owner") >= {"team:sales-ops", "ana@example.com", "team:integration"}


def test_lineage_edges_equal_the_asset_graph(good_graph: nx.MultiDiGraph) -> None:
    """Every lineage edge is a parent -> child dependency in Dagster's asset graph, and vice versa."""
    asset_graph = L.good().resolve_asset_graph()
    expected = {(asset_name(p), asset_name(k)) for k in asset_graph.get_all_asset_keys()
                for p in asset_graph.get(k).parent_keys}
    found = {(good_graph.nodes[u]["name"], good_graph.nodes[v]["name"])
             for u, v, k in good_graph.edges(keys=True) if k == "lineage"}
    assert found == expected and len(found) == 11


def test_contract_metadata_becomes_relations(good_graph: nx.MultiDiGraph) -> None:
    """Source of truth, consumers, flows and triggers are edges between the right nodes."""
    g = good_graph
    assert g.has_edge("system:crm", "object:customer", "source_of_truth")
    assert g.has_edge("system:billing", "object:customer", "consumes")
    assert g.has_edge("system:crm", "flow:customer_crm_to_billing", "sends")
    assert g.has_edge("flow:customer_crm_to_billing", "system:billing", "delivers")
    assert g.has_edge("sensor:customer_crm_to_billing_events", "asset:billing/customer", "triggers")
    assert g.has_edge("schedule:customer_crm_to_shop_nightly", "flow:customer_crm_to_shop", "runs_flow")
    assert g.has_edge("check:hub/customer:no_dead_letters", "asset:hub/customer", "checks")
    assert g.has_edge("owner:team:sales-ops", "system:crm", "owns")
    assert g.nodes["asset:shop/product"]["status"] == "planned"
    assert g.nodes["object:customer"]["pii"] == ["email", "name"]
    assert [c["name"] for c in g.nodes["object:customer"]["schema"]] == ["id", "email", "name", "vat_number"]


def test_asset_without_contract_is_still_a_node() -> None:
    """A hand-written asset without the keys is drawn, with what it lacks recorded."""
    g = build_graph(L.no_contract())
    a = g.nodes["asset:adhoc_report"]
    assert a["system"] is None and len(a["missing_keys"]) == 7
    assert g.has_edge("asset:hub/customer", "asset:adhoc_report", "lineage")


def test_stub_assets_are_marked() -> None:
    """Dagster's auto-created stub for an undeclared dependency is a node marked stub."""
    g = build_graph(L.stub())
    assert g.nodes["asset:ghost/ledger"]["stub"] is True
    assert g.has_edge("asset:ghost/ledger", "asset:hub/invoice", "lineage")


def test_api_keeps_env_var_names_and_drops_url_credentials(good_graph: nx.MultiDiGraph) -> None:
    """Credentials appear as environment variable names only; a password in a URL is removed."""
    api = good_graph.nodes["system:erp"]["api"]
    assert api["credentials_env"] == ["ERP_DB_USER", "ERP_DB_PASSWORD"]
    assert api["base_url"] == "http://127.0.0.1:5432/erp"
    assert redact_url("https://u:p@h.example:8443/x?y=1") == "https://h.example:8443/x?y=1"
    assert redact_url("mailto:a@b.c") == "mailto:a@b.c"


def test_json_round_trip_and_fingerprint(good_graph: nx.MultiDiGraph) -> None:
    """Node-link JSON round-trips; the fingerprint is stable and changes with the Definitions."""
    data = json.loads(json.dumps(to_json(good_graph)))
    assert to_json(from_json(data)) == to_json(good_graph)
    assert fingerprint(build_graph(L.good(), "elsewhere:defs")) == fingerprint(good_graph)
    extra = L.System("crm2", "Pipedrive", "pipedrive", ["team:sales-ops"])
    assert fingerprint(build_graph(L.with_system(extra, "lead", "crm"))) != fingerprint(good_graph)


def test_load_by_module_and_by_workspace(tmp_path: Path) -> None:
    """Load `module:attr`, or the python_module entries of a workspace.yaml; errors are one line."""
    defs, origin = load("docs_landscapes:defs")
    assert isinstance(defs, dg.Definitions) and origin == "docs_landscapes:defs"
    (tmp_path / "workspace.yaml").write_text(
        "load_from:\n  - python_module:\n      module_name: docs_landscapes\n      attribute: defs\n")
    assert [str(t) for t in targets_from_workspace(tmp_path / "workspace.yaml")] == ["docs_landscapes:defs"]
    assert len(load(workspace=tmp_path / "workspace.yaml")[0].resolve_all_asset_keys()) == 16
    for bad, message in [("no_such_module", "cannot import"), ("docs_landscapes:nope", "no attribute"),
                         ("docs_landscapes:SOT", "not a dagster Definitions"), (":x", "bad --module")]:
        with pytest.raises(DocsError, match=message):
            load(bad) if bad != ":x" else parse_module(bad)
    with pytest.raises(DocsError, match="not found"):
        targets_from_workspace(tmp_path / "missing.yaml")
