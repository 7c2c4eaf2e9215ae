"""Screenshots of what on-call sees, for README: the Dagster UI's global lineage (collapsed and
expanded) and an asset page, the docs' landing page, a flow's runbook and the 40- and 200-system
landscapes.

    .venv/bin/python benchmarks/screenshots.py [--out docs/screenshots]      (make screenshots)

Starts a dagster-webserver over workspace.yaml with a throwaway DAGSTER_HOME and builds the docs of
the example and of generated 40- and 200-system landscapes, then drives Debian's headless chromium at
1600x1000 (and 390x844 for the phone view of a runbook). Every wait is on a condition, bounded.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "docs_gen")]

from cdp import Chromium  # noqa: E402 (the tests' CDP client)

from tests.servers import dagster_webserver  # noqa: E402

WIDE, PHONE = (1600, 1000), (390, 844)


def viewport(browser: Chromium, size: tuple[int, int]) -> None:
    """Emulate a window of this size (a phone is a mobile viewport)."""
    browser.send("Emulation.setDeviceMetricsOverride", session=True, width=size[0], height=size[1],
                 deviceScaleFactor=1, mobile=size[0] < 600)


def until(browser: Chromium, expression: str, timeout: float = 120) -> object:
    """Wait until a JavaScript expression is truthy in the page; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.js(expression)
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"the page never satisfied {expression!r} within {timeout:.0f} s")


def save(browser: Chromium, path: Path) -> Path:
    """A PNG of the viewport."""
    data = browser.send("Page.captureScreenshot", session=True, format="png")["data"]
    path.write_bytes(base64.b64decode(data))
    return path


def settle(browser: Chromium, seconds: float = 1.0) -> None:
    """Wait until the graph stops moving: two equal snapshots of its node positions in a row."""
    probe = "Array.from(document.querySelectorAll('foreignObject')).map(f => f.getAttribute('x') + ',' + f.getAttribute('y')).join(';')"
    last, deadline = None, time.monotonic() + 30
    while time.monotonic() < deadline:
        now = browser.js(probe)
        if now and now == last:
            return
        last = now
        time.sleep(seconds)


def mouse(browser: Chromium, x: float, y: float, button: str = "left") -> None:
    """A real click at a point of the viewport (React menus ignore element.click())."""
    for kind in ("mousePressed", "mouseReleased"):
        browser.send("Input.dispatchMouseEvent", session=True, type=kind, x=x, y=y, button=button, clickCount=1)


