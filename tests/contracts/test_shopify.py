"""The shop connector's requests and the sandbox shop's answers against Shopify's GraphQL Admin
schema (2026-10), by graphql-core: a request must validate, an answer's `data` must be what the
schema gives for the request's selection (each field there, of its type, null only where nullable)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest
from graphql import GraphQLSchema, build_client_schema, execute, parse, validate

from tests.connectors.conftest import drain
from tests.contracts.recording import Exchange
from tests.sandbox.sandbox_clients import client, shop_order

SCHEMA = Path(__file__).parent / "specs" / "shopify" / "admin_2026-10.json.gz"
SERVED = Path(__file__).resolve().parents[2] / "sandbox" / "integration_sandbox" / "specs" / "shopify_admin_2026-10.json.gz"
VERSION = "2026-10"


@pytest.fixture(scope="module")
def admin() -> GraphQLSchema:
    return build_client_schema(json.loads(gzip.decompress(SCHEMA.read_bytes()))["data"])


def problem(schema: GraphQLSchema, request: httpx.Request) -> str | None:
    """Why Shopify's current Admin API refuses this request: it is GraphQL at the pinned version
    (the REST Admin API is legacy), and its query validates against the schema."""
    where = f"{request.method} {request.url.path}"
    if request.method != "POST" or request.url.path != f"/admin/api/{VERSION}/graphql.json":
        return f"{where}: not the GraphQL Admin API {VERSION}"
    errors = validate(schema, parse(json.loads(request.content)["query"]))
    return f"{where}: {'; '.join(e.message for e in errors)}" if errors else None


def answer_problem(schema: GraphQLSchema, exchange: Exchange) -> str | None:
    """Why Shopify would never give this answer to this request: its `data` is executed again
    against the schema with the answer itself as the root value, so every field the query selects
    must be present, of its type (scalars serialised, enums among the values), non-null where the
    schema says so, and nothing else is kept; the result must be the answer. Shopify names the
    version that served it in `X-Shopify-API-Version`: the pinned one while it is supported."""
    where = f"{exchange.request.method} {exchange.request.url.path}"
    if exchange.request.url.path == "/admin/oauth/access_token":
        return None if set(exchange.response.json()) == {"access_token", "scope", "expires_in"} else (
            f"{where}: a token answer with {sorted(exchange.response.json())}")
    body = exchange.response.json()
    if exchange.response.status_code != 200:
        return None if isinstance(body.get("errors"), str | dict) else f"{where}: an error without Shopify's shape"
    if exchange.response.headers.get("X-Shopify-API-Version") != VERSION:  # the version that served it
        return f"{where}: X-Shopify-API-Version {exchange.response.headers.get('X-Shopify-API-Version')}, not {VERSION}"
    if set(body) - {"data", "errors", "extensions"} or "cost" not in body.get("extensions", {}):
        return f"{where}: an answer with {sorted(body)} (no extensions.cost)"
    if body.get("errors") and not all(isinstance(e, dict) and "message" in e for e in body["errors"]):
        return f"{where}: errors without a message"
    if body.get("data") is None:
        return None if body.get("errors") else f"{where}: neither data nor errors"
    sent = json.loads(exchange.request.content)
    again = execute(schema, parse(sent["query"]), body["data"], variable_values=sent.get("variables"),
                    type_resolver=_typename)
    if again.errors:  # type: ignore[union-attr]
        return f"{where}: {'; '.join(e.message for e in again.errors)}"  # type: ignore[union-attr]
    return None if again.data == body["data"] else f"{where}: the answer has fields the query did not select"  # type: ignore[union-attr]


def _typename(value, info, abstract):
    """An interface's concrete type: the answer's `__typename`, else the only type whose fields fit."""
    if isinstance(value, dict) and "__typename" in value:
        return value["__typename"]
    fits = [t for t in info.schema.get_possible_types(abstract) if set(value) <= set(t.fields)]
    return fits[0].name if len(fits) == 1 else None


def exercise(shop) -> None:
    """Everything the connector does: both listings, incrementally too; order history; the index;
    a product created and updated, stock set, an order fulfilled with tracking and an event."""
    for resource in sorted(shop.extracts):
        _, cursor = drain(shop, resource, None)
        drain(shop, resource, cursor)
    list(shop.versions("orders", ["*"]))
    product = {"title": "Contract Cog", "variants": {"0": {"sku": "SKU-CONTRACT", "price": "2.50"}}}
    made = shop.upsert("products", None, product)
    shop.upsert("products", made, {**product, "title": "Contract Cog 2"})
    shop.upsert("variants", None, {"variants": {"0": {"sku": "SKU-CONTRACT", "inventory_quantity": 7}}})
    shop.upsert("fulfillments", None, {"order_id": "1005", "tracking_company": "DHL", "tracking_number": "0034",
                                       "shipment_status": "in_transit"})
    shop.upsert("fulfillments", "1005", {"order_id": "1005", "tracking_company": "DHL", "tracking_number": "0035"})
    shop.index("fulfillments", "order_id")


@pytest.fixture
def exchanges(recorded) -> list[Exchange]:
    shop, recording = recorded("shop")
    exercise(shop)
    assert recording.exchanges
    return recording.exchanges


def test_every_request_the_shop_connector_sends_is_graphql_admin(admin, exchanges):
    graphql = [e for e in exchanges if e.request.url.path != "/admin/oauth/access_token"]
    problems = [p for e in graphql if (p := problem(admin, e.request))]
    assert graphql and not problems, "\n".join(dict.fromkeys(problems))
    sent = " ".join(json.loads(e.request.content)["query"] for e in graphql)
    for operation in ("orders(", "products(", "events(", "productSet(", "productUpdate(",
                      "productVariantsBulkUpdate(", "inventorySetQuantities(", "fulfillmentCreate(",
                      "fulfillmentTrackingInfoUpdate(", "fulfillmentEventCreate("):
        assert operation in sent, operation


def test_every_answer_the_sandbox_shop_gives_is_in_shopifys_schema(admin, exchanges):
    problems = [p for e in exchanges if (p := answer_problem(admin, e))]
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_an_answer_changed_against_the_schema_is_refused(admin, env, sandbox):
    with client(sandbox, "shop") as http:
        shop_order(http, "contract@example.com")
        query = ("query($n: Int!) { orders(first: $n) { nodes { id updatedAt displayFinancialStatus "
                 "totalPriceSet { shopMoney { amount } } } pageInfo { hasNextPage endCursor } } }")
        response = http.post(f"/admin/api/{VERSION}/graphql.json", json={"query": query, "variables": {"n": 2}})
    exchange = Exchange(response.request, response)
    assert answer_problem(admin, exchange) is None
    body = response.json()

    def changed(edit) -> str:
        data = json.loads(json.dumps(body))
        edit(data["data"]["orders"]["nodes"][0])
        served = {"X-Shopify-API-Version": response.headers["X-Shopify-API-Version"]}
        return answer_problem(admin, Exchange(response.request, httpx.Response(200, json=data, headers=served))) or ""

    assert "Cannot return null for non-nullable field Order.updatedAt" in changed(lambda o: o.update(updatedAt=None))
    assert "Enum 'OrderDisplayFinancialStatus' cannot represent value: 'paid'" in changed(
        lambda o: o.update(displayFinancialStatus="paid"))
    assert "did not select" in changed(lambda o: o.update(total_price="1.00"))
    assert "non-nullable field Order.id" in changed(lambda o: o.pop("id"))
    for served in ({}, {"X-Shopify-API-Version": "2027-01"}):  # no version named, or another one
        assert "X-Shopify-API-Version" in (answer_problem(admin, Exchange(
            response.request, httpx.Response(200, json=body, headers=served))) or "")


def test_the_sandbox_refuses_what_shopify_refuses(admin, env, sandbox):
    """A query the schema refuses, a connection without `first`, a body that is no request."""
    url = f"/admin/api/{VERSION}/graphql.json"
    with client(sandbox, "shop") as http:
        wrong = http.post(url, json={"query": "{ orders(first: 1) { nodes { updated_at } } }"})
        unbounded = http.post(url, json={"query": "{ orders { nodes { id } } }"})
        costly = http.post(url, json={"query": "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }"})
        broken = http.post(url, content=b"{not json")
        legacy = http.get("/admin/api/2024-10/orders.json")
    assert wrong.status_code == 200 and "Cannot query field 'updated_at' on type 'Order'" in wrong.json()["errors"][0]["message"]
    assert "you must provide one of first or last" in unbounded.json()["errors"][0]["message"]
    assert costly.json()["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert broken.status_code == 400 and broken.json() == {"errors": {"query": "Required parameter missing or invalid"}}
    assert legacy.status_code == 404 and legacy.json() == {"errors": "Not Found"}


def test_the_check_fails_when_a_query_is_changed_against_the_schema(admin):
    url = f"https://shop.example/admin/api/{VERSION}/graphql.json"
    good = "query($n: Int!) { orders(first: $n) { nodes { id updatedAt } pageInfo { hasNextPage endCursor } } }"
    assert problem(admin, httpx.Request("POST", url, json={"query": good, "variables": {"n": 5}})) is None
    changed = good.replace("updatedAt", "updated_at")
    assert "Cannot query field 'updated_at' on type 'Order'" in (
        problem(admin, httpx.Request("POST", url, json={"query": changed})) or "")
    assert "not the GraphQL Admin API" in (problem(admin, httpx.Request("GET", url.replace("graphql", "orders"))) or "")


def test_the_sandbox_serves_the_kept_schema():
    assert SERVED.read_bytes() == SCHEMA.read_bytes()


def test_a_deleted_order_is_known_from_its_webhook_only(admin, env, sandbox):
    """Shopify's `deletionEvents` list deleted products and collections, never orders (the batch path
    cannot see an order deleted); `orders/delete` is a webhook topic; the sandbox's `orderDelete`
    answers as the schema says and the order is gone from every query."""
    assert sorted(admin.get_type("DeletionEventSubjectType").values) == ["COLLECTION", "PRODUCT"]
    assert "ORDERS_DELETE" in admin.get_type("WebhookSubscriptionTopic").values
    url = f"/admin/api/{VERSION}/graphql.json"
    with client(sandbox, "shop") as http:
        order = shop_order(http, "deleted@example.com")["id"]
        delete = "mutation($id: ID!) { orderDelete(orderId: $id) { deletedId userErrors { field message code } } }"
        done = http.post(url, json={"query": delete, "variables": {"id": order}})
        again = http.post(url, json={"query": delete, "variables": {"id": order}})
        read = http.post(url, json={"query": "query($id: ID!) { order(id: $id) { id } }", "variables": {"id": order}})
        listed = http.post(url, json={"query": "{ deletionEvents(first: 5, subjectTypes: [ORDER]) { nodes { subjectId } } }"})
    assert answer_problem(admin, Exchange(done.request, done)) is None
    assert done.json()["data"]["orderDelete"] == {"deletedId": order, "userErrors": []}
    assert again.json()["data"]["orderDelete"]["userErrors"][0]["code"] == "NOT_FOUND"
    assert read.json()["data"] == {"order": None}
    assert "ORDER" in listed.json()["errors"][0]["message"]  # the schema has no such subject type
