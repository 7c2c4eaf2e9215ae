"""The billing connector's requests against Stripe's request parameters for the pinned version, as
the `stripe` package (generated from Stripe's OpenAPI spec, pinned by uv.lock) types them.

pydantic cannot build these TypedDicts (they name types imported only for type checking, and
stripe's own UntypedStripeObject), so `problems` walks them: every form key must be a parameter of
the operation (nested ones too), every value of its type (an amount an integer, an enum one of its
values). Answers are checked against the package's resource classes (`stripe.Customer` ...), whose
annotations are the pinned version's fields: no field Stripe does not send, each of its type,
every non-nullable field present; a delete answers `{id, object, deleted}`.
"""

from __future__ import annotations

import re
import types
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Union
from urllib.parse import parse_qsl

import httpx
import pytest
import stripe
from stripe._error_object import ErrorObject
from stripe._request_options import RequestOptions
from stripe._stripe_object import UntypedStripeObject
from stripe.params import (
    ChargeListParams,
    ChargeRetrieveParams,
    CustomerCreateParams,
    CustomerDeleteParams,
    CustomerListParams,
    CustomerUpdateParams,
    EventListParams,
    InvoiceItemCreateParams,
    InvoiceItemDeleteParams,
    InvoiceItemListParams,
    InvoiceItemUpdateParams,
    InvoiceListParams,
    InvoicePaymentListParams,
    InvoicePaymentRetrieveParams,
    InvoiceRetrieveParams,
)
from typing_extensions import is_typeddict

from integration_project.connectors import HttpConnector, Ours
from integration_sandbox.testing import Patient, billing_invoice, free_port_sandbox
from tests.connectors.conftest import drain

