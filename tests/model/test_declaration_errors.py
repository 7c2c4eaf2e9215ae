"""Each broken declaration is one exact line, root cause first, in every command; never a traceback.

`integrations check` must print exactly the line asserted (exit 1); `integrations lint` and
`integrations docs build` print the same line first (exit 2: the code location does not load);
`dg check defs` (a subprocess, as a user runs it) fails without a stack trace for the YAML cases
(~10 s of CPU each: only those).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from integration_project.cli import main
from tests.model.conftest import BILLING, CRM, PAYMENT

BIN = Path(sys.executable).parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# name: (files of the landscape, the exact first line `check` prints, with {root} the package folder)
CASES = {
    "empty_defs_yaml": (
        {"crm_py": CRM, "billing__defs_yaml": ""},
        "{root}/systems/billing/defs.yaml:1: file systems/billing/defs.yaml: -: the file is empty: "
        "expected type: integration_project.SystemComponent or integration_project.DataObjectComponent, "
        "and attributes"),
    "yaml_binding_without_purpose": (
        {"crm_py": CRM, "billing__defs_yaml": BILLING.replace("      purpose: Billing issues invoices.\n", "")},
        "{root}/systems/billing/defs.yaml:11: system billing: bindings[0].purpose: Field required"),
    "yaml_syntax_error": (
        {"crm_py": CRM, "billing__defs_yaml": BILLING.replace("description: Billing.",
                                                              "description: Billing: invoices.")},
        "{root}/systems/billing/defs.yaml:9: file systems/billing/defs.yaml: -: not valid YAML: "
        "mapping values are not allowed here"),
    "python_syntax_error": (
        {"crm_py": CRM.replace('description="The CRM.",', 'description="The CRM."'),
         "billing__defs_yaml": BILLING},
        "{root}/systems/crm.py:6: file systems/crm.py: -: not valid Python: "
        "invalid syntax. Perhaps you forgot a comma?"),
    "two_sources_of_truth": (
        {"crm_py": CRM, "billing__defs_yaml": BILLING.replace(
            "role: consumer\n      purpose: Customers", "role: source\n      purpose: Customers")},
        "{root}/systems/billing/defs.yaml:16: system billing: bindings[1].role: customer has two "
        "sources of truth: crm ({root}/systems/crm.py:9) and billing; keep one, make the other binding a consumer"),
    "unknown_object": (
        {"crm_py": CRM.replace('object="customer"', 'object="custmer"'), "billing__defs_yaml": BILLING},
        "{root}/systems/crm.py:9: system crm: bindings[0].object: unknown object 'custmer' "
        "(did you mean 'customer'?)"),
    "python_bad_field": (
        {"crm_py": CRM.replace('mode="realtime")', 'mode="realtime",\n                freshness_minutes=0)'),
         "billing__defs_yaml": BILLING},
        "{root}/systems/crm.py:13: system crm: bindings[1].freshness_minutes: must be a positive number of minutes"),
    "password_in_base_url": (
        {"crm_py": CRM.replace("http://127.0.0.1:1", "postgresql://app:s3cr3t@127.0.0.1:1/crm"),
         "billing__defs_yaml": BILLING},
        "{root}/systems/crm.py:7: system crm: api.base_url: the URL holds a credential, a password "
        "(user:password@): credentials come from environment variables; name one in base_url_env "
        "(the whole URL) or in auth (token_env, password_env, ...)"),
    "token_in_a_yaml_url": (
        {"crm_py": CRM, "billing__defs_yaml": BILLING.replace("  bindings:", "  api:\n    connector: stripe\n"
                                                              "    base_url: https://127.0.0.1:1/v1?api_key=s3cr3t\n"
                                                              "    version: '2024-06-20'\n  bindings:")},
        "{root}/systems/billing/defs.yaml:12: system billing: api.base_url: the URL holds a credential, "
        "query parameter 'api_key': credentials come from environment variables; name one in base_url_env "
        "(the whole URL) or in auth (token_env, password_env, ...)"),
    "value_map_on_an_unknown_field": (
        {"crm_py": CRM.replace('"email": "properties.email"})', '"email": "properties.email"},\n'
                               '                values={"mail": {"a": "b"}})'), "billing__defs_yaml": BILLING},
        "{root}/systems/crm.py:11: system crm: bindings[0].values.mail: Customer has no field 'mail'"),
    "yaml_object_enum_without_values": (
        {"crm_py": CRM, "billing__defs_yaml": BILLING, "files": {"objects/payment/defs.yaml": PAYMENT.replace(
            "{type: enum, values: [card, transfer]}", "{type: enum}")}},
        "{root}/objects/payment/defs.yaml:14: object payment: fields.method.values: a field of type enum needs values"),
}
YAML_CASES = ["empty_defs_yaml", "yaml_binding_without_purpose", "yaml_syntax_error", "two_sources_of_truth",
              "yaml_object_enum_without_values"]


def _package(landscape_package, tmp_path: Path, case: str) -> tuple[str, str]:
    """The case's landscape package and the exact line `check` must print first."""
    files, line = CASES[case]
    package = landscape_package(**files)
    return package, line.format(root=tmp_path / package)


