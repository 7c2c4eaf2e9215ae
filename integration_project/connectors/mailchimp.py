"""Mailchimp Marketing API 3.0: audience members out by `since_last_changed`, in by subscriber hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx

from integration_project.connectors.base import HttpConnector, Ours, Page, Patterns
from integration_project.connectors.http import server_time
from integration_project.model import Api
from integration_project.model.mapping import get_path

PAGE = 1000


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lower-cased email."""
    return hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 - the vendor's id, not security


class Mailchimp(HttpConnector):
    """Audience members (`lists/<list id>/members`) read and written.

    Members are listed by offset in id order, so the cursor (the older of the newest change seen
    and Mailchimp's clock when the listing began) is committed with the last page only. Writes
    PUT the member at its subscriber hash, which creates or updates it; a new member starts as
    `pending` (double opt-in), and an existing member's consent is never changed by us.
    """

    extracts = Patterns({"lists/*/members"})
    loads = Patterns({"lists/*/members"})

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None):
        super().__init__(api, transport)
        self.prefix = f"/{api.version}"

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Members changed after the cursor, a page at a time; the cursor comes with the last page."""
        offset, began = 0, None
        newest = datetime.fromisoformat(since) if since else None
        while True:
            params = {"offset": offset, "count": PAGE, **({"since_last_changed": since} if since else {})}
            response, body = self.http.request("GET", f"{self.prefix}/{resource}", params=params)
            began = began or server_time(response) - timedelta(seconds=1)
            records = body["members"]
            for record in records:
                changed = datetime.fromisoformat(record["last_changed"])
                newest = changed if newest is None else max(newest, changed)
            offset += len(records)
            last = not records or offset >= body["total_items"]
            cursor = min(newest, began).isoformat() if newest else since
            yield Page(records, cursor if last else None)
            if last:
                return

    def index(self, resource: str, id_path: str) -> dict[str, str]:
        """Our id (at `id_path`, e.g. merge_fields.CRM_ID) -> subscriber hash, over every member."""
        return {str(get_path(m, id_path)): m["id"] for page in self.pages(resource, None)
                for m in page.records if get_path(m, id_path)}

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """PUT the member at the hash of its email (create or update); returns the subscriber hash."""
        member = subscriber_hash(payload["email_address"])
        body = {**payload, "status_if_new": "pending"}
        body["merge_fields"] = {k: str(v) for k, v in body.get("merge_fields", {}).items()}
        self.http.request("PUT", f"{self.prefix}/{resource}/{member}", json=body)
        return member
