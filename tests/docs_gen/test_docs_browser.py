"""The built site in headless Chromium: every internal link loads, diagrams render, search works."""

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import docs_landscapes as L
import pytest
from cdp import Chromium
from docs_fixtures import good_site, example_site  # noqa: F401 (pytest fixtures)

from docs_gen.graph import build_graph
from docs_gen.publish import serve
from docs_gen.site import BuildResult, build

LINKS = """Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href') || a.getAttribute('xlink:href'))
  .filter(Boolean).map(h => new URL(h, document.baseURI).href)"""
IDS = "Array.from(document.querySelectorAll('[id]')).map(e => e.id)"
SVGS = """Array.from(document.querySelectorAll('figure.diagram svg')).map(s => {
  const b = s.getBBox(); return [b.width, b.height, s.querySelectorAll('g.node').length]; })"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    """Debian's chromium, headless (installed by `make chromium`)."""
    assert shutil.which("chromium"), "chromium is missing: `make chromium` installs Debian's package"
    chromium = Chromium()
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $DOCS_SCREENSHOTS, or a temporary folder."""
    folder = Path(os.environ.get("DOCS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def served(site: Path) -> Iterator[str]:
    """The site on a real HTTP server on loopback (so a missing page is a real 404)."""
    server = serve(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


WIDE, PHONE = (1600, 1000), (390, 844)
FITS = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def viewport(browser: Chromium, size: tuple[int, int]) -> None:
    """A desktop window, or a phone's (mobile) viewport."""
    browser.send("Emulation.setDeviceMetricsOverride", session=True, width=size[0], height=size[1],
                 deviceScaleFactor=1, mobile=size[0] < 600)


def crawl(browser: Chromium, base: str, shots: Path, prefix: str) -> dict[str, int]:
    """Follow every internal link from index.html; assert each loads, anchors exist, SVGs render,
    and no page scrolls sideways (tables and diagrams scroll or zoom inside themselves)."""
    todo, seen, shot, anchors, diagrams = [base + "index.html"], set(), set(), [], 0
    ids: dict[str, set[str]] = {}
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        assert browser.goto(url) == 200, url
        ids[url] = set(browser.js(IDS))
        assert browser.js(FITS), f"{url} scrolls sideways"
        for width, height, boxes in browser.js(SVGS):
            assert width > 50 and height > 20 and boxes > 0, url
            diagrams += 1
        for link in browser.js(LINKS):
            page, _, anchor = link.partition("#")
            if page.startswith(base):
                todo.append(page)
                if anchor:
                    anchors.append((url, page, anchor))
        kind = url[len(base):].split("/")[0]
        if kind in ("index.html", "lint.html", "ownership.html", "systems", "flows", "objects") and kind not in shot:
            shot.add(kind)  # one screenshot per kind of page
            browser.screenshot(str(shots / f"{prefix}-{url[len(base):].replace('/', '_')}.png"))
    missing = [(frm, page, a) for frm, page, a in anchors if a not in ids[page]]
    assert missing == []
    return {"pages": len(seen), "diagrams": diagrams, "anchors": len(anchors)}


def test_fixture_site_in_chromium(browser: Chromium, good_site: BuildResult, screenshots: Path) -> None:
    """Every page of the fixture site is reached by links and loads; every diagram renders."""
    for base in served(good_site.out):
        seen = crawl(browser, base, screenshots, "fixture")
    assert seen["pages"] == good_site.pages
    assert seen["diagrams"] == good_site.diagrams
    shots = list(screenshots.glob("fixture-*.png"))
    assert len(shots) == 6 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in shots)


@pytest.mark.parametrize("size", [WIDE, PHONE], ids=["1600x1000", "390x844"])
def test_example_site_in_chromium(browser: Chromium, example_site: BuildResult, screenshots: Path,
                                  size: tuple[int, int]) -> None:
    """The same for the example business's site, on a desktop and on a phone."""
    viewport(browser, size)
    try:
        for base in served(example_site.out):
            seen = crawl(browser, base, screenshots, f"example-{size[0]}")
    finally:
        viewport(browser, WIDE)
    assert seen["pages"] == example_site.pages and seen["diagrams"] == example_site.diagrams


