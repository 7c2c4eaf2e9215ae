"""An object declared in YAML is the object declared in Python: same records accepted, same
errors for the rest, same metadata; a broken YAML object is one exact line."""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel, ValidationError

from definitions.objects import Currency, Customer, Money, customer
from integration_project import DataObject, load_landscape
from integration_project.cli import main
from integration_project.model.fields import DeclaredObject
from integration_project.model.reference import BEGIN, END, OBJECT_MODELS, markdown
from tests.model.conftest import BILLING, CRM, PAYMENT


class Invoice(BaseModel):
    """definitions/objects.py's invoice before it moved to objects/invoice/defs.yaml (commit 519ccb6)."""

    id: str
    customer_id: str
    deal_id: str | None = None
    amount_due: Money
    currency: Currency
    status: Literal["draft", "open", "paid", "void", "uncollectible"]
    updated_at: datetime


PYTHON_INVOICE = DataObject(name="invoice", model=Invoice, owner="team:finance", identity_key="id",
                            description="Invoices issued to customers.", references={"customer_id": "customer"})

# The example's customer (still Python: email, country, PII, match keys) written in YAML here.
YAML_CUSTOMER = """
type: integration_project.DataObjectComponent
attributes:
  name: customer
  description: People and companies that buy from us.
  owner: team:sales-ops
  identity_key: id
  match_keys: [email]
  max_invalid_share: 0.2
  fields:
    id: {type: string}
    email: {type: email, pii: true}
    first_name: {type: string, min_length: 1, pii: true}
    last_name: {type: string, min_length: 1, pii: true}
    company: {type: string, required: false}
    country: {type: country}
    phone: {type: string, required: false, pii: true}
    updated_at: {type: datetime}
"""

PROBES: list[Any] = [None, "", "x", "  open ", 0, -1, 7, "-0.01", "0", "12.3", "12.345", "123456789012.34",
                     "1234567890123.45", 10**13, 1.5, True, [], {}, "2024-05-01T10:00:00Z", "2024-05-01",
                     "not a date", "EUR", "eur", "EURO", "paid", "closed", "DE", " de ", "XX", "DEU",
                     "ann@example.com", "ann@", " ann@example.com"]
MISSING = object()


def _records(base: dict[str, Any]) -> list[dict[str, Any]]:
    """The base record, then each field missing or set to each probe in turn."""
    out = [base]
    for name, probe in itertools.product(base, [MISSING, *PROBES]):
        record = {k: v for k, v in base.items() if k != name}
        if probe is not MISSING:
            record[name] = probe
        out.append(record)
    return out


def _outcome(model: type[BaseModel], record: dict[str, Any]):
    try:
        return "valid", model.model_validate(record).model_dump(mode="json")
    except ValidationError as exc:
        return "invalid", [(e["loc"], e["type"], e["msg"]) for e in exc.errors()]


def _same_object(python: DataObject, declared: DataObject, base: dict[str, Any]) -> None:
    assert declared.model_dump(exclude={"model"}) == python.model_dump(exclude={"model"})
    assert [(n, f.annotation, f.is_required()) for n, f in declared.model.model_fields.items()] == [
        (n, f.annotation, f.is_required()) for n, f in python.model.model_fields.items()]  # the docs' columns
    schemas = [{k: v for k, v in o.model.model_json_schema().items() if k != "description"} for o in (python, declared)]
    assert schemas[0] == schemas[1]
    outcomes = {"valid": 0, "invalid": 0}
    for record in _records(base):
        expected = _outcome(python.model, record)
        assert _outcome(declared.model, record) == expected, record
        outcomes[expected[0]] += 1
    assert outcomes["valid"] >= 10 and outcomes["invalid"] >= 50, outcomes  # the probes test both ways


def test_the_example_invoice_in_yaml_validates_as_it_did_in_python():
    declared = load_landscape("definitions").objects["invoice"]
    _same_object(PYTHON_INVOICE, declared, {
        "id": "in_1", "customer_id": "c1", "deal_id": "d1", "amount_due": "120.50", "currency": "EUR",
        "status": "open", "updated_at": "2024-05-01T10:00:00Z"})


def test_email_country_pii_and_match_keys_in_yaml_are_the_python_customer():
    declared = DeclaredObject.model_validate(yaml.safe_load(YAML_CUSTOMER)["attributes"]).data_object()
    _same_object(customer, declared, {
        "id": "c1", "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee", "company": "Acme",
        "country": "de", "phone": "+49 30 1234", "updated_at": "2024-05-01T10:00:00Z"})
    assert Customer.model_fields.keys() == declared.model.model_fields.keys()


PAYMENT_SOURCE = BILLING + """
    - object: payment
      role: source
      purpose: Billing records the payments.
      resource: payments
"""
PATH = "objects/payment/defs.yaml"

