"""Plain JSON APIs (the warehouse and the 3PL): `{"data", "next_cursor"}` pages out, typed writes in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx

from integration_project.connectors.base import HttpConnector, Ours, Page
from integration_project.connectors.locks import KeyLocks
from integration_project.errors import PermanentError
from integration_project.model import Api

PAGE = 500


class Rest(HttpConnector):
    """Collections read by modification-time cursor; shipment instructions, stock items and adjustments written.

    - `shipments`: one instruction per order; a second one answers 409 with the existing id, which is
      adopted. The 3PL takes no change to an instruction, so a later version of the order is
      acknowledged without a call (an edit of its lines after it was sent does not reach the 3PL).
    - `stock`: a stock item per SKU, created or renamed by PUT.
    - `stock/adjustments`: an order moves stock by one adjustment per SKU, each with an
      Idempotency-Key of order and SKU, so a resend never moves stock twice; an order the stock
      cannot serve in full moves nothing and is refused (it is tried again on the next run).
      Later versions of a sent order move nothing (an edit of its lines does not reach the stock).
      Orders that share a SKU are adjusted one at a time (the check and the move must not
      interleave), in every process on every machine when the hub store is on PostgreSQL
      (`KeyLocks`); the instance runs one run of a flow at a time.
    """

    extracts = frozenset({"stock", "shipments"})
    loads = frozenset({"shipments", "stock", "stock/adjustments"})

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None):
        super().__init__(api, transport)
        self.prefix = f"/v{api.version}"
        self._skus = KeyLocks(api.url())  # held from an order's stock check to its moves

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Changes oldest first: the API's cursor between pages, then the newest change's time.

        The API's cursor ends with the stream, so the last page is resumed from its newest
        modification time (`updated_since`, second resolution: the boundary is read again).
        """
        kind, _, value = (since or "").partition(":")
        params: dict[str, Any] = {"cursor": value} if kind == "c" else {"updated_since": value} if value else {}
        while True:
            data = self.http.request("GET", f"{self.prefix}/{resource}", params={"limit": PAGE, **params}).body
            records, after = data["data"], data["next_cursor"]
            if after:
                since = f"c:{after}"
                yield Page(records, since)
                params = {"cursor": after}
                continue
            yield Page(records, f"t:{records[-1]['updated_at']}" if records else since)
            return

    def _all(self, resource: str) -> Iterator[dict[str, Any]]:
        for page in self.pages(resource, None):
            yield from page.records

    def index(self, resource: str, id_path: str) -> dict[str, str] | None:
        """Our id -> the system's id: instructions by order, stock items by SKU; adjustments: None."""
        if resource == "shipments":
            return {str(s[id_path]): str(s["id"]) for s in self._all("shipments") if s.get(id_path)}
        if resource == "stock":
            return {str(s[id_path]): str(s["sku"]) for s in self._all("stock")}
        return None  # adjustments keep no record of ours: their Idempotency-Key makes them safe

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """Write one record in the resource's own way (see the class docstring); returns the system's id."""
        if resource == "shipments":
            return self._instruct(external_id, payload)
        if resource == "stock":
            sku = payload["sku"]
            self.http.request("PUT", f"{self.prefix}/stock/{sku}", empty_ok=True,
                              json={k: v for k, v in payload.items() if k != "sku"})
            return str(sku)
        if resource == "stock/adjustments":
            # an order moves stock once, when it is first sent; later versions move nothing
            return external_id if external_id is not None else self._adjust(payload)
        raise PermanentError(f"{type(self).__name__} cannot load {resource}")

    def _instruct(self, external_id: str | None, payload: dict[str, Any]) -> str:
        if external_id is not None:  # the 3PL takes no change to an instruction once received
            return external_id
        # safe to retry: a second instruction for the order answers 409 with the first one's id
        response, body = self.http.request("POST", f"{self.prefix}/shipments", ok=(409,), json=payload)
        return str(body["shipment_id"] if response.status_code == 409 else body["id"])

    def _adjust(self, payload: dict[str, Any]) -> str:
        reference = str(payload["reference"])
        wanted: Counter[str] = Counter()
        for line in payload["lines"]:
            wanted[line["sku"]] += int(line["quantity"])
        # all or nothing: the API has no transaction, so check every line before moving any. A line
        # that looks short may be one an earlier, interrupted attempt already moved: sending it again
        # under its idempotency key replays that move (200, Idempotent-Replayed) and moves nothing
        # new, or is refused (409) and moves nothing at all.
        with self._skus.held(wanted):
            return self._check_and_move(reference, wanted)

    def _check_and_move(self, reference: str, wanted: Counter[str]) -> str:
        for sku, quantity in wanted.items():
            held = self.http.request("GET", f"{self.prefix}/stock/{sku}").body
            if held["on_hand"] < quantity and not self._move(reference, sku, quantity, probe=True):
                raise PermanentError(f"insufficient stock of {sku}: {held['on_hand']} on hand, {quantity} ordered")
        for sku, quantity in wanted.items():
            self._move(reference, sku, quantity)
        return reference

    def _move(self, reference: str, sku: str, quantity: int, probe: bool = False) -> bool:
        """Take an order's quantity of a SKU off the stock, once per order and SKU; True when it is
        done (now, or replayed from an earlier attempt). With `probe`, a refusal (409) is an answer."""
        body = {"delta": -quantity, "reason": "order", "reference": reference}
        reply = self.http.request("POST", f"{self.prefix}/stock/{sku}/adjustments", json=body, empty_ok=True,
                                  ok=(409,) if probe else (), headers={"Idempotency-Key": f"order-{reference}-{sku}"})
        return reply.response.status_code < 300
