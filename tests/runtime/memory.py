"""An in-memory system for fast tests of the runtime steps: no sandbox process, the real engine."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from integration_project import Api, Binding, DataObject, Landscape, System
from integration_project.connectors import Connector, Ours, Page
from integration_project.model.mapping import get_path


class Memory(Connector):
    """A system's records per resource, each with the system's own `id` and a change sequence.

    Reads return the records changed after the cursor (`seq`), oldest first, `page_size` a page;
    writes create `<prefix><n>` ids or update in place. `refuse` makes a write fail for good.
    """

    extracts = frozenset({"*"})
    loads = frozenset({"*"})
    tombstones = frozenset({"*"})
    removes = {"delete": frozenset({"*"}), "archive": frozenset({"*"})}

    def __init__(self, prefix: str = "x", page_size: int = 50) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.prefix, self.page_size = prefix, page_size
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self.writes: list[tuple[str, str | None, dict[str, Any]]] = []
        self.gone: dict[str, dict[str, dict[str, Any]]] = {}  # deleted at this system, still reported
        self.removals: list[tuple[str, str, str]] = []

    def put(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        """Create or change a record at the source (as a user of the system would)."""
        stored = {**self.records.setdefault(resource, {}).get(record["id"], {}), **record, "seq": next(self._seq)}
        self.records[resource][record["id"]] = stored
        return stored

    def delete(self, resource: str, rid: str) -> None:
        """Delete a record at the source (as a user would); `deleted` reports it from then on."""
        self.gone.setdefault(resource, {})[rid] = self.records[resource].pop(rid)

    def deleted(self, resource: str) -> Iterator[dict[str, Any]]:
        yield from (dict(r) for r in self.gone.get(resource, {}).values())

    def remove(self, resource: str, external_id: str, action: str) -> None:
        self.removals.append((resource, external_id, action))
        if action == "delete":
            self.records.get(resource, {}).pop(external_id, None)
        elif external_id in self.records.get(resource, {}):
            self.records[resource][external_id]["archived"] = True

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        after = int(since or 0)
        changed = sorted((r for r in self.records.get(resource, {}).values() if r["seq"] > after),
                         key=lambda r: r["seq"])
        for start in range(0, len(changed), self.page_size):
            page = changed[start:start + self.page_size]
            yield Page([dict(r) for r in page], str(page[-1]["seq"]))

    def index(self, resource: str, id_path: str) -> dict[str, str] | None:
        return {str(get_path(r, id_path)): r["id"] for r in self.records.get(resource, {}).values()
                if get_path(r, id_path) is not None}

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        self.writes.append((resource, external_id, payload))
        rid = external_id or f"{self.prefix}{next(self._ids)}"
        self.put(resource, {**payload, "id": rid})
        return rid


def system(name: str, *bindings: Binding) -> System:
    """A declared system whose API names the (unregistered) connector `memory`."""
    return System(name=name, title=name.title(), vendor="Memory", kind="python", owners=[f"team:{name}"],
                  description=f"The {name} system, in memory.",
                  api=Api(connector="memory", base_url="memory://", version="1"), bindings=list(bindings))


class Customer(BaseModel):
    id: str
    email: str


class Invoice(BaseModel):
    id: str
    customer_id: str
    amount: int


def billing_landscape(on_delete: str = "ignore") -> Landscape:
    """crm owns customers; billing receives them and issues invoices naming its own customer ids."""
    customer = DataObject(name="customer", model=Customer, owner="team:sales", identity_key="id",
                          description="People who buy.", match_keys=["email"])
    invoice = DataObject(name="invoice", model=Invoice, owner="team:finance", identity_key="id",
                         description="Bills.", references={"customer_id": "customer"})
    crm = system("crm", Binding(object="customer", role="source", purpose="Sales owns customers.",
                                resource="contacts", mapping={"id": "id", "email": "email"}))
    billing = system(
        "billing",
        Binding(object="customer", role="consumer", purpose="Bill customers.", resource="customers",
                cron="0 * * * *", mapping={"id": "metadata.ours", "email": "email"}, on_delete=on_delete),
        Binding(object="invoice", role="source", purpose="Billing issues invoices.", resource="invoices",
                mapping={"id": "id", "customer_id": "customer", "amount": "amount"}))
    return Landscape(systems={"crm": crm, "billing": billing},
                     objects={"customer": customer, "invoice": invoice}).validate()