def click_text(browser: Chromium, selector: str, text: str) -> None:
    """Click the centre of the first element matching selector whose text starts with `text`."""
    x, y = browser.js(f"""(() => {{ const e = Array.from(document.querySelectorAll({selector!r})).filter(e =>
      e.innerText.trim().startsWith({text!r})).pop(); const r = e.getBoundingClientRect();
      return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
    mouse(browser, x, y)


def lineage(browser: Chromium, url: str) -> None:
    """Open the global asset lineage; wait for the group boxes and their statuses."""
    browser.goto(f"{url}/asset-groups")
    until(browser, "!!document.querySelector('foreignObject.group') && !document.body.innerText.includes('fetching statuses')")
    settle(browser)


def expand_all(browser: Chromium) -> None:
    """"Expand all groups" from the graph's context menu."""
    width, height = browser.js("[window.innerWidth, window.innerHeight]")
    mouse(browser, width - 200, height - 100, "right")  # on the canvas, clear of boxes and the zoom bar
    until(browser, "Array.from(document.querySelectorAll('li,[role=menuitem]')).some(e => e.innerText.startsWith('Expand all groups'))", 20)
    click_text(browser, "li,[role=menuitem],a", "Expand all groups")
    until(browser, "!document.querySelector('[class*=CollapsedGroupNode_collapsedGroupNodeBox]')", 60)
    settle(browser)


# the canvas at 1600x1000: right of the groups' list (540 px) and below the toolbar (110 px)
ACROSS = """Array.from(document.querySelectorAll('foreignObject')).every(f => { const r = f.getBoundingClientRect();
  return r.left >= 540 && r.right <= innerWidth; })"""
DRAWN = "Array.from(document.querySelectorAll('foreignObject')).some(f => f.textContent.includes('Latest event'))"
TOP = "Math.min(...Array.from(document.querySelectorAll('foreignObject')).map(f => f.getBoundingClientRect().top))"


def wheel(browser: Chromium, delta: float, ctrl: bool) -> None:
    """One turn of the mouse wheel over the canvas: Ctrl zooms, the wheel alone pans."""
    width, height = browser.js("[window.innerWidth, window.innerHeight]")
    browser.send("Input.dispatchMouseEvent", session=True, type="mouseWheel", x=width * 0.65, y=height * 0.55,
                 deltaX=0, deltaY=delta, modifiers=2 if ctrl else 0)
    settle(browser, 0.4)


def zoom_to_width(browser: Chromium) -> None:
    """Zoom out until the graph's columns fit side by side, and further while the UI still draws the
    boxes' names and rows, then pan to its top: sources, hub and consumers readable, the rest below
    (fitting the tall expanded graph whole shrinks its boxes past the zoom at which they have text)."""
    for _ in range(40):  # small steps: stop as soon as it fits, the text as large as it can be
        if browser.js(ACROSS):
            break
        wheel(browser, 50, ctrl=True)
    for _ in range(20):
        wheel(browser, 50, ctrl=True)
        if not browser.js(DRAWN):  # one step too far: back
            wheel(browser, -50, ctrl=True)
            break
    until(browser, "!document.body.innerText.includes('Loading...')", 60)
    for _ in range(40):
        if browser.js(TOP) >= 120:
            break
        wheel(browser, -120, ctrl=False)


def dagster_shots(url: str, out: Path, browser: Chromium) -> list[Path]:
    """The global lineage collapsed and expanded, and one asset's page (its definition metadata)."""
    viewport(browser, WIDE)
    lineage(browser, url)
    shots = [save(browser, out / "dagster-lineage-collapsed.png")]
    expand_all(browser)
    zoom_to_width(browser)
    shots.append(save(browser, out / "dagster-lineage-expanded.png"))
    viewport(browser, WIDE)
    browser.goto(f"{url}/assets/crm/customer")
    until(browser, "document.body.innerText.includes('integration/system')", 180)
    browser.js("""Array.from(document.querySelectorAll('div,span')).filter(e => e.innerText.trim() == 'Metadata')
      .pop().scrollIntoView()""")  # the contract's tables, not the column schema above them
    settle(browser, 0.5)
    shots.append(save(browser, out / "dagster-asset.png"))
    return shots


def serve_site(site: Path) -> tuple[str, object]:
    """The built site on a loopback HTTP server; its base URL and the server (to shut down)."""
    from docs_gen.publish import serve

    server = serve(site, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/", server


def docs_shots(example: Path, large: list[Path], out: Path, browser: Chromium) -> list[Path]:
    """The docs' landing page, a flow's runbook (wide and phone) and the 40- and 200-system landscapes."""
    shots = []
    for site, pages in ((example, [("index.html", "docs-landing.png", WIDE),
                                   ("flows/customer_crm_to_billing.html", "docs-flow.png", WIDE),
                                   ("flows/customer_crm_to_billing.html", "docs-flow-phone.png", PHONE)]),
                        *((site, [("index.html", f"docs-{site.name}.png", WIDE)]) for site in large)):
        base, server = serve_site(site)
        try:
            for page, name, size in pages:
                viewport(browser, size)
                assert browser.goto(base + page) == 200, page
                until(browser, "document.readyState == 'complete'")
                if name.startswith("docs-landscape-"):  # the landscape diagram, in view
                    browser.js("window.scrollTo(0, document.querySelector('figure.diagram').offsetTop - 60)")
                shots.append(save(browser, out / name))
        finally:
            server.shutdown()
            server.server_close()
    return shots


def quiet_home(home: Path) -> Path:
    """A DAGSTER_HOME like the project's, without the UI's first-visit dialog over the graph."""
    from integration_project.orchestration.instance import INSTANCE_YAML

    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML + "nux:\n  enabled: false\n")
    return home


def build_sites(tmp: Path) -> tuple[Path, list[Path]]:
    """The docs of the example business and of generated 40- and 200-system landscapes."""
    import docs_landscapes

    from docs_gen import build, build_graph, load

    defs, origin = load(workspace=ROOT / "workspace.yaml")
    build(build_graph(defs, origin), tmp / "example")
    for n in (40, 200):
        build(build_graph(docs_landscapes.generated(n), f"docs_landscapes:generated({n})"), tmp / f"landscape-{n}")
    return tmp / "example", [tmp / f"landscape-{n}" for n in (40, 200)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        example, large = build_sites(Path(tmp))
        browser = Chromium(timeout=120)
        try:
            with dagster_webserver(quiet_home(Path(tmp) / "dagster_home")) as url:
                shots = dagster_shots(url, args.out, browser)
            shots += docs_shots(example, large, args.out, browser)
        finally:
            browser.close()
    for shot in shots:
        print(shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot)


if __name__ == "__main__":
    main()
