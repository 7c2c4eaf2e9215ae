"""Connectors from any package: one registered under the entry point group by a package outside
the framework (tests/connector_package), and one named by a dotted path, each run a real flow."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from integration_project import build_definitions, load_landscape
from integration_project.connectors import CONNECTORS, ENTRY_POINT_GROUP, flow_reason, lookup, registered
from integration_project.model import Api, Binding, DataObject, Landscape, System
from tests.connector_package.ledger import Ledger
from tests.runtime.memory import Customer


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[None]:
    """The package installed as pip would: a dist-info whose entry_points.txt registers `ledger`."""
    dist = tmp_path / "site" / "ledger_connector-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ledger-connector\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nledger = tests.connector_package.ledger:Ledger\n")
    sys.path.insert(0, str(tmp_path / "site"))
    registered.cache_clear()
    yield
    sys.path.remove(str(tmp_path / "site"))
    registered.cache_clear()


def ledger_system(name: str, connector: str, path: Path, binding: Binding) -> System:
    return System(name=name, title=name.title(), vendor="Ledger", kind="python", owners=[f"team:{name}"],
                  description=f"The {name} ledger.", bindings=[binding],
                  api=Api(connector=connector, base_url=f"file://{path}", version="1"))


def run(landscape: Landscape, flow: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.sqlite'}")
    result = build_definitions(landscape).resolve_job_def(flow).execute_in_process(
        instance=dg.DagsterInstance.ephemeral())
    assert result.success


@pytest.mark.parametrize("consumer_connector", ["ledger", "tests.connector_package.ledger:Ledger"])
def test_a_connector_from_another_package_runs_a_flow(consumer_connector, installed, tmp_path, monkeypatch):
    assert "ledger" not in CONNECTORS  # not the framework's: the package's entry point, or the dotted path
    assert lookup("ledger") is Ledger and lookup("tests.connector_package.ledger:Ledger") is Ledger
    source, target = tmp_path / "source.json", tmp_path / "target.json"
    source.write_text(json.dumps({"entries": [{"id": f"p{i}", "mail": f"p{i}@example.com", "seq": i}
                                              for i in range(1, 4)]}))
    customer = DataObject(name="customer", model=Customer, owner="team:sales", identity_key="id",
                          description="People who buy.")
    landscape = Landscape(systems={
        "people": ledger_system("people", "ledger", source, Binding(
            object="customer", role="source", purpose="People are kept here.", resource="entries",
            mapping={"id": "id", "email": "mail"})),
        "books": ledger_system("books", consumer_connector, target, Binding(
            object="customer", role="consumer", purpose="The books need customers.", resource="entries",
            cron="0 * * * *", mapping={"id": "ours", "email": "email"})),
    }, objects={"customer": customer}).validate()
    run(landscape, "customer_people_to_books", tmp_path, monkeypatch)
    held = json.loads(target.read_text())["entries"]
    assert sorted((r["ours"], r["email"]) for r in held) == [(f"p{i}", f"p{i}@example.com") for i in range(1, 4)]
    run(landscape, "customer_people_to_books", tmp_path, monkeypatch)  # a rerun sends nothing new
    assert len(json.loads(target.read_text())["entries"]) == 3


def test_an_unregistered_name_says_how_to_register_one():
    assert "entry point group integration_project.connectors" in str(lookup("ledger"))


@pytest.mark.parametrize(("system", "action", "reason"), [
    ("projects", "delete", "projects: connector 'rest' cannot delete 'clients' (on_delete)"),
    ("billing", "archive", "billing: connector 'stripe' cannot archive 'customers' (on_delete)"),
    ("billing", "delete", None), ("marketing", "archive", None)])
def test_a_flow_whose_consumer_cannot_carry_out_its_on_delete_is_planned_with_the_reason(system, action, reason):
    landscape = load_landscape("definitions")
    declared = landscape.systems[system]
    bindings = [b.model_copy(update={"on_delete": action}) if b.object == "customer" else b for b in declared.bindings]
    changed = Landscape(systems={**landscape.systems, system: declared.model_copy(update={"bindings": bindings})},
                        objects=landscape.objects).validate()
    [flow] = [f for f in changed.flows() if f.name == f"customer_crm_to_{system}"]
    assert flow_reason(flow) == reason
