"""HubSpot CRM v3: full scans by id, then incremental reads through the search API; contact updates."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from integration_project.connectors.base import HttpConnector, Ours, Page
from integration_project.errors import PermanentError
from integration_project.model.mapping import get_path

PAGE = 100
HISTORY_PAGE = 50  # HubSpot's largest page when property history is asked for
SEARCH_CAP = 10_000  # HubSpot's search returns at most 10,000 results per query


def _ms(record: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(record["updatedAt"].replace("Z", "+00:00")).timestamp() * 1000)


class HubSpot(HttpConnector):
    """Reads CRM objects (contacts, deals, companies) oldest change first; updates contacts.

    The CRM is the customer master, so a load only updates the contact it finds (by our id, or
    by email); one it cannot find is refused, never created from another system's data.
    """

    extracts = frozenset({"contacts", "deals", "companies"})
    loads = frozenset({"contacts"})

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """A full scan when there is no cursor (or search cannot progress), else changes since it."""
        if since is None:
            yield from self._scan(resource)
            return
        cursor, offset = int(since), 0
        while True:
            body = {"filterGroups": [{"filters": [
                        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(cursor)}]}],
                    "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                    "limit": PAGE, "after": str(offset)}
            data = self.http.request("POST", f"/crm/v3/objects/{resource}/search", json=body).body
            records = data["results"]
            newest = max((_ms(r) for r in records), default=cursor)
            yield Page(records, str(newest))
            if "paging" not in data:
                return
            offset += len(records)
            if offset + PAGE > SEARCH_CAP:  # restart the query from the newest change committed
                if newest == cursor:  # more than the cap share one timestamp: only a scan is safe
                    yield from self._scan(resource)
                    return
                cursor, offset = newest, 0

    def versions(self, resource: str, paths: Sequence[str]) -> Iterator[tuple[dict[str, Any], dict[str, int]]]:
        """Every record with the number of values each `properties.*` path has had (HubSpot's
        `propertiesWithHistory`)."""
        names = {path.removeprefix("properties."): path for path in paths if path.startswith("properties.")}
        for page in self._scan(resource, HISTORY_PAGE, propertiesWithHistory=",".join(names)):
            for record in page.records:
                past = record.pop("propertiesWithHistory", {})
                yield record, {names[name]: len(values) for name, values in past.items() if name in names}

    def _scan(self, resource: str, limit: int = PAGE, **extra: str) -> Iterator[Page]:
        """Every record by id; the cursor is committed only with the last page."""
        after, newest = None, 0
        while True:
            params = {"limit": limit, **extra, **({"after": after} if after else {})}
            data = self.http.request("GET", f"/crm/v3/objects/{resource}", params=params).body
            records = data["results"]
            newest = max([newest, *(_ms(r) for r in records)])
            after = data.get("paging", {}).get("next", {}).get("after")
            yield Page(records, None if after else str(newest))
            if not after:
                return

    def index(self, resource: str, id_path: str) -> dict[str, str]:
        """Our id (at `id_path`, e.g. properties.email) -> CRM id; the oldest record wins a tie."""
        found: dict[str, str] = {}
        for page in self._scan(resource):
            for record in page.records:
                if (ours := get_path(record, id_path)) is not None:
                    found.setdefault(str(ours), record["id"])
        return found

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """PATCH the record's properties; without its id, find it by email first."""
        properties = payload.get("properties", {})
        if external_id is None and properties.get("email"):
            body = {"filterGroups": [{"filters": [
                        {"propertyName": "email", "operator": "EQ", "value": properties["email"]}]}],
                    "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}], "limit": 1}
            found = self.http.request("POST", f"/crm/v3/objects/{resource}/search", json=body).body
            external_id = found["results"][0]["id"] if found["results"] else None
        if external_id is None:
            raise PermanentError(f"no {resource} record to update: the CRM creates its own")
        self.http.request("PATCH", f"/crm/v3/objects/{resource}/{external_id}", json={"properties": properties})
        return external_id
