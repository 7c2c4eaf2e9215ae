"""The example landscape: every definition on a page, lineage equal to dagster-webserver's, lint clean."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import networkx as nx
import pytest
from sitecheck import all_text, broken_links, parse
from docs_fixtures import example_graph, example_site, webserver  # noqa: F401 (pytest fixtures)

from docs_gen.graph import asset_name, nodes
from docs_gen.lint import lint
from docs_gen.load import load
from docs_gen.paths import page_of
from docs_gen.site import BuildResult, build
from tests.servers import graphql

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def test_every_definition_of_the_example_is_on_a_page(example_site: BuildResult) -> None:
    """Coverage 100%: each asset, check, sensor, schedule and job of the loaded Definitions has a page."""
    defs, _ = load(workspace=ROOT / "workspace.yaml")
    repo = defs.get_repository_def()
    wanted = [f"asset:{asset_name(k)}" for k in defs.resolve_all_asset_keys()]
    wanted += [f"check:{asset_name(k.asset_key)}:{k.name}" for k in defs.resolve_asset_graph().asset_check_keys]
    wanted += [f"schedule:{s.name}" for s in repo.schedule_defs] + [f"sensor:{s.name}" for s in repo.sensor_defs]
    wanted += [f"job:{j.name}" for j in repo.get_all_jobs() if not j.name.startswith("__")]
    assert len(wanted) >= 33 + 2
    missing = []
    for nid in wanted:
        path, _, anchor = page_of(nid).partition("#")
        page = example_site.out / path
        name = nid.split(":", 1)[1].rsplit(":", 1)[-1]
        if not page.is_file() or name not in page.read_text() or (anchor and anchor not in parse(page).ids):
            missing.append(nid)
    assert missing == []
    assert broken_links(example_site.out) == [] and example_site.layout_errors == []


def test_a_bindings_value_map_is_shown_with_its_mapping(example_site: BuildResult, example_graph: nx.MultiDiGraph,
                                                       tmp_path: Path) -> None:
    """The shop's shipment binding translates the 3PL's statuses: the object page says how, in both formats."""
    page = (example_site.out / page_of("object:shipment")).read_text()
    row = re.search(r"<td><code>status</code></td><td><code>shipment_status</code>(.*?)</td></tr>", page, re.S)
    assert row and re.sub(r"<[^>]+>", "", row[1]) == ("values: received → not sent, picked → not sent, "
                                                      "shipped → in_transit, delivered → delivered, cancelled → not sent")
    build(example_graph, tmp_path / "md", "markdown")
    markdown = (tmp_path / "md" / "docs" / "objects" / "shipment.md").read_text()
    assert ("| `status` | `shipment_status`; values: `received` → not sent, `picked` → not sent, `shipped` → "
            "`in_transit`, `delivered` → `delivered`, `cancelled` → not sent |") in markdown


def test_example_lints_clean(example_graph: nx.MultiDiGraph) -> None:
    """The example business has no lint finding (its shop moved to Shopify's GraphQL Admin 2026-10)."""
    assert [str(f) for f in lint(example_graph)] == []






@pytest.mark.server
def test_lineage_equals_the_webservers(webserver: str, example_graph: nx.MultiDiGraph) -> None:
    """The docs' lineage edges are exactly those dagster-webserver reports over GraphQL."""
    query = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"
    assets: list[dict] = []
    deadline = time.monotonic() + 60
    while not assets and time.monotonic() < deadline:  # the code location loads after the server answers
        assets = graphql(webserver, query)["data"]["assetNodes"]
        time.sleep(0 if assets else 0.5)
    served = {("/".join(d["path"]), "/".join(a["assetKey"]["path"])) for a in assets for d in a["dependencyKeys"]}
    docs = {(example_graph.nodes[u]["name"], example_graph.nodes[v]["name"])
            for u, v, k in example_graph.edges(keys=True) if k == "lineage"}
    assert docs == served and len(served) >= 20
    assert {"/".join(a["assetKey"]["path"]) for a in assets} == {a["name"] for _, a in nodes(example_graph, "asset")}


def _readme_system() -> tuple[str, str]:
    """README's "Add a system" Python file: its path and its text."""
    section = (ROOT / "README.md").read_text().split("## Add a system", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(# (definitions/\S+\.py)\n.*?)```", section, re.S)
    assert blocks, "README's 'Add a system' has no ```python block starting with '# definitions/….py'"
    body, path = blocks[0]
    return path, body


def test_adding_a_system_shows_everywhere_and_old_docs_are_stale(tmp_path: Path) -> None:
    """Add README's system as one file, rebuild: it is on every view; `docs check` fails on the old build."""
    for name in ("pyproject.toml", "workspace.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "definitions", tmp_path / "definitions", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def integrations(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "integrations"), *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)

    assert integrations("docs", "build", "--out", "old").returncode == 0
    path, body = _readme_system()
    system = Path(path).stem
    (tmp_path / path).write_text(body)
    assert integrations("docs", "build", "--out", "new").returncode == 0
    new = tmp_path / "new"
    assert system in (new / "index.html").read_text()
    assert f'href="systems/{system}.html"' in (new / "index.html").read_text()  # the landscape diagram links it
    assert (new / "systems" / f"{system}.html").is_file() and (new / "impact" / f"{system}.html").is_file()
    assert f">{system}</a></th>" in (new / "ownership.html").read_text()
    assert f"System {system}" in (new / "_static" / "search-index.js").read_text()
    assert f'"system:{system}"' in (new / "graph.json").read_text()
    stale = integrations("docs", "check", "--out", "old")
    assert stale.returncode == 1 and "stale" in stale.stderr
    assert integrations("docs", "check", "--out", "new").returncode == 0
    changed = integrations("docs", "diff", "old", "new", "--json")
    assert changed.returncode == 1 and system in json.loads(changed.stdout)["system"]["added"]
    old = all_text(tmp_path / "old")
    assert f"systems/{system}.html" not in old and f'"system:{system}"' not in old
