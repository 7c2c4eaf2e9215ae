"""The billing connector's requests against Stripe's request parameters for the pinned version, as
the `stripe` package (generated from Stripe's OpenAPI spec, pinned by uv.lock) types them.

pydantic cannot build these TypedDicts (they name types imported only for type checking, and
stripe's own UntypedStripeObject), so `problems` walks them: every form key must be a parameter of
the operation (nested ones too), every value of its type (an amount an integer, an enum one of its
values). Answers are not checked: the package types responses as untyped objects.
"""

from __future__ import annotations

import re
import typing
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Union
from urllib.parse import parse_qsl

import httpx
import pytest
import stripe
from stripe._request_options import RequestOptions
from stripe._stripe_object import UntypedStripeObject
from stripe.params import (
    ChargeListParams,
    CustomerCreateParams,
    CustomerDeleteParams,
    CustomerListParams,
    CustomerUpdateParams,
    InvoiceItemCreateParams,
    InvoiceItemDeleteParams,
    InvoiceItemListParams,
    InvoiceItemUpdateParams,
    InvoiceListParams,
)
from typing_extensions import is_typeddict

from integration_project.connectors import HttpConnector, Ours
from tests.connectors.conftest import drain

OPTIONS = frozenset(RequestOptions.__annotations__)  # the client's options (headers), not parameters
OPERATIONS: list[tuple[str, str, type]] = [
    ("GET", r"/v1/customers", CustomerListParams), ("POST", r"/v1/customers", CustomerCreateParams),
    ("POST", r"/v1/customers/cus_\w+", CustomerUpdateParams), ("DELETE", r"/v1/customers/cus_\w+", CustomerDeleteParams),
    ("GET", r"/v1/invoiceitems", InvoiceItemListParams), ("POST", r"/v1/invoiceitems", InvoiceItemCreateParams),
    ("POST", r"/v1/invoiceitems/ii_\w+", InvoiceItemUpdateParams),
    ("DELETE", r"/v1/invoiceitems/ii_\w+", InvoiceItemDeleteParams),
    ("GET", r"/v1/invoices", InvoiceListParams), ("GET", r"/v1/charges", ChargeListParams),
]


def _fields(typed: type) -> dict[str, Any]:
    """A params TypedDict's own parameters and their types (the request options left out)."""
    anns = {k: v for k, v in typed.__annotations__.items() if k not in OPTIONS}
    return typing.get_type_hints(type("Params", (), {"__annotations__": anns, "__module__": typed.__module__}))


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back into nested fields: address[country]=DE -> {address: {country: DE}}."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        keys = re.findall(r"[^\[\]]+", name)
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return out


