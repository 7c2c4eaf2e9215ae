"""Lint finds each problem of the broken landscapes, and none in the good one."""

import json

import dagster as dg
import docs_landscapes as L
import networkx as nx
import pytest
from click.testing import CliRunner
from docs_fixtures import good_graph  # noqa: F401 (pytest fixtures)

from docs_gen import diagrams
from docs_gen.cli import lint as lint_command
from docs_gen.graph import build_graph
from docs_gen.lint import lint, topology

EXPECTED = {
    "no_contract": {("warning", "missing_contract", "asset:adhoc_report"), ("warning", "no_owner", "asset:adhoc_report"),
                    ("warning", "no_description", "asset:adhoc_report")},
    "stub": {("error", "stub_asset", "asset:ghost/ledger")},
    "two_sources": {("error", "several_sources_of_truth", "object:customer")},
    "writeback": {("error", "writeback", "flow:customer_billing_to_crm")},
    "realtime_cycle": {("error", "realtime_cycle", "object:order")},
    "unused_system": {("warning", "unused_system", "system:fax")},
    "no_source": {("error", "no_source_of_truth", "object:lead")},
    "wrong_docs_url": {("warning", "docs_url_mismatch", "asset:shop/customer_copy")},
}


def test_good_landscape_is_clean(good_graph: nx.MultiDiGraph) -> None:
    """No finding in a correct landscape but its planned assets, each with why it does not run."""
    found = lint(good_graph)
    assert found and {(f.rule, f.message) for f in found} == {("planned", "no connector yet")}
    assert {f.subject for f in found} == {aid for aid, a in good_graph.nodes(data=True)
                                          if a.get("kind") == "asset" and a.get("status") == "planned"}


@pytest.mark.parametrize("name", sorted(L.BROKEN))
def test_each_broken_landscape_gives_exactly_its_finding(name: str) -> None:
    """Each deliberately broken landscape is flagged for its problem and nothing else."""
    found = {(f.severity, f.rule, f.subject) for f in lint(build_graph(L.BROKEN[name]()))}
    assert found == EXPECTED[name]


def test_realtime_cycle_names_the_systems() -> None:
    """The cycle is spelled out so a reader can find it."""
    [finding] = lint(build_graph(L.realtime_cycle()))
    assert finding.message == "billing -> erp -> billing"


def test_topology_figures(good_graph: nx.MultiDiGraph) -> None:
    """Hub-routed links, point-to-point links, fan-in/out and share of possible links."""
    t = topology(good_graph)
    assert (t["hub_routed_links"], t["point_to_point_links"], t["links_in_use"], t["possible_links"]) == (5, 0, 5, 12)
    assert t["fan"]["crm"] == {"in": 0, "out": 2} and t["fan"]["erp"] == {"in": 2, "out": 1}
    direct = dg.AssetSpec(["shop", "deal_direct"], deps=[dg.AssetKey(["crm", "deal"])], group_name="shop",
                          metadata={"integration/system": "shop", "integration/object": "deal"})
    base = L.good()
    p2p = topology(build_graph(dg.Definitions.merge(base, dg.Definitions(assets=[direct]))))
    assert p2p["point_to_point"] == ["crm -> shop"] and p2p["point_to_point_links"] == 1
    assert p2p["links_in_use"] == 5  # crm -> shop is also hub-routed (customer): one link, two routes
    drawn = diagrams.render(diagrams.landscape(build_graph(dg.Definitions.merge(base, dg.Definitions(assets=[direct]))),
                                               lambda nid: None))
    assert drawn.svg.count("point&#45;to&#45;point") == 1 and drawn.svg.count('stroke="#c62828"') == 2  # line and arrow


def test_lint_command_exit_codes() -> None:
    """Exit 0 when clean, 1 on errors (listed), 2 when the code location cannot load; JSON on request."""
    runner = CliRunner()
    clean = runner.invoke(lint_command, ["-m", "docs_landscapes:defs"])
    assert clean.exit_code == 0 and "0 errors, 3 warnings" in clean.output  # the 3 planned assets, with reasons
    broken = runner.invoke(lint_command, ["-m", "docs_landscapes:realtime_cycle", "--json"])
    assert broken.exit_code == 1
    data = json.loads(broken.output)
    assert data["errors"] == 1 and data["findings"][0]["rule"] == "realtime_cycle"
    missing = runner.invoke(lint_command, ["-m", "no_such_landscape"])
    assert missing.exit_code == 2 and "cannot import no_such_landscape" in missing.output
    assert "Traceback" not in missing.output
