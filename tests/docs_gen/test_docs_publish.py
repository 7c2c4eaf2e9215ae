"""Backstage export, diff between builds, staleness check, the serve command and the CLI's exit codes."""

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import docs_landscapes as L
import networkx as nx
import pytest
import yaml
from click.testing import CliRunner
from docs_fixtures import example_graph, good_graph, good_site  # noqa: F401 (pytest fixtures)

from docs_gen.cli import docs
from docs_gen.graph import build_graph
from docs_gen.publish import backstage_yaml, check, diff, load_build, serve
from docs_gen.site import build


def test_backstage_catalog_entities_and_relations(good_graph: nx.MultiDiGraph) -> None:
    """System, API, Resource and Component entities with owners; every relation points at an entity."""
    entities = list(yaml.safe_load_all(backstage_yaml(good_graph)))
    by_ref = {f"{e['kind'].lower()}:default/{e['metadata']['name']}": e for e in entities}
    kinds = [e["kind"] for e in entities]
    assert (kinds.count("System"), kinds.count("API"), kinds.count("Resource"), kinds.count("Component")) == (5, 4, 5, 6)
    assert all(e["apiVersion"] == "backstage.io/v1alpha1" and e["spec"].get("owner") for e in entities
               if e["kind"] != "System") and by_ref["system:default/crm"]["spec"]["owner"] == "group:default/sales-ops"
    flow = by_ref["component:default/flow-customer_crm_to_billing"]["spec"]
    assert flow["dependsOn"] == ["resource:default/object-customer"] and flow["owner"] == "group:default/finance"
    assert flow["consumesApis"] == ["api:default/crm-api", "api:default/billing-api"]
    for e in entities:
        for ref in e["spec"].get("dependsOn", []) + e["spec"].get("consumesApis", []):
            assert ref in by_ref, ref
        if "system" in e["spec"]:
            assert f"system:default/{e['spec']['system']}" in by_ref
    api = by_ref["api:default/billing-api"]["spec"]["definition"]
    assert "BILLING_API_KEY" in api and L.SECRETS["BILLING_API_KEY"] not in api


def test_diff_names_what_changed(tmp_path: Path) -> None:
    """Adding a system and changing an owner show as added systems, objects, flows and changed owners."""
    build(build_graph(L.good()), tmp_path / "old")
    pipedrive = L.System("pipedrive", "Pipedrive", "pipedrive", ["team:sales-ops"])
    changed = L.with_system(pipedrive, "lead", "crm")
    build(build_graph(changed), tmp_path / "new")
    result = diff(load_build(tmp_path / "old")[0], load_build(tmp_path / "new")[0])
    assert result["system"]["added"] == ["pipedrive"] and result["object"]["added"] == ["lead"]
    assert result["flow"]["added"] == ["lead_pipedrive_to_crm"]
    assert "team:sales-ops" in result["owner"]["changed"]
    assert diff(load_build(tmp_path / "old")[0], load_build(tmp_path / "old")[0]) == {}
    runner = CliRunner()
    assert runner.invoke(docs, ["diff", str(tmp_path / "old"), str(tmp_path / "old")]).exit_code == 0
    out = runner.invoke(docs, ["diff", str(tmp_path / "old"), str(tmp_path / "new")])
    assert out.exit_code == 1 and "system added: pipedrive" in out.output
    missing = runner.invoke(docs, ["diff", str(tmp_path / "old"), str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "is not a docs build" in missing.output


def test_check_compares_fingerprints(tmp_path: Path) -> None:
    """`docs check` passes on a build of the same Definitions, fails on one of older Definitions."""
    build(build_graph(L.good()), tmp_path / "site", "markdown")
    assert check(tmp_path / "site", build_graph(L.good(), "anywhere:defs"))[0] is True
    current, message = check(tmp_path / "site", build_graph(L.writeback()))
    assert current is False and "stale" in message
    runner = CliRunner()
    ok = runner.invoke(docs, ["check", "-m", "docs_landscapes:defs", "--out", str(tmp_path / "site")])
    assert ok.exit_code == 0, ok.output
    stale = runner.invoke(docs, ["check", "-m", "docs_landscapes:writeback", "--out", str(tmp_path / "site")])
    assert stale.exit_code == 1 and "integrations docs build" in stale.output


def test_build_and_export_commands(tmp_path: Path) -> None:
    """`docs build` in both formats and `docs export backstage` write their files; bad input exits 2."""
    runner = CliRunner()
    html = runner.invoke(docs, ["build", "-m", "docs_landscapes:defs", "--out", str(tmp_path / "h")])
    assert html.exit_code == 0 and "built 43 pages" in html.output
    assert json.loads((tmp_path / "h" / "manifest.json").read_text())["origin"] == "docs_landscapes:defs"
    md = runner.invoke(docs, ["build", "-m", "docs_landscapes:defs", "--out", str(tmp_path / "m"), "--format", "markdown"])
    assert md.exit_code == 0 and (tmp_path / "m" / "docs" / "index.md").is_file()
    out = runner.invoke(docs, ["export", "backstage", "-m", "docs_landscapes:defs", "--out", str(tmp_path / "c.yaml")])
    assert out.exit_code == 0 and len(list(yaml.safe_load_all((tmp_path / "c.yaml").read_text()))) == 20
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    refused = runner.invoke(docs, ["build", "-m", "docs_landscapes:defs", "--out", str(tmp_path / "mine")])
    assert refused.exit_code == 2 and "holds no previous docs build" in refused.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    again = runner.invoke(docs, ["build", "-m", "docs_landscapes:defs", "--out", str(tmp_path / "h")])
    assert again.exit_code == 0  # a previous build is replaced
    for args in (["build", "-m", "docs_landscapes:nothing"], ["build", "-w", str(tmp_path / "none.yaml")],
                 ["build", "--format", "pdf"]):
        bad = runner.invoke(docs, args)
        assert bad.exit_code == 2 and "Traceback" not in bad.output, args


def test_serve_answers_pages_and_404(good_site: object, tmp_path: Path) -> None:
    """The served site answers its pages and 404 for others; a folder without a site is refused."""
    server = serve(good_site.out, port=0)  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/systems/crm.html") as response:
            assert response.status == 200 and b"System crm" in response.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/systems/nope.html")
        assert missing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
    assert CliRunner().invoke(docs, ["serve", "--no-build", "--out", str(tmp_path)]).exit_code == 2


def test_backstage_hub_only_legs_are_owned_legs(example_graph: nx.MultiDiGraph) -> None:
    """The example's legs no system consumes (payment, ticket) export as their source's team's
    component on the real object, never `unowned` or `object-None`."""
    entities = list(yaml.safe_load_all(backstage_yaml(example_graph)))
    by_name = {e["metadata"]["name"]: e for e in entities}
    text = backstage_yaml(example_graph)
    assert "unowned" not in text and "object-None" not in text
    for leg, obj, team in (("payment_billing_to_hub", "payment", "finance"), ("ticket_support_to_hub", "ticket", "support")):
        spec = by_name[f"flow-{leg}"]["spec"]
        assert spec["owner"] == f"group:default/{team}" and spec["dependsOn"] == [f"resource:default/object-{obj}"]
        assert spec["system"] == "hub"
