"""The static site: every definition on a page, links that resolve, self-contained, Markdown too."""

import re
import subprocess
import sys
from pathlib import Path

import docs_landscapes as L
import pytest
from sitecheck import broken_links, parse
from docs_fixtures import good_site  # noqa: F401 (pytest fixtures)

from docs_gen import diagrams
from docs_gen.graph import build_graph, nodes
from docs_gen.paths import page_of, relative
from docs_gen.site import BuildResult, build


def test_every_asset_check_sensor_schedule_and_job_is_on_a_page(good_site: BuildResult) -> None:
    """Coverage 100%: each definition has its page or anchor, and its name is on it."""
    g = build_graph(L.no_contract())
    for kind in ("asset", "check", "schedule", "sensor", "job", "system", "object", "flow", "owner"):
        for nid, a in nodes(g, kind):
            path, _, anchor = page_of(nid).partition("#")
            page = good_site.out / path
            assert page.is_file(), nid
            if anchor:
                assert anchor in parse(page).ids, nid
            label = a["check"] if kind == "check" else a["name"]
            assert label in page.read_text(), nid


def test_no_broken_internal_link(good_site: BuildResult) -> None:
    """Every href/src/xlink:href inside the site resolves to a file and, with #, to an id."""
    assert broken_links(good_site.out) == []
    assert good_site.pages == 44 and good_site.layout_errors == []


def test_self_contained_no_cdn(good_site: BuildResult) -> None:
    """Scripts and styles are local files; nothing is fetched, so file:// works."""
    for page in good_site.out.rglob("*.html"):
        html = page.read_text()
        for src in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html):
            assert not re.match(r"(https?:)?//", src), (page, src)
        assert "fetch(" not in html
    assert "window.SEARCH_INDEX" in (good_site.out / "_static" / "search-index.js").read_text()


def test_system_object_flow_pages_say_what_the_issue_asks(good_site: BuildResult) -> None:
    """Owner, vendor, API version, auth, env-var names; schema with PII; runbook with how to run it now."""
    billing = (good_site.out / "systems" / "billing.html").read_text()
    for expected in ("Stripe", "2024-06-01", "api_key", "BILLING_API_KEY", "BILLING_WEBHOOK_SECRET",
                     "team:finance", "customer_crm_to_billing_events", "invoice_billing_to_erp"):
        assert expected in billing, expected
    customer = (good_site.out / "objects" / "customer.html").read_text()
    assert customer.count('class="pii"') == 2 and "billing_email" in customer and "no_dead_letters" in customer
    assert "0 – 5000" in customer and "within 60 min" in customer
    flow = (good_site.out / "flows" / "customer_crm_to_billing.html").read_text()
    assert ("dg launch --assets &#39;crm/customer,hub/customer,billing/customer&#39; "
            "-m docs_landscapes -a defs") in flow
    assert "run retries 3" in flow and "every ≥ 4 s" in flow
    asset = (good_site.out / "assets" / "crm" / "customer.html").read_text()
    assert 'href="http://127.0.0.1:3000/assets/crm/customer"' in asset
    lint = (good_site.out / "lint.html").read_text()
    assert "missing_contract" in lint and "5 of 12 possible" in lint
    ownership = (good_site.out / "ownership.html").read_text()
    assert ownership.count("source of truth</td>") == 5


def test_dead_letter_commands_are_real_commands(good_site: BuildResult) -> None:
    """The runbook's dead-letter commands name real `integrations` commands and options."""
    from click.testing import CliRunner

    from integration_project.cli import main

    flow = (good_site.out / "flows" / "customer_crm_to_billing.html").read_text()
    commands = re.findall(r"^(?:<pre><code>)?(integrations dlq [^\n<]+)$", flow, re.M)
    assert len(commands) == 3 and "integrations dlq list --flow customer_crm_to_billing" in commands
    for command in commands:
        done = CliRunner().invoke(main, [*command.split()[1:], "--help"])
        assert done.exit_code == 0, (command, done.output)
    assert CliRunner().invoke(main, ["dlq", "list", "--no-such-option", "--help"]).exit_code == 2  # the check bites


