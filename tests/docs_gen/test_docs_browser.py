"""The built site in headless Chromium: every internal link loads, diagrams render, search works."""

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cdp import Chromium
from docs_fixtures import good_site, example_site  # noqa: F401 (pytest fixtures)

from docs_gen.publish import serve
from docs_gen.site import BuildResult

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


def crawl(browser: Chromium, base: str, shots: Path, prefix: str) -> dict[str, int]:
    """Follow every internal link from index.html; assert each loads, anchors exist, SVGs render."""
    todo, seen, shot, anchors, diagrams = [base + "index.html"], set(), set(), [], 0
    ids: dict[str, set[str]] = {}
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        assert browser.goto(url) == 200, url
        ids[url] = set(browser.js(IDS))
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


def test_example_site_in_chromium(browser: Chromium, example_site: BuildResult, screenshots: Path) -> None:
    """The same for the example business's site."""
    for base in served(example_site.out):
        seen = crawl(browser, base, screenshots, "example")
    assert seen["pages"] == example_site.pages and seen["diagrams"] == example_site.diagrams


def test_search_works_from_file_url(browser: Chromium, good_site: BuildResult) -> None:
    """From file://, typing in the search box lists matching pages whose links open."""
    assert browser.goto((good_site.out / "systems" / "crm.html").as_uri()) == 200
    hits = browser.js("""(() => { const box = document.getElementById('search');
      box.value = 'stripe'; box.dispatchEvent(new Event('input'));
      return Array.from(document.querySelectorAll('#search-results a')).map(a => [a.textContent, a.href]); })()""")
    assert ["System billing", (good_site.out / "systems" / "billing.html").as_uri()] in hits
    assert browser.goto(hits[0][1]) == 200 and browser.js("document.title") == hits[0][0]