SEARCH = """(q => { const box = document.getElementById('search'); box.focus(); box.value = q; box.dispatchEvent(new Event('input'));
  return Array.from(document.querySelectorAll('#search-results a')).map(a => [a.textContent, a.getAttribute('href')]); })"""


def test_search_finds_systems_objects_flows_owners_and_fields(browser: Chromium, example_site: BuildResult) -> None:
    """Typing a system, an object, a flow, an owner or a field lists the page that has it first or
    among the first; Enter opens the first hit."""
    for base in served(example_site.out):
        assert browser.goto(base + "flows/order_shop_to_fulfilment.html") == 200
        wanted = {"billing": "System billing", "stock_level": "Object stock_level",
                  "customer_crm_to_billing": "Flow customer_crm_to_billing", "team:finance": "Owner team:finance",
                  "email": "Object customer", "stripe": "System billing"}
        for query, title in wanted.items():
            hits = [t for t, _ in browser.js(f"({SEARCH})({query!r})")]
            assert title in hits[:5], (query, hits[:8])
        browser.js(f"({SEARCH})('customer_crm_to_marketing')")
        browser.events.clear()
        browser.send("Input.dispatchKeyEvent", session=True, type="keyDown", key="Enter", code="Enter",
                     windowsVirtualKeyCode=13)
        browser.wait_for("Page.loadEventFired")  # bounded by the client's reply timeout
        assert browser.js("location.pathname").endswith("/flows/customer_crm_to_marketing.html")


DIAGRAM = """(() => { const f = document.querySelector('figure.diagram'), svg = f.querySelector('svg');
  return {box: svg.getAttribute('viewBox').split(' ').map(Number), focused: f.classList.contains('focused'),
          near: f.querySelectorAll('g.node.near').length, nodes: f.querySelectorAll('g.node').length}; })()"""


CLEAR = """(() => { const f = document.querySelector('figure.diagram'), c = f.querySelector('.controls').getBoundingClientRect();
  const boxes = Array.from(f.querySelectorAll('g.node')).map(g => g.getBoundingClientRect());
  const hit = (a, b) => a.left < b.right && a.right > b.left && a.top < b.bottom && a.bottom > b.top;
  const texts = Array.from(f.querySelectorAll('g.node text')).map(t => t.getBoundingClientRect().height);
  return {under_controls: boxes.filter(b => hit(b, c)).length,
          overlapping: boxes.filter((a, i) => boxes.some((b, j) => j > i && hit(a, b))).length,
          smallest_text: Math.min(...texts), nodes: boxes.length}; })()"""


def _press(browser: Chromium, action: str) -> dict:
    browser.js(f"document.querySelector('figure.diagram [data-action=\"{action}\"]').click()")
    return browser.js(DIAGRAM)


