"""No silent `planned`: every flow of a deliberately incomplete landscape says why it does not run,
in `integrations check` and in `integrations lint`; a consumer binding that lacks the mapping its
flow needs is refused at check time with file, declaration and field."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from docs_gen.graph import build_graph
from docs_gen.lint import lint
from integration_project import DeclarationError, build_definitions, load_landscape
from integration_project.cli import main
from tests.model.conftest import OBJECTS

SYSTEMS = '''
from integration_project import Api, Binding, System
from integration_project.model.rest import Resource

def consumer(name, api, resource="customers"):
    return System(name=name, title=name, vendor="V", kind="api", owners=["team:x"], description="A system.",
                  api=api, bindings=[Binding(object="customer", role="consumer", purpose="It needs customers.",
                                             resource=resource, mapping={"id": "ref"}, mode="realtime")])

crm = System(name="crm", title="CRM", vendor="HubSpot", kind="hubspot", owners=["team:sales"],
             description="The CRM.", api=Api(connector="hubspot", base_url="http://127.0.0.1:1", version="v3"),
             bindings=[Binding(object="customer", role="source", purpose="Sales owns customers.",
                               resource="contacts", mapping={"id": "id", "email": "properties.email"})])
erp = System(name="erp", title="ERP", vendor="SQL", kind="postgres", owners=["team:x"], description="The ERP.",
             api=Api(connector="sql", base_url="sqlite://", version="1"),
             bindings=[Binding(object="invoice", role="source", purpose="The ERP issues invoices.",
                               resource="INVOICES", mapping={"id": "ID", "customer_id": "CUST"})])
soap = consumer("soap", Api(connector="soap", base_url="http://127.0.0.1:2", version="1"))
desk = consumer("desk", Api(connector="zendesk", base_url="http://127.0.0.1:3", version="2"), "tickets")
plain = consumer("plain", Api(connector="rest", base_url="http://127.0.0.1:4", version="1",
                              resources={"customers": Resource(path="/customers")}))
vendored = consumer("vendored", Api(connector="no_such_package.vendors:Ticketing",
                                    base_url="http://127.0.0.1:5", version="1"))
offline = consumer("offline", None)
'''

REASONS = {  # leg -> what its reason says
    "customer_crm_to_soap": "no connector 'soap'",
    "customer_crm_to_desk": "connector 'zendesk' cannot load 'tickets'",
    "customer_crm_to_plain": "resource 'customers' is not declared with a write in api.resources",
    "customer_crm_to_vendored": "connector 'no_such_package.vendors:Ticketing' cannot be imported",
    "customer_crm_to_offline": "offline declares no API to load 'customers' through",
    "invoice_erp_to_hub": "cursor column missing: name the change column, INVOICES?cursor=<column>",
}


def _package(root: Path, name: str, systems: str) -> str:
    (root / name / "systems").mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    (root / name / "systems" / "__init__.py").write_text("")
    (root / name / "objects.py").write_text(textwrap.dedent(OBJECTS))
    (root / name / "systems" / "all.py").write_text(systems)
    return name


@pytest.fixture(scope="module")
def incomplete(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A landscape package whose every consumer flow, and one ingest, cannot run."""
    root = tmp_path_factory.mktemp("planned")
    sys.path.insert(0, str(root))
    yield _package(root, "incomplete_landscape", SYSTEMS)
    sys.path.remove(str(root))


@pytest.fixture(scope="module")
def check_warnings(incomplete: str) -> str:
    done = CliRunner().invoke(main, ["check", "--package", incomplete])
    assert done.exit_code == 0, done.output  # planned is a warning, not a failure
    return done.stderr


@pytest.fixture(scope="module")
def lint_findings(incomplete: str) -> list[str]:
    graph = build_graph(build_definitions(load_landscape(incomplete)))
    return [str(f) for f in lint(graph) if f.rule == "planned"]


@pytest.mark.parametrize("leg", sorted(REASONS))
def test_check_says_why_a_leg_is_planned(leg: str, check_warnings: str) -> None:
    assert f"warning: {leg} is planned, not run: " in check_warnings
    line = next(ln for ln in check_warnings.splitlines() if f" {leg} is planned" in ln)
    assert REASONS[leg] in line


@pytest.mark.parametrize("leg", sorted(REASONS))
def test_lint_says_why_a_leg_is_planned(leg: str, lint_findings: list[str]) -> None:
    system, obj = (leg.split("_to_")[1], leg.split("_")[0]) if not leg.endswith("_to_hub") else \
        (leg.split("_")[1], leg.split("_")[0])
    asset = f"asset:{system}/{obj}"
    found = [f for f in lint_findings if f.startswith(f"warning: planned: {asset}: ")]
    assert found and REASONS[leg] in found[0], lint_findings


def test_a_live_flow_gives_no_planned_warning(check_warnings: str) -> None:
    assert check_warnings.count("is planned") == len(REASONS)


README_WAREHOUSE = '''
from integration_project import Api, Binding, System

warehouse = System(
    name="warehouse", title="Data warehouse", vendor="PostgreSQL", kind="postgres", owners=["team:data"],
    description="The reporting copy of the business.",
    api=Api(connector="sql", base_url="postgresql+psycopg://127.0.0.1/analytics", version="15"),
    bindings=[
        Binding(object="customer", role="consumer", resource="customers", cron="0 5 * * *",
                purpose="Finance reports revenue per customer from the warehouse."),
    ],
)
'''

CRM_ONLY = SYSTEMS.split("soap = ")[0]


def test_a_consumer_without_the_mapping_of_our_id_is_refused_at_check_time(tmp_path: Path) -> None:
    """README's first warehouse (no mapping) crashed its first run with KeyError: 'id'."""
    sys.path.insert(0, str(tmp_path))
    try:
        name = _package(tmp_path, "unmapped_landscape", CRM_ONLY + README_WAREHOUSE)
        with pytest.raises(DeclarationError) as info:
            load_landscape(name)
    finally:
        sys.path.remove(str(tmp_path))
    (problem,) = info.value.problems
    text = (tmp_path / name / "systems" / "all.py").read_text().splitlines()
    binding = next(i for i, line in enumerate(text, 1) if 'resource="customers", cron=' in line)
    assert problem.location.endswith(f"unmapped_landscape/systems/all.py:{binding}")  # the binding's line
    assert (problem.declaration, problem.field) == ("system warehouse", "bindings[0].mapping")
    assert "identity key 'id'" in problem.message


def test_a_declared_write_naming_a_field_the_mapping_lacks_is_refused(tmp_path: Path) -> None:
    write = CRM_ONLY + '''
from integration_project.model.rest import Call, Write
shelf = consumer("shelf", Api(connector="rest", base_url="http://127.0.0.1:6", version="1", resources={
    "customers": Resource(write=Write(create=Call(method="PUT", path="/customers/{code}"), id="{code}"))}))
'''
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(DeclarationError) as info:
            load_landscape(_package(tmp_path, "template_landscape", write))
    finally:
        sys.path.remove(str(tmp_path))
    (problem,) = info.value.problems
    assert (problem.declaration, problem.field) == ("system shelf", "bindings[0].mapping")
    assert "api.resources.customers.write needs the payload field 'code'" in problem.message