def _no_crash(result) -> bool:
    """The command ended by its own exit, not by an exception (CliRunner keeps tracebacks apart)."""
    return result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_declaration_is_one_exact_line_in_every_command(case, landscape_package, tmp_path):
    package, expected = _package(landscape_package, tmp_path, case)
    checked = CliRunner().invoke(main, ["check", "--package", package])
    assert checked.exit_code == 1 and _no_crash(checked), (checked.output, checked.exception)
    lines = checked.output.splitlines()
    assert lines[0] == expected, lines
    assert lines[-1] == f"{len(lines) - 1} problem(s) in {package}"
    assert "Traceback" not in checked.output and "s3cr3t" not in checked.output

    for command in (["lint"], ["docs", "build", "--out", str(tmp_path / "site")]):
        result = CliRunner().invoke(main, [*command, "--module", f"{package}.definitions:defs"])
        assert result.exit_code == 2 and _no_crash(result), (command, result.output, result.exception)
        lines = result.output.splitlines()
        assert lines[0] == expected, (command, lines)
        assert lines[-1].startswith(f"Error: cannot import {package}.definitions: "), (command, lines)
        assert "Traceback" not in result.output and "s3cr3t" not in result.output

    if case in YAML_CASES:
        _dg_check_defs_fails_without_a_traceback(package, expected, tmp_path)


def _dg_check_defs_fails_without_a_traceback(package: str, expected: str, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    done = subprocess.run([str(BIN / "dg"), "check", "defs"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "DAGSTER_HOME": str(home),
                               "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))},
                          timeout=300)
    output = ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 1, output
    assert "Traceback" not in output and "Stack Trace" not in output, output
    assert "s3cr3t" not in output
    if "All component YAML validated successfully." in output:  # our loader answered: our line
        assert expected.replace(f"{tmp_path}/", "") in output.splitlines(), output
    else:  # dg's own schema check answered first (a missing field, YAML it cannot scan): file and line
        assert re.search(rf"{package}/systems/billing/defs\.yaml:\d+", output), output


def test_no_credential_reaches_dagster_metadata_even_unchecked(landscape_package):
    """Defence in depth: a landscape built without `check` still shows its URLs without credentials."""
    from integration_project import build_definitions, load_landscape

    landscape = load_landscape(landscape_package(crm_py=CRM, billing__defs_yaml=BILLING))
    crm = landscape.systems["crm"]
    leaky = crm.api.model_copy(update={"base_url": "postgresql://app:s3cr3t@127.0.0.1:1/crm?password=k3y",
                                       "docs_url": "https://docs.example/api?access_token=t0ken"})
    landscape.systems["crm"] = crm.model_copy(update={"api": leaky})
    assert [p.field for p in landscape.problems()] == ["api.base_url", "api.docs_url"]  # check refuses both
    specs = build_definitions(landscape).resolve_all_asset_specs()
    shown = [str(spec.metadata) for spec in specs if spec.metadata.get("integration/system") == "crm"]
    assert len(shown) == 2  # crm/customer (source) and crm/invoice (consumer)
    text = "\n".join(shown)
    assert "s3cr3t" not in text and "k3y" not in text and "t0ken" not in text
    assert "postgresql://***@127.0.0.1:1/crm?password=***" in text