def test_diagram_zoom_pan_reset_and_focus(browser: Chromium, example_site: BuildResult) -> None:
    """On the landscape: + and − zoom, a drag pans, Reset restores the whole diagram, and Focus on a
    system dims all but it, the hub and their edges, framing them; the phone menu opens the sidebar."""
    for base in served(example_site.out):
        assert browser.goto(base + "index.html") == 200
        home = browser.js(DIAGRAM)
        assert browser.js(CLEAR)["under_controls"] == 0  # the zoom bar sits above the diagram
        zoomed = _press(browser, "zoom in")
        assert zoomed["box"][2] < home["box"][2] and zoomed["box"][3] < home["box"][3]
        assert _press(browser, "zoom out")["box"][2] == pytest.approx(home["box"][2])
        x, y = browser.js("(() => { const r = document.querySelector('figure.diagram svg').getBoundingClientRect(); return [r.x + r.width / 2, r.y + 40]; })()")
        for kind, at in (("mousePressed", x), ("mouseMoved", x + 120), ("mouseReleased", x + 120)):
            browser.send("Input.dispatchMouseEvent", session=True, type=kind, x=at, y=y, button="left", buttons=1, clickCount=1)
        panned = browser.js(DIAGRAM)
        assert panned["box"][0] < home["box"][0] and panned["box"][2] == pytest.approx(home["box"][2])
        assert _press(browser, "whole diagram")["box"] == home["box"]
        options = browser.js("Array.from(document.querySelectorAll('figure.diagram select option')).map(o => [o.textContent, o.value])")
        crm = next(value for label, value in options if label == "crm")
        browser.js(f"(() => {{ const s = document.querySelector('figure.diagram select'); s.value = {crm!r}; s.dispatchEvent(new Event('change')); }})()")
        focused = browser.js(DIAGRAM)
        assert focused["focused"] and 2 <= focused["near"] < focused["nodes"] and focused["box"] != home["box"]
        near = browser.js("Array.from(document.querySelectorAll('figure.diagram g.node.near text')).map(t => t.textContent)")
        assert "crm" in near and "hub" in near
        assert _press(browser, "whole diagram") == home
        viewport(browser, PHONE)
        try:
            assert browser.goto(base + "index.html") == 200
            assert browser.js("getComputedStyle(document.getElementById('sidebar')).display") == "none"
            browser.js("document.getElementById('menu').click()")
            assert browser.js("getComputedStyle(document.getElementById('sidebar')).display") == "block"
            assert "customer_crm_to_billing" in browser.js("document.getElementById('sidebar').innerText")
        finally:
            viewport(browser, WIDE)


@pytest.fixture(scope="module", params=[40, 200], ids=["40-systems", "200-systems"])
def large_site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The site of a generated landscape of 40 systems (one node per system) or 200 (one per team)."""
    n = request.param
    return build(build_graph(L.generated(n), f"docs_landscapes:generated({n})"), tmp_path_factory.mktemp(f"docs{n}"))


@pytest.mark.parametrize("size", [WIDE, PHONE], ids=["1600x1000", "390x844"])
def test_large_landscapes_read_at_a_glance(browser: Chromium, large_site: BuildResult, size: tuple[int, int]) -> None:
    """40 and 200 systems: the landing page does not scroll sideways; on a desktop the landscape's
    boxes do not overlap, their labels are at least 6 px tall unzoomed, and the zoom bar covers
    none; zoom and focus work on both widths (focus frames a node with the hub)."""
    viewport(browser, size)
    try:
        for base in served(large_site.out):
            assert browser.goto(base + "index.html") == 200
            assert browser.js(FITS), "the landing page scrolls sideways"
            seen = browser.js(CLEAR)
            assert seen["nodes"] > 40 and seen["under_controls"] == 0 and seen["overlapping"] == 0, seen
            if size == WIDE:
                assert seen["smallest_text"] >= 6, seen
            home = browser.js(DIAGRAM)
            assert _press(browser, "zoom in")["box"][2] < home["box"][2]
            options = browser.js("Array.from(document.querySelectorAll('figure.diagram select option')).map(o => o.value)")
            browser.js(f"(() => {{ const s = document.querySelector('figure.diagram select'); s.value = {options[-1]!r}; s.dispatchEvent(new Event('change')); }})()")
            near = browser.js("Array.from(document.querySelectorAll('figure.diagram g.node.near text')).map(t => t.textContent)")
            assert "hub" in near and len(near) >= 2, near
    finally:
        viewport(browser, WIDE)


def test_search_works_from_file_url(browser: Chromium, good_site: BuildResult) -> None:
    """From file://, typing in the search box lists matching pages whose links open."""
    assert browser.goto((good_site.out / "systems" / "crm.html").as_uri()) == 200
    hits = browser.js("""(() => { const box = document.getElementById('search');
      box.value = 'stripe'; box.dispatchEvent(new Event('input'));
      return Array.from(document.querySelectorAll('#search-results a')).map(a => [a.textContent, a.href]); })()""")
    assert ["System billing", (good_site.out / "systems" / "billing.html").as_uri()] in hits
    assert browser.goto(hits[0][1]) == 200 and browser.js("document.title") == hits[0][0]
