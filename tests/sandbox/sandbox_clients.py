"""Plain clients that read every page the way each vendor paginates (test helpers)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from integration_sandbox import Sandbox
from integration_sandbox.testing import crm_params

LIST_PATHS = {
    "crm": "/crm/v3/objects/contacts",
    "support": "/api/v2/users.json",
    "shop": "/admin/api/2026-10/graphql.json",
    "inventory": "/v1/stock",
    "fulfilment": "/v1/shipments",
    "marketing": "/3.0/lists/a1b2c3d4e5/members",
    "billing": "/v1/customers",
    "projects": "/api/v2/projects",
}


def client(sandbox: Sandbox, system: str) -> httpx.Client:
    """An httpx client with the system's own credentials scheme."""
    token = sandbox.token(system)
    auth: Any = None
    headers = {}
    if system == "support":
        auth = ("agent@example.com/token", token)
    elif system == "marketing":
        auth = ("anystring", token)
    elif system == "shop":
        headers["X-Shopify-Access-Token"] = token
    elif system == "projects":
        headers["X-Api-Key"] = token
    else:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=sandbox.url(system), auth=auth, headers=headers, timeout=10)


def read_all(http: httpx.Client, system: str, page_size: int = 7) -> list[dict[str, Any]]:
    """Every record of the system's main list, following its own pagination to the end."""
    path = LIST_PATHS[system]
    out: list[dict[str, Any]] = []
    if system == "crm":
        params = crm_params("contacts", limit=page_size)
        while True:
            body = http.get(path, params=params).raise_for_status().json()
            out += body["results"]
            if "paging" not in body:
                return out
            params["after"] = body["paging"]["next"]["after"]
    if system == "support":
        url: str | None = f"{path}?per_page={page_size}"
        while url:
            body = http.get(url).raise_for_status().json()
            out += body["users"]
            url = body["next_page"]
        return out
    if system == "shop":
        return shop_all(http, "orders", "id legacyResourceId email updatedAt", page_size)
    if system == "projects":
        url = f"{path}?per_page={page_size}"
        while url:
            response = http.get(url).raise_for_status()
            out += response.json()
            match = re.search(r'<([^>]+)>; rel="next"', response.headers.get("link", ""))
            url = match.group(1) if match else None
        return out
    if system in ("inventory", "fulfilment"):
        params = {"limit": page_size}
        while True:
            body = http.get(path, params=params).raise_for_status().json()
            out += body["data"]
            if not body["next_cursor"]:
                return out
            params = {"limit": page_size, "cursor": body["next_cursor"]}
    if system == "marketing":
        offset = 0
        while True:
            body = http.get(path, params={"offset": offset, "count": page_size}).raise_for_status().json()
            out += body["members"]
            offset += page_size
            if offset >= body["total_items"]:
                return out
    raise ValueError(system)


SHOP_GRAPHQL = "/admin/api/2026-10/graphql.json"


def shop_graphql(http: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    """A GraphQL Admin call to the sandbox shop; its data (an error if it answered errors). A
    THROTTLED answer is sent again once the bucket holds the query's cost, as Shopify says when."""
    while True:
        body = http.post(SHOP_GRAPHQL, json={"query": query, "variables": variables}).raise_for_status().json()
        if body.get("errors") and body["errors"][0].get("extensions", {}).get("code") == "THROTTLED":
            cost = body["extensions"]["cost"]
            status = cost["throttleStatus"]
            time.sleep((cost["requestedQueryCost"] - status["currentlyAvailable"]) / status["restoreRate"] + 0.05)
            continue
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]


def shop_all(http: httpx.Client, kind: str, fields: str, page_size: int = 50) -> list[dict[str, Any]]:
    """Every order or product (`kind`) of the sandbox shop with these fields, by id."""
    query = f"query($n: Int!, $after: String) {{ {kind}(first: $n, after: $after) {{ nodes {{ {fields} }} " \
            "pageInfo { hasNextPage endCursor } } }"
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = shop_graphql(http, query, n=page_size, after=after)[kind]
        out += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


def shop_order(http: httpx.Client, email: str, sku: str = "SKU-000001", quantity: int = 1,
               price: str = "5.00") -> dict[str, Any]:
    """A new order in the sandbox shop (`orderCreate`), as it answered: id and legacyResourceId."""
    made = shop_graphql(http, """mutation($order: OrderCreateOrderInput!) {
        orderCreate(order: $order) { order { id legacyResourceId } userErrors { field message } } }""",
                        order={"email": email, "currency": "EUR", "financialStatus": "PAID", "lineItems": [
                            {"sku": sku, "title": sku, "quantity": quantity,
                             "priceSet": {"shopMoney": {"amount": price, "currencyCode": "EUR"}}}]})["orderCreate"]
    assert not made["userErrors"], made["userErrors"]
    return made["order"]  # type: ignore[no-any-return]


SHOP_FIELDS = {
    "products": "legacyResourceId title variants(first: 1) { nodes { sku price inventoryQuantity } }",
    "orders": "legacyResourceId email displayFinancialStatus lineItems(first: 20) { nodes { sku quantity } } "
              "fulfillments(first: 1) { displayStatus trackingInfo(first: 1) { company number } }",
}


def shop_records(http: httpx.Client, kind: str) -> list[dict[str, Any]]:
    """The sandbox shop's orders or products read by GraphQL, with the few REST-named fields the
    end-to-end checks compare (`id`, `title`, `variants`; `email`, `financial_status`, `line_items`,
    `fulfillment`)."""
    out = []
    for node in shop_all(http, kind, SHOP_FIELDS[kind], 25):
        if kind == "products":
            out.append({"id": int(node["legacyResourceId"]), "title": node["title"], "variants": [
                {"sku": v["sku"], "price": v["price"], "inventory_quantity": v["inventoryQuantity"]}
                for v in node["variants"]["nodes"]]})
            continue
        done = node["fulfillments"][0] if node["fulfillments"] else None
        tracking = (done["trackingInfo"] or [{}])[0] if done else {}
        out.append({"id": int(node["legacyResourceId"]), "email": node["email"],
                    "financial_status": (node["displayFinancialStatus"] or "").lower(),
                    "line_items": node["lineItems"]["nodes"],
                    "fulfillment": done and {"tracking_number": tracking.get("number"),
                                             "tracking_company": tracking.get("company"),
                                             "shipment_status": done["displayStatus"].lower()}})
    return out
