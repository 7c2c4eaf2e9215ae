"""Zendesk Support API v2: tickets out through the incremental cursor export, with their requester."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from integration_project.connectors import http
from integration_project.connectors.base import Connector, Page
from integration_project.model import Api

PAGE = 1000


class Zendesk(Connector):
    """Tickets and users read from the incremental export, oldest change first.

    Each page's `after_cursor` resumes exactly after it, so every page's cursor is safe. A ticket
    names its requester by user id; the requester's user record is attached as `requester` (the
    way Zendesk sideloads users), so a mapping can read `requester.email`.
    """

    extracts = frozenset({"tickets", "users"})

    def __init__(self, api: Api):
        self.http = http.client(api)
        self.prefix = f"/api/{api.version}"
        self._users: dict[int, dict[str, Any]] | None = None

    def _export(self, resource: str, since: str | None) -> Iterator[tuple[list[dict[str, Any]], str]]:
        params: dict[str, Any] = {"per_page": PAGE, **({"cursor": since} if since else {"start_time": 0})}
        while True:
            data = http.call_json(self.http, "GET", f"{self.prefix}/incremental/{resource}/cursor.json",
                                  params=params)
            yield data[resource], data["after_cursor"]
            if data["end_of_stream"]:
                return
            params = {"per_page": PAGE, "cursor": data["after_cursor"]}

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Changes after the cursor; tickets come with their requester's user record."""
        for records, cursor in self._export(resource, since):
            if resource == "tickets":
                users = self._requesters({t["requester_id"] for t in records if t.get("requester_id")})
                records = [{**t, "requester": users.get(t["requester_id"]) if t.get("requester_id") else None}
                           for t in records]
            yield Page(records, cursor)

    def _requesters(self, ids: set[int]) -> dict[int, dict[str, Any]]:
        """Every user by id, read again when a requester is newer than what was read."""
        if self._users is None or not ids <= self._users.keys():
            self._users = {u["id"]: u for records, _ in self._export("users", None) for u in records}
        return self._users

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()
