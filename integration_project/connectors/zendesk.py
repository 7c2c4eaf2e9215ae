"""Zendesk Support API v2: tickets out through the incremental cursor export, with their requester;
users and order history (a custom object) in, upserted by our id as Zendesk's `external_id`.

Credentials as Zendesk takes them: an API token is declared as `basic` auth, the agent's email in
`username_env` and the token in `password_env`, and sent as Basic `{email}/token:{token}`; a `bearer`
declaration is an OAuth access token (Zendesk refuses an API token as Bearer)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from integration_project.connectors.base import HttpConnector, Ours, Page
from integration_project.model import Api
from integration_project.model.rest import RateLimit

PAGE = 1000  # the incremental export's page
LIST_PAGE = 100  # cursor pagination's `page[size]` at most
SHOW_MANY = 100  # ids a users/show_many call may name


class Zendesk(HttpConnector):
    """Tickets and users read from the incremental export, oldest change first.

    Each page's `after_cursor` resumes exactly after it, so every page's cursor is safe. A ticket
    names its requester by user id; the requester's user record is attached as `requester` (the
    way Zendesk sideloads users), so a mapping can read `requester.email`. Zendesk's `next_page`
    links are absolute: one to another host is refused (the client never sends the token there).
    Zendesk's account limit (200 to 2,500 requests a minute by plan) is paced on its headers: at
    `X-Rate-Limit-Remaining: 0` no call goes out until `ratelimit-reset` seconds have passed.
    """

    extracts = frozenset({"tickets", "users"})
    loads = frozenset({"users", "orders"})
    removes = {"delete": frozenset({"users"})}  # Zendesk soft-deletes: the user turns inactive
    custom_objects = {"orders": "order"}  # our resource -> the account's custom object key
    rate_limit = RateLimit(remaining_header="X-Rate-Limit-Remaining", reset_header="ratelimit-reset")

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None):
        a = api.auth
        basic = None
        if a.type == "basic" and a.username_env and a.password_env:
            email = a.secret(a.username_env).get_secret_value()
            basic = httpx.BasicAuth(f"{email}/token", a.secret(a.password_env).get_secret_value())
        super().__init__(api, transport, auth=basic)
        self.prefix = f"/api/{api.version}"

    def _export(self, resource: str, since: str | None) -> Iterator[tuple[list[dict[str, Any]], str]]:
        params: dict[str, Any] = {"per_page": PAGE, **({"cursor": since} if since else {"start_time": 0})}
        while True:
            data = self.http.request("GET", f"{self.prefix}/incremental/{resource}/cursor.json",
                                     params=params).body
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
        """These users by id, as they are now: 100 ids a `users/show_many` call."""
        found: dict[int, dict[str, Any]] = {}
        wanted = sorted(ids)
        for start in range(0, len(wanted), SHOW_MANY):
            chunk = ",".join(str(i) for i in wanted[start:start + SHOW_MANY])
            data = self.http.request("GET", f"{self.prefix}/users/show_many.json", params={"ids": chunk}).body
            found.update({u["id"]: u for u in data["users"]})
        return found

    def index(self, resource: str, id_path: str) -> dict[str, str]:
        """Our id (Zendesk's external_id) -> Zendesk's id, over every user or custom object record."""
        return {str(r["external_id"]): str(r["id"]) for r in self._listed(resource) if r.get("external_id")}

    def scan(self, resource: str) -> Iterator[dict[str, Any]]:
        """Every user, or every record of a custom object we load, as it is now."""
        if resource in self.custom_objects:
            yield from self._listed(resource)
            return
        yield from super().scan(resource)

    def _listed(self, resource: str) -> Iterator[dict[str, Any]]:
        """Every user or custom object record, by cursor pages (Zendesk refuses offset pages past 10,000)."""
        if resource == "users":
            url: str | None = f"{self.prefix}/users.json?page%5Bsize%5D={LIST_PAGE}"
            while url:
                data = self.http.request("GET", url).body
                yield from data["users"]
                url = data["links"]["next"] if data["meta"]["has_more"] else None
            return
        after = None
        while True:
            params = {"page[size]": LIST_PAGE, **({"page[after]": after} if after else {})}
            data = self.http.request("GET", self._records(resource), params=params).body
            yield from data["custom_object_records"]
            if not data["meta"]["has_more"]:
                return
            after = data["meta"]["after_cursor"]

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """Zendesk's own upserts by external_id, so a repeated send never duplicates (retried freely)."""
        if resource == "users":
            data = self.http.request("POST", f"{self.prefix}/users/create_or_update.json",
                                     json={"user": payload}).body
            return str(data["user"]["id"])
        body = {k: v for k, v in payload.items() if k != "external_id"}
        data = self.http.request("PATCH", self._records(resource), json={"custom_object_record": body},
                                 params={"external_id": payload["external_id"]}).body
        return str(data["custom_object_record"]["id"])

    def remove(self, resource: str, external_id: str, action: str) -> None:
        """DELETE the user; one deleted already (404) is done."""
        self.http.request("DELETE", f"{self.prefix}/users/{external_id}.json", ok=(404,))

    def _records(self, resource: str) -> str:
        return f"{self.prefix}/custom_objects/{self.custom_objects[resource]}/records"
