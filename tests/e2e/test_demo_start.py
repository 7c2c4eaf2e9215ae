"""The demo as `integrations up` seeds it starts green: every flow's first run passes its validity
gate, each flow judged on the records it takes in (two consumers of the ERP's nightly file both see
the file, whichever run read it)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from integration_project.launcher import up
from integration_project.model import load_landscape
from integration_sandbox import Sandbox
from integration_sandbox.landscape import sandbox_env
from integration_sandbox.testing import free_port_sandbox

SIZE = next(p.default for p in up.params if p.name == "size")  # what `up` seeds
SEED = inspect.signature(Sandbox).parameters["seed"].default


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Every sandbox system seeded as `integrations up` seeds it, on free ports."""
    with free_port_sandbox(tmp_path_factory.mktemp("demo"), seed=SEED, size=SIZE) as sb:
        yield sb


def test_every_flow_of_a_fresh_demo_passes_its_validity_gate(demo: Sandbox, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    landscape = load_landscape("definitions")
    for key, value in {**sandbox_env(landscape, demo),
                       "INTEGRATIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite'}"}.items():
        monkeypatch.setenv(key, value)
    from definitions.definitions import defs

    legs = {f.name for f in landscape.flows()} | {leg.name for leg in landscape.ingests().values()}
    jobs = sorted(legs & {j.name for j in defs.get_repository_def().get_all_jobs()})
    verdicts: dict[str, dict] = {}
    for name in jobs:  # as the sensors and schedules would start them, one after another
        result = defs.resolve_job_def(name).execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                                                raise_on_error=False)
        (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "valid_share"]
        verdicts[name] = {"passed": check.passed, **{k: v.value for k, v in check.metadata.items()}}
        assert result.success, (name, verdicts[name])
    assert all(v["passed"] for v in verdicts.values()), verdicts
    assert [name for name, v in verdicts.items() if v["judged_for"] != name] == []
    products = [v for name, v in verdicts.items() if name.startswith("product_")]
    assert len(products) == 2 and products[0]["read"] == products[1]["read"] > 0  # one file, judged twice
    assert products[0]["rejected"] == products[1]["rejected"] > 0  # the catalogue's known problems
