"""Plain clients that read every page the way each vendor paginates (test helpers)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from integration_sandbox import Sandbox

LIST_PATHS = {
    "crm": "/crm/v3/objects/contacts",
    "support": "/api/v2/users.json",
    "shop": "/admin/api/2025-01/orders.json",
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
        params: dict[str, Any] = {"limit": page_size}
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
    if system in ("shop", "projects"):
        url = f"{path}?limit={page_size}" if system == "shop" else f"{path}?per_page={page_size}"
        while url:
            response = http.get(url).raise_for_status()
            out += response.json()["orders"] if system == "shop" else response.json()
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
