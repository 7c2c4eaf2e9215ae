"""Every kind of bad declaration is reported: one line each, with file, line, declaration and field."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from integration_project import DeclarationError, load_landscape
from integration_project.cli import main
from tests.model.conftest import BILLING, CRM, OBJECTS


def problems(package: str) -> list[str]:
    with pytest.raises(DeclarationError) as info:
        load_landscape(package)
    return [str(p) for p in info.value.problems]


def test_a_sound_landscape_loads(landscape_package):
    landscape = load_landscape(landscape_package(crm_py=CRM, billing__defs_yaml=BILLING))
    assert sorted(landscape.systems) == ["billing", "crm"]
    assert [f.name for f in landscape.flows()] == ["invoice_billing_to_crm", "customer_crm_to_billing"]
    assert landscape.where("system billing", "bindings[1].cron").endswith("billing/defs.yaml:19")


def test_unknown_object(landscape_package):
    found = problems(landscape_package(crm_py=CRM.replace('object="invoice"', 'object="invoyce"'),
                                       billing__defs_yaml=BILLING))
    assert any(re.search(r"crm\.py:\d+: system crm: bindings\[1\]\.object: unknown object 'invoyce'", p)
               for p in found), found


def test_unknown_system_in_field_sources(landscape_package):
    objects = OBJECTS.replace('description="Invoices.")',
                              'description="Invoices.", field_sources={"customer_id": "erp"})')
    found = problems(landscape_package(objects, crm_py=CRM, billing__defs_yaml=BILLING))
    assert any("object invoice: field_sources.customer_id: unknown system 'erp'" in p for p in found), found


def test_object_without_source_of_truth(landscape_package):
    found = problems(landscape_package(crm_py=CRM, billing__defs_yaml=BILLING.replace("role: source", "role: consumer\n      cron: '0 1 * * *'")))
    assert any(re.search(r"objects\.py:\d+: object invoice: source_of_truth: no system declares it", p)
               for p in found), found


def test_object_with_two_sources_of_truth(landscape_package):
    found = problems(landscape_package(crm_py=CRM, billing__defs_yaml=BILLING.replace(
        "role: consumer\n      purpose: Customers", "role: source\n      purpose: Customers")))
    assert any(re.search(r"billing/defs\.yaml:16: system billing: bindings\[1\]\.role: customer has two sources "
                         r"of truth: crm \(\S+/crm\.py:9\) and billing", p) for p in found), found


def test_malformed_owner_in_python_and_yaml(landscape_package):
    found = problems(landscape_package(crm_py=CRM.replace('"team:sales"]', '"sales team"]'),
                                       billing__defs_yaml=BILLING.replace("[team:finance]", "[finance]")))
    assert any(re.search(r"crm\.py:5: system crm: owners: .*'sales team' is neither", p) for p in found), found
    assert any(re.search(r"billing/defs\.yaml:8: system billing: owners: .*'finance' is neither", p)
               for p in found), found


def test_duplicate_names(landscape_package):
    found = problems(landscape_package(crm_py=CRM, billing__defs_yaml=BILLING,
                                       other__defs_yaml=BILLING))
    assert any(re.search(r"other/defs\.yaml:\d+: system billing: name: duplicate name, first declared at .*billing/defs\.yaml", p)
               for p in found), found


def test_bad_cron_and_timezone(landscape_package):
    bad = BILLING.replace('cron: "0 * * * *"', 'cron: "61 * * * *"\n      timezone: Mars/Olympus')
    found = problems(landscape_package(crm_py=CRM, billing__defs_yaml=bad))
    assert any(re.search(r"billing/defs\.yaml:19: system billing: bindings\[1\]\.cron: '61 \* \* \* \*' is not a valid cron", p)
               for p in found), found
    assert any(re.search(r"billing/defs\.yaml:20: system billing: bindings\[1\]\.timezone: unknown timezone 'Mars/Olympus'", p)
               for p in found), found


def test_mapping_to_a_field_the_model_lacks(landscape_package):
    found = problems(landscape_package(crm_py=CRM.replace('"email": "properties.email"', '"mail": "properties.email"'),
                                       billing__defs_yaml=BILLING))
    assert any(re.search(r"crm\.py:\d+: system crm: bindings\[0\]\.mapping\.mail: Customer has no field 'mail'", p)
               for p in found), found


def test_realtime_cycle_needs_an_echo_rule(landscape_package):
    realtime = BILLING.replace('cron: "0 * * * *"', "mode: realtime")
    found = problems(landscape_package(crm_py=CRM, billing__defs_yaml=realtime))
    assert any("realtime cycle" in p and "echo_suppression" in p for p in found), found
    fixed = CRM.replace('mode="realtime")', 'mode="realtime", echo_suppression=True)')
    assert load_landscape(landscape_package(crm_py=fixed, billing__defs_yaml=realtime))


def test_schema_errors_in_yaml_point_at_the_line(landscape_package):
    found = problems(landscape_package(crm_py=CRM, billing__defs_yaml=BILLING.replace("kind: stripe", "kind: stripe\n  colour: blue")))
    assert any(re.search(r"billing/defs\.yaml:8: system billing: colour: Extra inputs are not permitted", p)
               for p in found), found


def test_a_credential_written_inline_is_refused_without_echoing_it(landscape_package):
    leaky = CRM.replace('version="v3")', 'version="v3", auth={"type": "bearer", "token_env": "pat-na1-5ecret"})')
    found = problems(landscape_package(crm_py=leaky, billing__defs_yaml=BILLING))
    assert any("auth.token_env: expected the NAME of an environment variable" in p for p in found), found
    assert not any("5ecret" in p for p in found)


def test_an_auth_without_what_its_type_needs_is_refused(landscape_package):
    half = CRM.replace('version="v3")', 'version="v3", auth={"type": "oauth2_client_credentials", '
                                         '"client_id_env": "CRM_CLIENT_ID"})')
    found = problems(landscape_package(crm_py=half, billing__defs_yaml=BILLING))
    assert any(re.search(r"crm\.py:7: .*auth: .*auth type 'oauth2_client_credentials' needs "
                         r"client_secret_env, token_url", p) for p in found), found


def test_a_concurrency_out_of_range_is_refused(landscape_package):
    greedy = CRM.replace('version="v3")', 'version="v3", concurrency=0)')
    found = problems(landscape_package(crm_py=greedy, billing__defs_yaml=BILLING))
    assert any(re.search(r"crm\.py:7: .*concurrency: must be 1 to 64 writes in flight", p) for p in found), found


def test_cli_reports_all_problems_at_once_without_traceback(landscape_package):
    package = landscape_package(
        crm_py=CRM.replace('"team:sales"]', '"sales"]'),
        billing__defs_yaml=BILLING.replace('cron: "0 * * * *"', 'cron: "bad"').replace("object: invoice", "object: invoize"),
    )
    result = CliRunner().invoke(main, ["check", "--package", package])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert "Traceback" not in result.output
    assert lines[-1] == f"{len(lines) - 1} problem(s) in {package}"
    assert len(lines) - 1 >= 4  # owner, unknown object, bad cron, invoice without source of truth
    assert all(re.match(r"^\S+\.(py|yaml):\d+: (system|object) [^:]+: [^:]+: .+", line) for line in lines[:-1]), lines


def test_cli_check_passes_on_the_example_business():
    result = CliRunner().invoke(main, ["check", "--json"])
    assert result.exit_code == 0, result.output
    assert '"systems": 9' in result.output and '"objects": 11' in result.output
