"""Shopify Admin REST: orders out (Link-header pages, `updated_at_min`); products, stock and fulfillments in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from integration_project.connectors.base import HttpConnector, Ours, Page
from integration_project.connectors.http import Reply, server_time
from integration_project.errors import PermanentError
from integration_project.model import Api
from integration_project.model.mapping import get_path

PAGE = 250


class Shopify(HttpConnector):
    """Orders and products read by modification time; products, variant stock and fulfillments written.

    Lists are ordered by id, not by change, so a cursor is safe only once a whole listing is read:
    it is committed with the last page, and it is the older of the newest change seen and the
    shop's clock when the listing began (a record changed meanwhile is read again next time).
    """

    extracts = frozenset({"orders", "products"})
    loads = frozenset({"products", "variants", "fulfillments"})
    deprecation_headers = ("X-Shopify-API-Deprecated-Reason",)  # a call to a deprecated endpoint or field

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None):
        super().__init__(api, transport)
        self.prefix = f"/admin/api/{api.version}"
        self._by_sku: dict[str, str] | None = None

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Records changed at or after the cursor; the cursor comes with the last page only."""
        url = f"{self.prefix}/{resource}.json"
        params: dict[str, Any] = {"limit": PAGE, "status": "any", **({"updated_at_min": since} if since else {})}
        began: datetime | None = None
        newest = datetime.fromisoformat(since) if since else None
        while True:
            response, body = self.http.request("GET", url, params=params)
            began = began or server_time(response) - timedelta(seconds=1)
            records = body[resource]
            for record in records:
                changed = datetime.fromisoformat(record["updated_at"])
                newest = changed if newest is None else max(newest, changed)
            # a next page takes only page_info and limit (the link may echo other filters)
            following = parse_qs(urlsplit(response.links.get("next", {}).get("url", "")).query).get("page_info")
            cursor = min(newest, began).isoformat() if newest else since
            yield Page(records, None if following else cursor)
            if not following:
                return
            params = {"limit": PAGE, "page_info": following[0]}

    def versions(self, resource: str, paths: Sequence[str]) -> Iterator[tuple[dict[str, Any], dict[str, int]]]:
        """Orders with how many versions each has had (`*`: the whole order; Shopify's Events API
        says that an order was edited, not which field), other resources without history."""
        if resource != "orders":
            yield from super().versions(resource, paths)
            return
        updates: Counter[int] = Counter()
        for page in self.pages("events", None):
            updates.update(e["subject_id"] for e in page.records if e["subject_type"] == "Order" and e["verb"] == "update")
        for record in self.scan(resource):
            yield record, {"*": 1 + updates[record["id"]]}

    def _products(self) -> Iterator[dict[str, Any]]:
        for page in self.pages("products", None):
            yield from page.records

    def index(self, resource: str, id_path: str) -> dict[str, str]:
        """Our id -> shop id: products and variants by `id_path` (the SKU), fulfillments by order."""
        if resource == "fulfillments":  # an order's fulfillment is known by the order's id
            return {str(o["id"]): str(o["id"]) for page in self.pages("orders", None)
                    for o in page.records if o.get("fulfillment")}
        return {str(get_path(p, id_path)): str(p["id"]) for p in self._products()
                if get_path(p, id_path) is not None}

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """Write a product (or only its variant's stock), or an order's fulfillment; returns the shop id."""
        if resource == "fulfillments":
            order = payload["order_id"]
            fulfillment = {k: v for k, v in payload.items() if k != "order_id"}
            fulfillment["status"] = "success" if payload.get("tracking_number") else "open"
            self.http.request("POST", f"{self.prefix}/orders/{order}/fulfillments.json",
                              json={"fulfillment": fulfillment}, empty_ok=True)
            return str(order)
        variant = payload.get("variants", {}).get("0", {})
        payload = {k: v for k, v in payload.items() if k != "variants"}
        if external_id is None and resource == "variants":
            if self._by_sku is None:
                self._by_sku = self.index(resource, "variants.0.sku")
            external_id = self._by_sku.get(str(variant.get("sku")))
            if external_id is None:
                raise PermanentError(f"no product with SKU {variant.get('sku')} in the shop yet")
        if external_id is None:  # not idempotent: after a lost answer the product is found by SKU first
            recover = self.recovery(resource, ours, lambda found: self._update(found, payload, variant))
            reply = self.http.request("POST", f"{self.prefix}/products.json", idempotent=False, recover=recover,
                                      json={"product": {**payload, "variants": [variant]}})
            return str(reply.body["product"]["id"])
        self._update(external_id, payload, variant)
        return external_id

    def _update(self, external_id: str, payload: dict[str, Any], variant: dict[str, Any]) -> Reply:
        url = f"{self.prefix}/products/{external_id}.json"
        held = self.http.request("GET", url).body["product"]["variants"]
        # PUT replaces the variants: keep every field of theirs that we do not send
        variants = [{**(held[0] if held else {}), **variant}, *held[1:]]
        return self.http.request("PUT", url, json={"product": {**payload, "variants": variants}})
