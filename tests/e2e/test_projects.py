"""The ninth system, declared in YAML only (definitions/systems/projects/defs.yaml): a project tool
with its own API style (X-Api-Key, bare arrays paged by Link headers, 409 on a duplicate client).
It is the source of truth of projects and a consumer of the CRM's customers; both legs run for
real through Dagster, quiet and under injected faults, with 0 lost and 0 duplicated."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml

from integration_sandbox.landscape import sandbox_env
from integration_project.model import load_landscape
from integration_project.runtime import Store
from integration_project.runtime.store import dlq, hub_records
from integration_sandbox import Faults, Sandbox
from integration_sandbox.testing import free_port_sandbox
from tests.seeds import crm_parked

ROOT = Path(__file__).resolve().parents[2]
DECLARATION = ROOT / "definitions" / "systems" / "projects" / "defs.yaml"
LEGS = ["project_projects_to_hub", "customer_crm_to_projects"]
# 10% of requests fail, every kind present: 5xx, 429, timeouts, resets, malformed bodies
NOISE = {"error_rate": 0.04, "rate_limit_rate": 0.02, "retry_after_seconds": 1, "timeout_rate": 0.01,
         "timeout_seconds": 1, "reset_rate": 0.02, "malformed_rate": 0.01, "seed": 23}


def test_the_declaration_is_yaml_with_no_python():
    assert not list(DECLARATION.parent.glob("*.py"))
    declared = yaml.safe_load(DECLARATION.read_text())
    assert declared["type"] == "integration_project.SystemComponent"
    assert declared["attributes"]["api"]["connector"] == "rest"


@pytest.fixture(scope="module", params=["quiet", "faults"])
def weather(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def sandbox(weather: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    faults = {s: Faults(**NOISE) for s in ("crm", "projects")} if weather == "faults" else None
    with free_port_sandbox(tmp_path_factory.mktemp("projects"), ["crm", "projects"], seed=5, size=80,
                           faults=faults) as sb:
        yield sb


@pytest.fixture
def hub(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    for key, value in {**sandbox_env(load_landscape("definitions"), sandbox), "INTEGRATIONS_DATABASE_URL": url}.items():
        monkeypatch.setenv(key, value)
    return Store(url)


def run(name: str) -> int:
    """Run a leg's job; like a scheduler, again when its retries ran out (at most 5 times). The
    calls its connectors retried after a transient failure."""
    from definitions.definitions import defs

    retried = 0
    for _ in range(5):
        result = defs.resolve_job_def(name).execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                                               raise_on_error=False)
        retried += sum(m.metadata["retries"].value for e in result.get_asset_materialization_events()
                       if "retries" in (m := e.event_specific_data.materialization).metadata)
        if result.success:
            return retried
    raise AssertionError(f"{name} failed five times")


def clients(sandbox: Sandbox) -> list[dict]:
    """Every client the project tool holds, read past the faults (a plain reader retries)."""
    out: list[dict] = []
    url: str | None = "/api/v2/clients?per_page=50"
    with httpx.Client(base_url=sandbox.url("projects"), headers={"X-Api-Key": sandbox.token("projects")}) as http:
        while url:
            response = http.get(url)
            if response.status_code != 200:
                continue
            try:
                out += response.json()
            except ValueError:
                continue
            url = response.links.get("next", {}).get("url")
    return out


def test_both_legs_run_with_nothing_lost_and_nothing_duplicated(weather: str, sandbox: Sandbox, hub: Store):
    projects = sandbox.seed_report("projects")
    crm = sandbox.seed_report("crm")
    retried = sum(run(leg) for _ in range(2) for leg in LEGS)  # a second pass sends nothing twice
    assert (retried > 0) == (weather == "faults")  # the faults were there, and were ridden out
    # projects: every valid one in the hub, every invalid one parked with its reason
    invalid = {i for ids in projects["problems"].values() for i in ids}
    held = {r["record_id"] for r in hub.rows(hub_records, object="project")}
    assert held == {str(i) for i in range(1, 1 + projects["counts"]["projects"])} - invalid
    parked = {r["record_id"]: r["reason"] for r in hub.rows(dlq, flow="project_projects_to_hub")}
    assert set(parked) == invalid and all(parked.values())
    # customers: one client per valid CRM contact, by our id (its reference), none twice
    expected = {str(i) for i in range(101, 101 + crm["counts"]["contacts"])} - crm_parked(crm)
    references = Counter(c["reference"] for c in clients(sandbox))
    assert set(references) == expected  # 0 lost
    assert max(references.values()) == 1  # 0 duplicated
