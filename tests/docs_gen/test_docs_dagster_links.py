"""Every job, schedule and sensor in the docs links to its page in a real dagster-webserver, and it loads."""

import re
import shutil
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from cdp import Chromium
from click.testing import CliRunner
from docs_fixtures import example_graph, webserver  # noqa: F401 (pytest fixtures)

from docs_gen.cli import DAGSTER_URL_ENV, docs
from docs_gen.graph import nodes
from tests.servers import graphql

ROOT = Path(__file__).resolve().parents[2]
KINDS = {"jobs": "job", "schedules": "schedule", "sensors": "sensor"}
# what the UI's GraphQL answers for each kind, given a selector, when the definition exists
EXISTS = {
    "job": ('pipelineOrError(params: {repositoryLocationName: "%s", repositoryName: "__repository__", '
            'pipelineName: "%s"})', "Pipeline"),
    "schedule": ('scheduleOrError(scheduleSelector: {repositoryLocationName: "%s", '
                 'repositoryName: "__repository__", scheduleName: "%s"})', "Schedule"),
    "sensor": ('sensorOrError(sensorSelector: {repositoryLocationName: "%s", repositoryName: "__repository__", '
               'sensorName: "%s"})', "Sensor"),
}

pytestmark = pytest.mark.server






def _exists(url: str, kind: str, location: str, name: str) -> bool:
    """Whether the webserver knows this job, schedule or sensor in this code location."""
    field, typename = EXISTS[kind]
    answer = graphql(url, "{ found: %s { __typename } }" % (field % (location, name)))
    return answer["data"]["found"]["__typename"] == typename


def _shows(browser: Chromium, url: str, kind: str, name: str, timeout: float = 90) -> bool:
    """Whether the Dagster UI renders the page of this job/schedule/sensor (its "<Kind> in" header)."""
    browser.goto(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = browser.js("document.body.innerText") or ""
        if "Could not find" in text or "not found" in text:
            return False
        if f"{kind.title()} in" in text and name in text:
            return True
        time.sleep(0.5)
    return False


def test_jobs_schedules_and_sensors_link_to_their_dagster_pages(webserver: str, example_graph, tmp_path) -> None:
    """The URL comes from INTEGRATIONS_DAGSTER_URL; every link names a definition the UI has, and pages render."""
    out = tmp_path / "site"
    result = CliRunner().invoke(docs, ["build", "--out", str(out), "--workspace", str(ROOT / "workspace.yaml")],
                                env={DAGSTER_URL_ENV: webserver}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    pattern = re.compile(re.escape(webserver) + r'/locations/([^/"]+)/(jobs|schedules|sensors)/([^/"?#]+)"')
    links = {(KINDS[kind], unquote(location), unquote(name))
             for page in out.rglob("*.html") for location, kind, name in pattern.findall(page.read_text())}
    wanted = {(kind, "definitions", a["name"]) for kind in KINDS.values() for _, a in nodes(example_graph, kind)}
    assert links == wanted and len(wanted) > 30  # every one linked, to workspace.yaml's location name

    deadline = time.monotonic() + 60
    while not _exists(webserver, *sorted(links)[0]) and time.monotonic() < deadline:
        time.sleep(0.5)  # the code location loads after the server answers
    assert [link for link in sorted(links) if not _exists(webserver, *link)] == []
    assert not _exists(webserver, "job", "definitions", "no_such_job")  # the check can fail

    assert shutil.which("chromium"), "chromium is missing: `make chromium` installs Debian's package"
    browser = Chromium(timeout=60)
    try:
        for kind in KINDS.values():
            _, location, name = next(link for link in sorted(links) if link[0] == kind)
            page = f"{webserver}/locations/{location}/{kind}s/{name}"
            assert f'href="{page}"' in (out / "triggers.html").read_text()
            assert _shows(browser, page, kind, name), page
        assert not _shows(browser, f"{webserver}/locations/definitions/jobs/no_such_job", "job", "no_such_job")
    finally:
        browser.close()
