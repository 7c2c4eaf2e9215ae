"""Build throwaway landscape packages on disk, as a user would write them."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_ids = itertools.count()

OBJECTS = '''
from datetime import datetime
from pydantic import BaseModel
from integration_project import DataObject

class Customer(BaseModel):
    id: str
    email: str
    updated_at: datetime

class Invoice(BaseModel):
    id: str
    customer_id: str

customer = DataObject(name="customer", model=Customer, owner="team:sales", identity_key="id",
                      description="Customers.")
invoice = DataObject(name="invoice", model=Invoice, owner="team:finance", identity_key="id",
                     description="Invoices.")
'''

CRM = '''
from integration_project import Api, Binding, System

crm = System(
    name="crm", title="CRM", vendor="HubSpot", kind="hubspot", owners=["team:sales"],
    description="The CRM.",
    api=Api(connector="hubspot", base_url="http://127.0.0.1:1", version="v3"),
    bindings=[
        Binding(object="customer", role="source", purpose="Sales owns customers.",
                resource="contacts", mapping={"id": "id", "email": "properties.email"}),
        Binding(object="invoice", role="consumer", purpose="Sales sees invoices.",
                resource="invoices", mapping={"id": "id"}, mode="realtime"),
    ],
)
'''

BILLING = '''
type: integration_project.SystemComponent
attributes:
  name: billing
  title: Billing
  vendor: Stripe
  kind: stripe
  owners: [team:finance]
  description: Billing.
  bindings:
    - object: invoice
      role: source
      purpose: Billing issues invoices.
      resource: invoices
    - object: customer
      role: consumer
      purpose: Customers need billing accounts.
      resource: customers
      cron: "0 * * * *"
      mapping: {id: metadata.crm_id}
'''

# An object in YAML with each kind of rule (a reference, a decimal, an enum, a field source, volume).
PAYMENT = """
type: integration_project.DataObjectComponent
attributes:
  name: payment
  description: Payments received against invoices.
  owner: team:finance
  identity_key: id
  volume: {min: 0, max: 500}
  freshness_minutes: 60
  fields:
    id: {type: string}
    invoice_id: {type: reference, object: invoice}
    amount: {type: decimal, scale: 2, min: 0, source: billing}
    method: {type: enum, values: [card, transfer]}
    paid_at: {type: datetime}
"""


DEFINITIONS = """
from integration_project import build_definitions, load_landscape

defs = build_definitions(load_landscape("{package}"))
"""

PYPROJECT = """
[project]
name = "{package}"
version = "0"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "{package}"
defs_module = "{package}.systems"
"""


@pytest.fixture
def landscape_package(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Write a package (objects.py, systems/, definitions.py; a dg project); return its importable name."""
    sys.path.insert(0, str(tmp_path))
    names: list[str] = []

    def make(objects: str | None = OBJECTS, files: dict[str, str] | None = None, **systems: str) -> str:
        """`objects` is objects.py (None: no such file); `files` are more files by path in the package."""
        name = f"landscape_{next(_ids)}"
        root = tmp_path / name
        (root / "systems").mkdir(parents=True)
        (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(package=name))  # for dg, the last one
        (root / "__init__.py").write_text("")
        (root / "systems" / "__init__.py").write_text("")
        if objects is not None:
            (root / "objects.py").write_text(textwrap.dedent(objects))
        (root / "definitions.py").write_text(DEFINITIONS.format(package=name))
        paths = {f"systems/{f.replace('__', '/').replace('_yaml', '.yaml').replace('_py', '.py')}": text
                 for f, text in systems.items()}
        for relative, text in {**paths, **(files or {})}.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        names.append(name)
        return name

    yield make
    sys.path.remove(str(tmp_path))
    for mod in [m for m in sys.modules if m.split(".")[0] in names]:
        del sys.modules[mod]
