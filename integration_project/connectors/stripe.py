"""Stripe: customers created or updated idempotently without relying on Idempotency-Key.

Stripe's emulator (localstripe) ignores Idempotency-Key, and a crash between a create and our
record of it would otherwise duplicate the customer. So the engine marks a send as pending first;
on a rerun, `index` lists the system's records and finds ours by the id we store in metadata.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from integration_project.connectors import http
from integration_project.connectors.base import Connector
from integration_project.model import Api
from integration_project.model.mapping import get_path


def form(payload: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Stripe's form encoding of nested fields: address[country]=DE, metadata[crm_id]=7."""
    for key, value in payload.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, dict):
            yield from form(value, name)
        elif value is not None:
            yield name, str(value)


class Stripe(Connector):
    """Loads customers into Stripe."""

    loads = frozenset({"customers"})

    def __init__(self, api: Api):
        self.http = http.client(api, headers={"Stripe-Version": api.version})

    def index(self, resource: str, id_path: str) -> dict[str, str]:
        """Our id (read at `id_path`, e.g. metadata.crm_id) -> Stripe id, over every record."""
        found: dict[str, str] = {}
        after = None
        while True:
            params = {"limit": 100, **({"starting_after": after} if after else {})}
            data = http.call_json(self.http, "GET", f"/v1/{resource}", params=params)
            for item in data["data"]:
                if (ours := get_path(item, id_path)) is not None:
                    found[str(ours)] = item["id"]
            if not data.get("has_more") or not data["data"]:
                return found
            after = data["data"][-1]["id"]

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any]) -> str:
        """POST to create, or POST to the record's URL to update; returns the Stripe id."""
        url = f"/v1/{resource}/{external_id}" if external_id else f"/v1/{resource}"
        return http.call_json(self.http, "POST", url, data=dict(form(payload)))["id"]

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()
