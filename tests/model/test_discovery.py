"""A declaration anywhere Dagster's defs folder loads is loaded or refused with one line, never skipped."""

from __future__ import annotations

from click.testing import CliRunner

from integration_project import load_landscape
from integration_project.cli import main
from tests.model.conftest import BILLING, CRM

WAREHOUSE = """
type: integration_project.SystemComponent
attributes:
  name: warehouse
  title: Warehouse
  vendor: PostgreSQL
  kind: postgres
  owners: [team:data]
  description: The reporting copy.
  bindings:
    - {object: customer, role: consumer, resource: customers, cron: "0 5 * * *", purpose: Reports., mapping: {id: id}}
"""
LEDGER_PY = CRM.replace('name="crm", title="CRM"', 'name="ledger", title="Ledger"').replace(
    'role="source", purpose="Sales owns customers."', 'role="consumer", purpose="Ledger.", cron="0 * * * *"')


def _systems(package: str) -> list[str]:
    assert CliRunner().invoke(main, ["check", "--package", package]).exit_code == 0
    return sorted(load_landscape(package).systems)


def test_systems_in_dagsters_default_defs_folder_and_in_subfolders_are_loaded(landscape_package):
    package = landscape_package(crm_py=CRM, billing__defs_yaml=BILLING, files={
        "defs/warehouse/defs.yaml": WAREHOUSE,  # `dg scaffold defs` in a project with the default defs module
        "defs/ledger.py": LEDGER_PY.replace("crm =", "ledger ="),  # a Python module there
        "systems/finance/reports/component.yaml": WAREHOUSE.replace("warehouse", "reports"),  # nested, legacy name
    })
    assert _systems(package) == ["billing", "crm", "ledger", "reports", "warehouse"]


def test_every_document_of_a_component_file_is_loaded(landscape_package):
    package = landscape_package(crm_py=CRM, billing__defs_yaml=BILLING + "---" + WAREHOUSE)
    assert _systems(package) == ["billing", "crm", "warehouse"]


def test_a_component_the_landscape_does_not_build_is_refused(landscape_package, tmp_path):
    other = "type: dagster.DefinitionsComponent\nattributes:\n  path: reports.py\n"
    package = landscape_package(crm_py=CRM, billing__defs_yaml=BILLING, files={"defs/reports/defs.yaml": other})
    checked = CliRunner().invoke(main, ["check", "--package", package])
    assert checked.exit_code == 1
    assert checked.output.splitlines() == [
        f"{tmp_path / package}/defs/reports/defs.yaml:1: file defs/reports/defs.yaml: type: expected type: "
        "integration_project.SystemComponent or integration_project.DataObjectComponent; "
        "'dagster.DefinitionsComponent' is not a declaration of the landscape",
        f"1 problem(s) in {package}"]


def test_a_module_that_declares_nothing_is_not_imported(landscape_package):
    package = landscape_package(crm_py=CRM, billing__defs_yaml=BILLING,
                                files={"helpers.py": "raise RuntimeError('imported')\n"})
    assert _systems(package) == ["billing", "crm"]