# name: (the payment file with one thing wrong, the exact first line `check` prints after "{root}/")
BROKEN = {
    "unknown_type": (PAYMENT.replace("{type: enum,", "{type: choice,"),
                     f"{PATH}:14: object payment: fields.method.type: Input should be 'string', 'email', "
                     "'country', 'decimal', 'integer', 'boolean', 'datetime', 'date', 'enum' or 'reference'"),
    "enum_without_values": (PAYMENT.replace("{type: enum, values: [card, transfer]}", "{type: enum}"),
                            f"{PATH}:14: object payment: fields.method.values: a field of type enum needs values"),
    "option_of_another_type": (PAYMENT.replace("id: {type: string}", "id: {type: string, scale: 2}"),
                               f"{PATH}:11: object payment: fields.id.scale: a field of type string takes no "
                               "scale (only decimal)"),
    "bad_pattern": (PAYMENT.replace("id: {type: string}", 'id: {type: string, pattern: "[A-Z"}'),
                    f"{PATH}:11: object payment: fields.id.pattern: not a regular expression: "
                    "unterminated character set at position 0"),
    "field_name": (PAYMENT.replace("paid_at:", "PaidAt:"),
                   f"{PATH}:10: object payment: fields: 'PaidAt' is not a name: lower-case letters, digits and _"),
    "unknown_attribute": (PAYMENT.replace("  owner: team:finance", "  owner: team:finance\n  steward: ann"),
                          f"{PATH}:7: object payment: steward: Extra inputs are not permitted"),
    "bad_volume": (PAYMENT.replace("{min: 0, max: 500}", "{min: 5, max: 1}"),
                   f"{PATH}:8: object payment: volume: expected 0 <= min <= max"),
    "identity_key_not_a_field": (PAYMENT.replace("identity_key: id", "identity_key: payment_id"),
                                 f"{PATH}:7: object payment: identity_key: 'payment_id' is not a field of Payment"),
    "reference_to_unknown_object": (PAYMENT.replace("object: invoice", "object: invoce"),
                                    f"{PATH}:12: object payment: fields.invoice_id.object: unknown object 'invoce'"),
    "unknown_field_source": (PAYMENT.replace("source: billing", "source: ledger"),
                             f"{PATH}:13: object payment: fields.amount.source: unknown system 'ledger'"),
    "not_a_landscape_component": (PAYMENT.replace("integration_project.DataObjectComponent",
                                                  "dagster.DefinitionsComponent"),
                                  f"{PATH}:2: file {PATH}: type: expected type: integration_project.SystemComponent"
                                  " or integration_project.DataObjectComponent; 'dagster.DefinitionsComponent' is "
                                  "not a declaration of the landscape"),
}


def _check(package: str):
    return CliRunner().invoke(main, ["check", "--package", package])


def test_a_yaml_object_is_part_of_the_landscape(landscape_package):
    package = landscape_package(crm_py=CRM, billing__defs_yaml=PAYMENT_SOURCE, files={PATH: PAYMENT})
    assert _check(package).exit_code == 0
    landscape = load_landscape(package)
    payment = landscape.objects["payment"]
    assert (payment.references, payment.field_sources) == ({"invoice_id": "invoice"}, {"amount": "billing"})
    assert payment.volume is not None and (payment.volume.min, payment.volume.max, payment.freshness_minutes) == (
        0, 500, 60)
    assert landscape.where("object payment", "references.invoice_id").endswith(f"{PATH}:12")


def test_an_objects_volume_and_freshness_are_its_consumers_unless_they_declare_their_own(landscape_package):
    crm = CRM.replace("    ],", '        Binding(object="payment", role="consumer", purpose="Sales sees payments.",'
                      ' resource="payments", mode="realtime", mapping={"id": "id"}),\n    ],')
    package = landscape_package(crm_py=crm, billing__defs_yaml=PAYMENT_SOURCE, files={PATH: PAYMENT})
    (flow,) = [f for f in load_landscape(package).flows() if f.object.name == "payment"]
    assert (flow.volume.model_dump() if flow.volume else None, flow.freshness_minutes) == ({"min": 0, "max": 500}, 60)
    own = flow.binding.model_copy(update={"freshness_minutes": 5})
    assert type(flow)(flow.ingest, flow.consumer, own).freshness_minutes == 5


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_yaml_object_is_one_exact_line(case, landscape_package, tmp_path):
    text, line = BROKEN[case]
    package = landscape_package(crm_py=CRM, billing__defs_yaml=PAYMENT_SOURCE, files={PATH: text})
    checked = _check(package)
    assert checked.exit_code == 1, checked.output
    lines = checked.output.splitlines()
    assert lines[0] == f"{tmp_path / package}/{line}", lines
    assert lines[-1] == f"{len(lines) - 1} problem(s) in {package}" and "Traceback" not in checked.output


DOC = Path(__file__).resolve().parents[2] / "docs" / "objects.md"


def test_docs_objects_md_is_the_models_and_the_examples_own():
    text = DOC.read_text()
    assert BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END == markdown(OBJECT_MODELS)
    (example,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "DataObjectComponent" in b]
    invoice = Path(__file__).resolve().parents[2] / "definitions" / "objects" / "invoice" / "defs.yaml"
    assert yaml.safe_load(example) == yaml.safe_load(invoice.read_text())


def test_the_readmes_yaml_object_validates_and_its_quoted_problem_is_the_one_check_prints(
        landscape_package, tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "objects/shelf_stock" in b]
    assert DeclaredObject.model_validate(yaml.safe_load(block)["attributes"]).data_object().model
    quoted = re.search(r"\(`(definitions/objects/shelf_stock/defs\.yaml:\d+: .*?)`\)", readme, re.S)
    assert quoted is not None
    broken = re.sub(r"\{type: enum, values: \[.*?\]\}", "{type: enum}", block)
    package = landscape_package(files={"objects/shelf_stock/defs.yaml": broken})
    checked = _check(package)
    assert checked.output.splitlines()[0] == f"{tmp_path / package}/" + " ".join(quoted.group(1).split()).replace(
        "definitions/", "", 1)