ERROR_TYPES = ("api_error", "card_error", "idempotency_error", "invalid_request_error")  # ErrorObject.type's doc
OPTIONS = frozenset(RequestOptions.__annotations__)  # the client's options (headers), not parameters
OPERATIONS: list[tuple[str, str, type]] = [
    ("GET", r"/v1/customers", CustomerListParams), ("POST", r"/v1/customers", CustomerCreateParams),
    ("POST", r"/v1/customers/cus_\w+", CustomerUpdateParams), ("DELETE", r"/v1/customers/cus_\w+", CustomerDeleteParams),
    ("GET", r"/v1/invoiceitems", InvoiceItemListParams), ("POST", r"/v1/invoiceitems", InvoiceItemCreateParams),
    ("POST", r"/v1/invoiceitems/ii_\w+", InvoiceItemUpdateParams),
    ("DELETE", r"/v1/invoiceitems/ii_\w+", InvoiceItemDeleteParams),
    ("GET", r"/v1/invoices", InvoiceListParams), ("GET", r"/v1/charges", ChargeListParams),
    ("GET", r"/v1/invoices/in_\w+", InvoiceRetrieveParams), ("GET", r"/v1/charges/ch_\w+", ChargeRetrieveParams),
    ("GET", r"/v1/events", EventListParams), ("GET", r"/v1/invoice_payments", InvoicePaymentListParams),
    ("GET", r"/v1/invoice_payments/inpay_\w+", InvoicePaymentRetrieveParams),
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
    if origin in (Union, types.UnionType):
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


RESOURCES: dict[str, type] = {"customer": stripe.Customer, "invoiceitem": stripe.InvoiceItem,
                              "invoice": stripe.Invoice, "charge": stripe.Charge, "event": stripe.Event,
                              "invoice_payment": stripe.InvoicePayment}


def _resolved(hint: Any, owner: type) -> Any:
    """A resource annotation with its forward reference (a name imported for type checking) resolved."""
    if isinstance(hint, str | typing.ForwardRef):
        name = hint.__forward_arg__ if isinstance(hint, typing.ForwardRef) else hint
        return getattr(stripe, name, None) or getattr(owner, name, None) or Any
    return hint


def _attributes(cls: type) -> dict[str, Any]:
    """A resource's (or nested object's) fields and their types, its own and inherited."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("stripe._") and klass is not stripe.StripeObject:
            found.update({k: v for k, v in getattr(klass, "__annotations__", {}).items()
                          if typing.get_origin(v) is not typing.ClassVar and not k.isupper()})
    return found


def answer_problems(expected: Any, value: Any, where: str, owner: type = stripe.StripeObject) -> list[str]:
    """Why Stripe (the pinned version) would not answer this value for that type ([] when it would)."""
    expected = _resolved(expected, owner)
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if expected is Any:
        return []
    if origin in (Union, types.UnionType):
        found = [answer_problems(option, value, where, owner) for option in args]
        return [] if any(not p for p in found) else [f"{where}: fits none of its types ({'; '.join(sum(found, []))})"]
    if expected is type(None) or origin is Literal:
        allowed = [None] if expected is type(None) else list(args)
        return [] if value in allowed else [f"{where}: {value!r} is not one of {allowed}"]
    if origin in (list, typing.List):
        return [p for i, v in enumerate(value) for p in answer_problems(args[0], v, f"{where}[{i}]", owner)] \
            if isinstance(value, list) else [f"{where}: not a list"]
    if isinstance(expected, type) and issubclass(expected, stripe.StripeObject):
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        fields = _attributes(expected)
        out = [f"{where}.{k}: not a field of {expected.__qualname__}" for k in value if k not in fields]
        out += [p for k, v in value.items() if k in fields for p in answer_problems(fields[k], v, f"{where}.{k}", expected)]
        nullable = {k for k, t in fields.items() if type(None) in typing.get_args(_resolved(t, expected))}
        return out + [f"{where}.{k}: missing" for k in fields if k not in value and k not in nullable]
    kinds = {int: int, str: str, bool: bool, float: (int, float), Decimal: str}
    if expected in kinds and (not isinstance(value, kinds[expected]) or (expected is int and isinstance(value, bool))):
        return [f"{where}: {value!r} is not a {expected.__name__}"]
    return []


def answer_problem(body: Any, where: str) -> str | None:
    """Why Stripe would not give this answer (a resource, a list of them, or a delete's), or None."""
    if isinstance(body, dict) and "error" in body:
        return None  # an error's shape is the request's business
    if isinstance(body, dict) and body.get("object") == "list":
        return "; ".join(p for i, item in enumerate(body.get("data", [])) if (p := answer_problem(item, f"{where}.data[{i}]"))) or None
    kind = RESOURCES.get(body.get("object")) if isinstance(body, dict) else None
    if kind is None:
        return f"{where}: not a {', '.join(RESOURCES)} or list"
    if body.get("deleted") is True:
        return None if set(body) == {"id", "object", "deleted"} else f"{where}: a delete answers id, object, deleted"
    return "; ".join(answer_problems(kind, body, where, kind)) or None


def exercise(billing: HttpConnector, change: Callable[[], None]) -> None:
    """Every operation the connector offers: both lists in full and from their cursors (events and
    the records they name, after `change` made some), the deleted invoices, both indexes, creates,
    updates and deletes."""
    cursors = {resource: drain(billing, resource, None)[1] for resource in sorted(billing.extracts)}
    change()
    for resource, cursor in cursors.items():
        drain(billing, resource, cursor)
    assert list(billing.deleted("invoices"))
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


def invoice_changes(env: dict[str, str]) -> None:
    """An invoice paid by card and a draft deleted, made outside the connector (`invoice.*`, with
    `invoice.deleted`, and `charge.*` events follow)."""
    auth = {"Authorization": f"Bearer {env['BILLING_API_KEY']}"}
    with httpx.Client(base_url=env["BILLING_BASE_URL"], headers=auth, transport=Patient()) as api:
        customer = api.post("/v1/customers", data={"email": "contract.invoice@example.com"}).json()["id"]
        api.post(f"/v1/invoices/{billing_invoice(api, customer, 2599)}/pay").raise_for_status()
        api.post("/v1/invoiceitems", data={"customer": customer, "amount": "990", "currency": "eur"}).raise_for_status()
        draft = api.post("/v1/invoices", data={"customer": customer}).raise_for_status().json()["id"]
        api.delete(f"/v1/invoices/{draft}").raise_for_status()


@pytest.fixture
def exchanges(recorded, env):
    billing, recording = recorded("billing")
    exercise(billing, lambda: invoice_changes(env))
    return recording.exchanges


def test_every_request_the_billing_connector_sends_is_in_stripes_params(exchanges):
    assert {(e.request.method, e.request.url.path.count("/")) for e in exchanges} >= {
        ("GET", 2), ("GET", 3), ("POST", 2), ("POST", 3)}
    assert {e.request.url.params.get("type") for e in exchanges if e.request.url.path == "/v1/events"} == {
        "invoice.*", "invoice.deleted", "charge.*"}
    assert {e.request.url.path.split("_")[0] for e in exchanges if e.request.url.path.count("/") == 3
            and e.request.method == "GET"} == {"/v1/invoices/in", "/v1/charges/ch"}  # each changed one read
    paid_by = [e.request.url.params for e in exchanges if e.request.url.path == "/v1/invoice_payments"]
    assert paid_by and all(p["payment[type]"] == "payment_intent" for p in paid_by)  # each charge's invoice
    problems_ = [p for e in exchanges if (p := request_problem(e.request))]
    assert not problems_, "\n".join(dict.fromkeys(problems_))


def test_every_answer_the_sandbox_billing_gives_is_stripes_at_the_pinned_version(exchanges):
    answers = [(f"{e.request.method} {e.request.url.path}", e.response.json()) for e in exchanges
               if e.response.headers.get("content-type", "").startswith("application/json")]
    assert {where.split()[0] for where, _ in answers} == {"GET", "POST", "DELETE"}
    problems_ = [p for where, body in answers if (p := answer_problem(body, where))]
    assert not problems_, "\n".join(dict.fromkeys(problems_))


def test_the_check_fails_when_an_answer_is_changed_against_stripes_types():
    item = {"id": "ii_1", "object": "invoiceitem", "amount": 1250, "currency": "eur", "customer": "cus_1",
            "date": 1, "discountable": True, "livemode": False, "metadata": {}, "period": {"start": 1, "end": 1},
            "proration": False, "quantity": 1, "quantity_decimal": "1"}
    assert answer_problem(item, "item") is None
    assert "'1250' is not a int" in (answer_problem({**item, "amount": "1250"}, "item") or "")
    assert "item.plan: not a field of InvoiceItem" in (answer_problem({**item, "plan": None}, "item") or "")
    assert "item.discountable: missing" in (answer_problem({k: v for k, v in item.items() if k != "discountable"}, "item") or "")
    assert "a delete answers" in (answer_problem({"id": "cus_1", "object": "customer", "deleted": True, "email": "a@b.c"}, "x") or "")
    assert "not a customer" in (answer_problem({"id": "cus_1", "deleted": True}, "x") or "")


def test_every_create_carries_an_idempotency_key(exchanges):
    creates = [e.request for e in exchanges if e.request.method == "POST" and e.request.url.path.count("/") == 2]
    assert all(r.headers.get("Idempotency-Key") for r in creates)
    assert len({r.headers["Idempotency-Key"] for r in creates}) == 2  # a retried create (after a 429) keeps its key


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


def error_problem(body: Any) -> str | None:
    """Why this is not Stripe's error body (`{"error": ErrorObject}`, its type one of Stripe's four), or None."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return "not {error: ...}"
    found = answer_problems(ErrorObject, body["error"], "error", ErrorObject)
    if body["error"].get("type") not in ERROR_TYPES:
        found.append(f"error.type: {body['error'].get('type')!r} is not one of {ERROR_TYPES}")
    return "; ".join(found) or None


def test_the_sandbox_refuses_a_key_as_stripe_does(env):
    """Only the account's secret key, as Bearer or as Basic's user name; else Stripe's 401."""
    url, key = env["BILLING_BASE_URL"] + "/v1/customers", env["BILLING_API_KEY"]
    with httpx.Client(transport=Patient()) as http:  # a 429 (the tests before used the second) waited out
        assert http.get(url, params={"limit": 1}, auth=(key, "")).status_code == 200
        assert http.get(url, params={"limit": 1}, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    for headers, says in (({}, "You did not provide an API key."),
                          ({"Authorization": f"Token {key}"}, "You did not provide an API key."),
                          ({"Authorization": key}, "You did not provide an API key."),
                          ({"Authorization": "Bearer sk_test_someoneElsesKey9876"},
                           "Invalid API Key provided: sk_test_" + "*" * 15 + "9876"),
                          ({"Authorization": "Bearer pk_test_publishableKey1234"}, "with a publishable API key")):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401 and error_problem(refused.json()) is None, (headers, refused.text)
        assert says in refused.json()["error"]["message"]
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_someoneElsesKey9876", base_addresses={"api": env["BILLING_BASE_URL"]},
                            max_network_retries=0).v1.customers.list({"limit": 1})
    assert "not {error" in (error_problem({"message": "Unauthorized"}) or "")
    assert "is not one of" in (error_problem({"error": {"type": "auth_error", "message": "x"}}) or "")


def test_the_sandbox_rate_limits_as_stripe_does(tmp_path):
    """Beyond the limit (here 1 request a minute): 429 with Stripe's body (code rate_limit), the
    Stripe-Rate-Limited-Reason header and no Retry-After; Stripe's library reads it as a RateLimitError."""
    options = {"billing": {"rate_limit_per_second": 1, "rate_limit_window_seconds": 60}}
    with free_port_sandbox(tmp_path, ["billing"], seed=1, size=5, options=options) as sb:
        headers = {"Authorization": f"Bearer {sb.token('billing')}", "Stripe-Version": stripe.api_version}
        first = httpx.get(sb.url("billing") + "/v1/customers", headers=headers)
        limited = httpx.get(sb.url("billing") + "/v1/customers", headers=headers)
        with pytest.raises(stripe.RateLimitError):
            stripe.StripeClient(sb.token("billing"), base_addresses={"api": sb.url("billing")},
                                max_network_retries=0).v1.customers.list({"limit": 1})
    assert first.status_code == 200 and limited.status_code == 429
    assert error_problem(limited.json()) is None and limited.json()["error"]["code"] == "rate_limit"
    assert limited.headers["Stripe-Rate-Limited-Reason"] == "global-rate" and "Retry-After" not in limited.headers


def test_the_sandbox_lists_events_with_stripes_parameters_only(env):
    """`type` with a wildcard, `types[]`, `created[...]`, paging both ways; what Stripe refuses, refused."""
    headers = {"Authorization": f"Bearer {env['BILLING_API_KEY']}", "Stripe-Version": stripe.api_version}
    with httpx.Client(base_url=env["BILLING_BASE_URL"], headers=headers) as api:
        newest = api.get("/v1/events", params={"type": "customer.*", "limit": 3}).json()
        assert answer_problem(newest, "events") is None and len(newest["data"]) == 3
        assert all(e["type"].startswith("customer.") for e in newest["data"])
        created = [e["created"] for e in newest["data"]]
        assert created == sorted(created, reverse=True)  # newest first
        older = api.get("/v1/events", params={"type": "customer.*", "limit": 2,
                                              "starting_after": newest["data"][0]["id"]}).json()["data"]
        assert [e["id"] for e in older] == [e["id"] for e in newest["data"][1:]]
        newer = api.get("/v1/events", params={"type": "customer.*", "limit": 2,
                                              "ending_before": newest["data"][2]["id"]}).json()["data"]
        assert [e["id"] for e in newer] == [e["id"] for e in newest["data"][:2]]
        typed = api.get("/v1/events", params={"types[0]": "customer.created", "created[gte]": created[-1]}).json()
        assert {e["type"] for e in typed["data"]} <= {"customer.created"} and typed["data"]
        for params, param in (({"type": "customer.*", "types[0]": "customer.created"}, "types"),
                              ({"since": "1"}, "since"), ({"limit": "101"}, "limit"),
                              ({"created[after]": "1"}, "created[after]")):
            refused = api.get("/v1/events", params=params)
            assert refused.status_code == 400 and error_problem(refused.json()) is None, refused.text
            assert refused.json()["error"]["param"] == param
    events = httpx.Request("GET", env["BILLING_BASE_URL"] + "/v1/events", headers=headers,
                           params={"type": "invoice.*", "created[after]": "1"})
    assert "'after' is not a parameter" in (request_problem(events) or "")


def test_the_sandbox_lists_invoice_payments_with_stripes_parameters_only(env):
    """An invoice paid by card is an InvoicePayment naming it and the paying PaymentIntent, in
    Stripe's shape, listed with Stripe's filters and paging and read by id; what Stripe refuses, refused."""
    headers = {"Authorization": f"Bearer {env['BILLING_API_KEY']}", "Stripe-Version": stripe.api_version}
    with httpx.Client(base_url=env["BILLING_BASE_URL"], headers=headers, transport=Patient()) as api:
        customer = api.post("/v1/customers", data={"email": "contract.payments@example.com"}).json()["id"]
        invoices = [billing_invoice(api, customer, 1000)]
        api.post(f"/v1/invoices/{invoices[0]}/pay").raise_for_status()
        api.post("/v1/invoiceitems", data={"customer": customer, "amount": "2000", "currency": "eur"}).raise_for_status()
        invoices.append(api.post("/v1/invoices", data={"customer": customer}).raise_for_status().json()["id"])
        api.post(f"/v1/invoices/{invoices[1]}/pay").raise_for_status()  # the newest payment, by a second intent
        charges = api.get("/v1/charges", params={"customer": customer, "limit": 100}).json()["data"]
        mine = api.get("/v1/invoice_payments", params={"invoice": invoices[1]}).json()
        assert answer_problem(mine, "invoice_payments") is None and len(mine["data"]) == 1
        paid = mine["data"][0]
        assert (paid["invoice"], paid["status"], paid["amount_paid"], paid["payment"]["type"]) == (
            invoices[1], "paid", 2000, "payment_intent")
        assert len({c["payment_intent"] for c in charges}) == 2 and paid["payment"]["charge"] is None
        charge = next(c for c in charges if c["payment_intent"] == paid["payment"]["payment_intent"])
        by_intent = api.get("/v1/invoice_payments", params={
            "payment[type]": "payment_intent", "payment[payment_intent]": charge["payment_intent"]}).json()["data"]
        assert [p["id"] for p in by_intent] == [paid["id"]]
        one = api.get(f"/v1/invoice_payments/{paid['id']}").json()
        assert one == paid and answer_problem(one, "invoice_payment") is None
        newest = api.get("/v1/invoice_payments", params={"status": "paid", "limit": 1}).json()
        assert [p["id"] for p in newest["data"]] == [paid["id"]] and newest["has_more"]  # newest first
        older = api.get("/v1/invoice_payments", params={"status": "paid", "starting_after": paid["id"]}).json()
        first = api.get("/v1/invoice_payments", params={"invoice": invoices[0]}).json()["data"]
        assert [p["id"] for p in first] == [older["data"][0]["id"]]
        newer = api.get("/v1/invoice_payments", params={"status": "paid", "ending_before": first[0]["id"]}).json()
        assert [p["id"] for p in newer["data"]] == [paid["id"]]
        assert not api.get("/v1/invoice_payments", params={"invoice": invoices[1], "status": "open"}).json()["data"]
        for params, param, status in (({"payment[payment_intent]": charge["payment_intent"]}, "payment[type]", 400),
                                      ({"payment[type]": "charge"}, "payment[type]", 400),
                                      ({"status": "draft"}, "status", 400), ({"charge": charge["id"]}, "charge", 400),
                                      ({"limit": "0"}, "limit", 400), ({"created[after]": "1"}, "created[after]", 400),
                                      ({"starting_after": "inpay_nope"}, "starting_after", 404)):
            refused = api.get("/v1/invoice_payments", params=params)
            assert refused.status_code == status and error_problem(refused.json()) is None, refused.text
            assert refused.json()["error"]["param"] == param
        missing = api.get("/v1/invoice_payments/inpay_nope")
        assert missing.status_code == 404 and error_problem(missing.json()) is None
    assert "'charge' is not a parameter" in (request_problem(httpx.Request(
        "GET", env["BILLING_BASE_URL"] + "/v1/invoice_payments", headers=headers,
        params={"payment[type]": "payment_intent", "payment[charge]": "ch_1"})) or "")