def problems(expected: Any, value: Any, where: str) -> list[str]:
    """Why a form value does not fit its parameter's type ([] when it does)."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin is Union:
        found = [problems(option, value, where) for option in args]
        return [] if any(not p for p in found) else [f"{where}: fits none of its types ({'; '.join(sum(found, []))})"]
    if origin is Literal:
        return [] if value in [str(a) for a in args] else [f"{where}: {value!r} is not one of {list(args)}"]
    if is_typeddict(expected):
        if not isinstance(value, dict):
            return [f"{where}: expected fields of {expected.__name__}"]
        fields = _fields(expected)
        return [p for key, v in value.items()
                for p in (problems(fields[key], v, f"{where}[{key}]") if key in fields
                          else [f"{where}: {key!r} is not a parameter of {expected.__name__}"])]
    if origin in (dict, typing.Dict) or (isinstance(origin, type) and issubclass(origin, UntypedStripeObject)):
        inner = args[-1] if args else str
        return [p for k, v in value.items() for p in problems(inner, v, f"{where}[{k}]")] \
            if isinstance(value, dict) else [f"{where}: expected a hash"]
    if origin in (list, typing.List):
        if not isinstance(value, dict) or not all(k.isdigit() for k in value):
            return [f"{where}: expected a list"]
        return [p for k, v in value.items() for p in problems(args[0], v, f"{where}[{k}]")]
    if isinstance(value, dict):
        return [f"{where}: expected a {getattr(expected, '__name__', expected)}, got a hash"]
    if expected is int:
        return [] if re.fullmatch(r"-?\d+", value) else [f"{where}: {value!r} is not an integer"]
    if expected is bool:
        return [] if value in ("true", "false") else [f"{where}: {value!r} is not a boolean"]
    if expected in (Decimal, float):
        try:
            Decimal(value)
        except InvalidOperation:
            return [f"{where}: {value!r} is not a number"]
    return []


def request_problem(request: httpx.Request) -> str | None:
    """Why Stripe (the pinned version) would refuse this request, or None."""
    where = f"{request.method} {request.url.path}"
    params = next((p for m, path, p in OPERATIONS if m == request.method and re.fullmatch(path, request.url.path)), None)
    if params is None:
        return f"{where}: not an operation the connector may call"
    if request.headers.get("Stripe-Version") != stripe.api_version:
        return f"{where}: Stripe-Version {request.headers.get('Stripe-Version')!r}, not {stripe.api_version}"
    if not re.fullmatch(r"Bearer (sk|rk)_\w+", request.headers.get("Authorization", "")):
        return f"{where}: credentials are not a secret or restricted key as Bearer"
    sent = request.content.decode() if request.method == "POST" else request.url.query.decode()
    found = problems(params, unflatten(parse_qsl(sent, keep_blank_values=True)), where)
    return "; ".join(found) or None


def exercise(billing: HttpConnector) -> None:
    """Every operation the connector offers: both lists, both indexes, creates, updates and deletes."""
    for resource in sorted(billing.extracts):
        drain(billing, resource, None)
    run = uuid.uuid4().hex[:8]  # each exercise its own records: a replayed Idempotency-Key answers the first
    customer = {"email": "contract@example.com", "name": "Contract Case", "phone": "+49 30 1",
                "address": {"country": "DE"}, "metadata": {"crm_contact_id": f"st-c1-{run}"}}
    created = billing.upsert("customers", None, customer, Ours("metadata.crm_contact_id", f"st-c1-{run}"))
    billing.upsert("customers", created, {**customer, "phone": "+49 30 2"})
    item = {"customer": created, "amount": "12.50", "currency": "EUR", "description": "Deal",
            "metadata": {"deal_id": f"st-d1-{run}"}}
    made = billing.upsert("invoiceitems", None, item, Ours("metadata.deal_id", f"st-d1-{run}"))
    billing.upsert("invoiceitems", made, {**item, "amount": "13.00"})
    assert billing.index("customers", "metadata.crm_contact_id")[f"st-c1-{run}"] == created
    billing.remove("invoiceitems", made, "delete")
    billing.remove("customers", created, "delete")
    billing.remove("customers", created, "delete")  # gone already: done
    assert f"st-c1-{run}" not in billing.index("customers", "metadata.crm_contact_id")


@pytest.fixture
def exchanges(recorded):
    billing, recording = recorded("billing")
    exercise(billing)
    return recording.exchanges


def test_every_request_the_billing_connector_sends_is_in_stripes_params(exchanges):
    assert {(e.request.method, e.request.url.path.count("/")) for e in exchanges} >= {("GET", 2), ("POST", 2), ("POST", 3)}
    problems_ = [p for e in exchanges if (p := request_problem(e.request))]
    assert not problems_, "\n".join(dict.fromkeys(problems_))


def test_every_create_carries_an_idempotency_key(exchanges):
    creates = [e.request for e in exchanges if e.request.method == "POST" and e.request.url.path.count("/") == 2]
    assert len(creates) == 2 and all(r.headers.get("Idempotency-Key") for r in creates)


def test_the_check_fails_when_a_request_is_changed_against_stripes_params(env):
    headers = {"Authorization": f"Bearer {env['BILLING_API_KEY']}", "Stripe-Version": stripe.api_version}
    url = env["BILLING_BASE_URL"] + "/v1/invoiceitems"

    def create(**form: str) -> httpx.Request:
        return httpx.Request("POST", url, headers=headers, data=form)

    good = {"customer": "cus_1", "amount": "1250", "currency": "eur", "metadata[deal_id]": "7"}
    assert request_problem(create(**good)) is None
    assert "'1250.00' is not an integer" in (request_problem(create(**{**good, "amount": "1250.00"})) or "")
    assert "'metdata' is not a parameter" in (request_problem(create(**{**good, "metdata[deal_id]": "7"})) or "")
    assert "'nope' is not a parameter" in (request_problem(create(**{**good, "period[nope]": "1"})) or "")
    assert "'yes' is not a boolean" in (request_problem(create(**{**good, "discountable": "yes"})) or "")
    customers = httpx.Request("POST", env["BILLING_BASE_URL"] + "/v1/customers", headers=headers,
                              data={"email": "a@example.com", "address": "DE"})
    assert "expected fields of CustomerCreateParamsAddress" in (request_problem(customers) or "")
    old = httpx.Request("POST", url, headers={**headers, "Stripe-Version": "2020-08-27"}, data=good)
    assert "Stripe-Version '2020-08-27'" in (request_problem(old) or "")
    assert "not an operation" in (request_problem(httpx.Request("GET", env["BILLING_BASE_URL"] + "/v1/prices",
                                                                headers=headers)) or "")