def test_run_now_command_is_exact(good_site: BuildResult, tmp_path: Path) -> None:
    """The runbook's command to run the flow now, run as written, materializes the flow's assets again."""
    flow = (good_site.out / "flows" / "customer_crm_to_billing.html").read_text()
    command = re.search(r"<code>(dg launch[^<]+)</code>", flow).group(1).replace("&#39;", "'")
    env = {"DAGSTER_HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).parent), "PATH": str(Path(sys.executable).parent)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RUN_SUCCESS" in done.stderr + done.stdout


def test_markdown_tree_for_mkdocs(tmp_path: Path) -> None:
    """--format markdown writes docs/*.md with diagrams as SVG files and mkdocs.yml listing every page."""
    result = build(build_graph(L.good(), "docs_landscapes:defs"), tmp_path / "md", "markdown")
    docs = tmp_path / "md" / "docs"
    pages = sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.md"))
    assert len(pages) == result.pages == 43
    mkdocs = (tmp_path / "md" / "mkdocs.yml").read_text()
    assert all(f'"{p}"' in mkdocs for p in pages)
    assert broken_links(docs, markdown=True) == []
    assert (docs / "diagrams" / "landscape.svg").read_text().startswith("<svg")
    assert "](../diagrams/object_customer.svg)" in (docs / "objects" / "customer.md").read_text()
    assert "dg launch --assets" in (docs / "flows" / "customer_crm_to_shop.md").read_text()
    assert "dg launch" not in (docs / "flows" / "product_erp_to_shop.md").read_text()  # planned


def _hub_ends(svg: str) -> list[int]:
    """The height at which each edge of a landscape SVG meets the hub (node n0): of each edge path's
    two ends, the one nearer the hub's centre, rounded."""
    hub = svg[svg.index("<title>n0</title>"):]
    hub = hub[:hub.index("</g>")]
    box = [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", hub)]
    circle = re.search(r'cx="(-?[\d.]+)" cy="(-?[\d.]+)"', hub)  # a doublecircle hub
    cx, cy = (float(circle[1]), float(circle[2])) if circle else \
        (sum(x for x, _ in box) / len(box), sum(y for _, y in box) / len(box))
    ends = []
    for d in re.findall(r'class="edge">.*?<path fill="none"[^>]* d="([^"]+)"', svg, re.S):
        points = [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", d)]
        x, y = min(points[0], points[-1], key=lambda p: (p[0] - cx) ** 2 + (p[1] - cy) ** 2)
        ends.append(round(y))
    return ends


def test_a_40_system_landscape_lands_each_edge_on_its_own_port_of_the_hub() -> None:
    """Past COLUMN systems a side: one node per system and side, the hub a bar, and the edges end side
    by side along it (not in one point), objects in tooltips; dot, well within the timeout."""
    g = build_graph(L.generated(40))
    drawn = diagrams.render(diagrams.landscape(g, lambda nid: None))
    assert drawn.engine == "dot" and drawn.error == "" and drawn.seconds < 10
    sides = {(f["source"], "source") for _, f in nodes(g, "flow")} | {(f["consumer"], "consumer") for _, f in nodes(g, "flow")}
    assert drawn.svg.count('class="node"') == 1 + len(sides)
    ends = _hub_ends(drawn.svg)
    tall = [float(y) for y in re.findall(r"<title>n[1-9]\d*</title>.*?points=\"[^\"]*?,(-?[\d.]+)", drawn.svg, re.S)]
    assert len(ends) >= len(sides)
    assert max(ends) - min(ends) >= 0.6 * (max(tall) - min(tall))  # spread along the hub, not into one point
    assert "<text" not in re.sub(r'<g id="node.*?</g>', "", drawn.svg, flags=re.S)  # no edge labels


def test_a_200_system_landscape_draws_one_node_per_owning_team() -> None:
    """Past OWNERS_ABOVE systems each node is a team (its page the owner's, its systems in the tooltip),
    still on the hub's bar; past SFDP_ABOVE teams a side, sfdp."""
    g = build_graph(L.generated(200))
    pages = {f"owner:team:t{i}": f"owners.html#t{i}" for i in range(50)}
    drawn = diagrams.render(diagrams.landscape(g, pages.get))
    assert drawn.engine == "dot" and drawn.error == "" and drawn.seconds < 10
    assert drawn.svg.count('class="node"') == 1 + 2 * 50 and ">team:t7</text>" in drawn.svg
    assert 'xlink:title="sys0007, sys0057, sys0107, sys0157"' in drawn.svg and 'href="owners.html#t7"' in drawn.svg
    crowd = diagrams.render(diagrams.landscape(build_graph(L.generated(diagrams.SFDP_ABOVE + 10, teams=1000)),
                                               lambda nid: None))
    assert crowd.engine == "sfdp" and crowd.error == "" and crowd.svg.count('class="node"') == diagrams.SFDP_ABOVE + 11
    small = diagrams.render(diagrams.landscape(build_graph(L.good()), lambda nid: None))
    assert small.engine == "dot" and "customer, deal" in small.svg and small.svg.count("class=\"node\"") == 1 + 4 + 3  # hub, 4 senders, 3 receivers


def test_layout_past_timeout_gives_a_placeholder_not_a_hang() -> None:
    """A layout that exceeds its timeout ends, retried with sfdp, then an honest placeholder."""
    g = build_graph(L.generated(200))
    drawn = diagrams.render(diagrams.landscape(g, lambda nid: None), timeout=0.001)
    assert "exceeded" in drawn.error and drawn.svg.startswith("<svg") and drawn.seconds < 5


def test_large_site_stays_readable_and_linked(tmp_path: Path) -> None:
    """Past MATRIX_UP_TO systems: sparse ownership rows, a landscape of teams, and no broken link."""
    n = diagrams.OWNERS_ABOVE + 5
    result = build(build_graph(L.generated(n, live_every=4, teams=10)), tmp_path / "big")
    assert result.layout_errors == [] and broken_links(tmp_path / "big") == []
    ownership = (tmp_path / "big" / "ownership.html").read_text()
    assert "one row per object" in ownership and ownership.count("<tr>") == 2 * n + 1
    assert (tmp_path / "big" / "index.html").read_text().count('class="node"') == 1 + 2 * 10


@pytest.mark.parametrize("path,from_page", [("systems/a.html", "index.html"), ("index.html", "systems/a.html"),
                                            ("assets/crm/x.html#c", "assets/hub/y.html"),
                                            ("triggers.html#s", "assets/a/b/c.html"), ("assets/x.html", "assets/x/y.html")])
def test_relative_links_match_posixpath(path: str, from_page: str) -> None:
    """The fast relative-link function agrees with posixpath.relpath."""
    import posixpath

    target, _, anchor = path.partition("#")
    expected = posixpath.relpath(target, posixpath.dirname(from_page) or ".") + (f"#{anchor}" if anchor else "")
    assert relative(path, from_page) == expected
