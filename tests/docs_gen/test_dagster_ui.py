"""The Dagster UI's global lineage in headless Chromium: it loads, and its groups read
sources -> hub -> consumers from left to right, each group once, with no loop."""

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cdp import Chromium

from docs_gen.load import load
from integration_project import load_landscape
from integration_project.orchestration.instance import INSTANCE_YAML
from tests.servers import dagster_webserver

ROOT = Path(__file__).resolve().parents[2]
GROUPS = """Array.from(document.querySelectorAll('foreignObject.group')).map(f => [
  f.querySelector('[data-tooltip]').getAttribute('data-tooltip'), Number(f.getAttribute('x')), Number(f.getAttribute('width'))])"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """dagster-webserver over workspace.yaml, its first-visit dialog off."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(INSTANCE_YAML + "nux:\n  enabled: false\n")
    with dagster_webserver(home) as url:
        yield url


@pytest.mark.server
def test_global_lineage_reads_sources_hub_consumers(ui: str) -> None:
    """Collapsed, the lineage shows one box per group of the Definitions: every `<system>_source`
    left of `hub`, every consumer group right of it (so no box has arrows both ways)."""
    assert shutil.which("chromium"), "chromium is missing: `make chromium` installs Debian's package"
    defs, _ = load(workspace=ROOT / "workspace.yaml")
    designed = {spec.group_name for spec in defs.resolve_all_asset_specs()}
    browser = Chromium(timeout=120)
    try:
        browser.send("Emulation.setDeviceMetricsOverride", session=True, width=1600, height=1000,
                     deviceScaleFactor=1, mobile=False)
        assert browser.goto(f"{ui}/asset-groups") == 200
        deadline, shown = time.monotonic() + 180, []
        while len(shown) < len(designed):  # the code location loads after the page
            assert time.monotonic() < deadline, f"the lineage showed {shown}"
            time.sleep(0.5)
            shown = browser.js(GROUPS)
    finally:
        browser.close()
    names = [name for name, _, _ in shown]
    assert sorted(names) == sorted(designed) and len(names) == len(set(names))
    x = {name: (left, left + width) for name, left, width in shown}
    sources = [n for n in names if n.endswith("_source")]
    consumers = [n for n in names if n != "hub" and n not in sources]
    systems = len(load_landscape("definitions").systems)  # in the example every system is both
    assert len(sources) == systems and len(consumers) == systems
    assert max(x[n][1] for n in sources) < x["hub"][0] and x["hub"][1] < min(x[n][0] for n in consumers)
