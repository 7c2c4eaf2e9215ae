"""Mailchimp Marketing API 3.0: audience members out by `since_last_changed`, in by subscriber hash."""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx

from integration_project.connectors.base import HttpConnector, Ours, Page, Patterns
from integration_project.connectors.http import Reply, server_time
from integration_project.errors import PermanentError
from integration_project.model import Api
from integration_project.model.mapping import get_path

PAGE = 500  # members a page (Mailchimp allows 1,000; each member is large)
FIELDS_PAGE = 1000  # merge fields a page, Mailchimp's maximum
DATA_CENTRE = "{dc}"  # in the declared base URL: the data centre the API key ends in
TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # as long as Mailchimp's own SDK waits for a page


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lower-cased email."""
    return hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 - the vendor's id, not security


def with_data_centre(api: Api) -> Api:
    """The API with `{dc}` in its URL in force replaced by the data centre the API key ends in
    (`...-us21` -> us21); an override (base_url_env) without `{dc}` is kept as it is."""
    if DATA_CENTRE not in api.url():
        return api
    auth = api.auth
    name = auth.password_env if auth.type == "basic" else auth.token_env
    key = auth.secret(name).get_secret_value() if name else ""
    centre = key.rpartition("-")[2] if "-" in key else ""
    if not re.fullmatch(r"[a-z]+[0-9]+", centre):
        raise PermanentError(f"{name}: a Mailchimp API key ends in -<data centre> (e.g. -us21), "
                             f"which {api.url()} needs")
    return api.model_copy(update={"base_url": api.url().replace(DATA_CENTRE, centre), "base_url_env": None})


class Mailchimp(HttpConnector):
    """Audience members (`lists/<list id>/members`) read and written.

    Members are listed by offset in id order, so the cursor (the older of the newest change seen
    and Mailchimp's clock when the listing began) is committed with the last page only. Writes
    PUT the member at its subscriber hash, which creates or updates it; a new member starts as
    `pending` (double opt-in), and an existing member's consent is never changed by us. A member
    whose email changed is updated at its old hash (PATCH), never made twice. Before the first
    write to an audience its merge fields are listed, and those a payload uses but the audience
    lacks are created (as text), since Mailchimp refuses unknown ones.
    """

    extracts = Patterns({"lists/*/members"})
    loads = Patterns({"lists/*/members"})
    removes = {"archive": loads, "delete": loads}
    timeout = TIMEOUT
    max_in_flight = 10  # "up to 10 simultaneous connections" per user; the 11th is answered 429

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None):
        super().__init__(with_data_centre(api), transport)
        self.prefix = f"/{api.version}"
        self._fields: dict[str, set[str]] = {}  # audience path -> merge field tags it has
        self._fields_lock = threading.Lock()  # the engine loads from several threads

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

    def normal(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        """A member's email in lower case: Mailchimp knows a member by the hash of its lower-cased email,
        and an update of a member keeps the email's case as first written."""
        email = record.get("email_address")
        return {**record, "email_address": email.lower()} if isinstance(email, str) else record

    def index(self, resource: str, id_path: str) -> dict[str, str]:
        """Our id (at `id_path`, e.g. merge_fields.CRM_ID) -> subscriber hash, over every member."""
        return {str(get_path(m, id_path)): m["id"] for page in self.pages(resource, None)
                for m in page.records if get_path(m, id_path)}

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """PUT the member at the hash of its email (create or update), or, when the email changed,
        PATCH it at its old hash (`external_id`); returns the subscriber hash."""
        member = subscriber_hash(payload["email_address"])
        merge = {k: str(v) for k, v in payload.get("merge_fields", {}).items()}
        self._ensure_fields(resource, merge)
        if external_id and external_id != member:
            reply = self.http.request("PATCH", f"{self.prefix}/{resource}/{external_id}", ok=(404,),
                                      json={**payload, "merge_fields": merge})
            if reply.response.status_code != 404:
                return str(reply.body["id"])
        body = {**payload, "merge_fields": merge, "status_if_new": "pending"}
        self.http.request("PUT", f"{self.prefix}/{resource}/{member}", json=body)
        return member

    def remove(self, resource: str, external_id: str, action: str) -> None:
        """Archive the member (DELETE: kept, no longer mailed) or erase it for good (`delete-permanent`:
        Mailchimp then refuses to import the email again); a member not found is done."""
        path = f"{self.prefix}/{resource}/{external_id}"
        if action == "archive":
            self.http.request("DELETE", path, ok=(404,), empty_ok=True)
        else:
            self.http.request("POST", f"{path}/actions/delete-permanent", ok=(404,), empty_ok=True)

    def _ensure_fields(self, resource: str, tags: Iterable[str]) -> None:
        """Create the merge fields `tags` names that the member's audience lacks (listed once)."""
        audience = resource.rsplit("/members", 1)[0]
        with self._fields_lock:
            known = self._fields.get(audience)
            if known is None:
                known = self._fields[audience] = self._merge_fields(audience)
            for tag in sorted(set(tags) - known):
                self.http.request("POST", f"{self.prefix}/{audience}/merge-fields", idempotent=False,
                                  json={"tag": tag, "name": tag, "type": "text"},
                                  recover=functools.partial(self._listed, audience, tag))
                known.add(tag)

    def _merge_fields(self, audience: str) -> set[str]:
        tags: set[str] = set()
        offset = 0
        while True:
            _, body = self.http.request("GET", f"{self.prefix}/{audience}/merge-fields",
                                        params={"offset": offset, "count": FIELDS_PAGE})
            tags |= {f["tag"] for f in body["merge_fields"]}
            offset += len(body["merge_fields"])
            if not body["merge_fields"] or offset >= body["total_items"]:
                return tags

    def _listed(self, audience: str, tag: str) -> Reply | None:
        """After a lost answer to a create: the listing when the merge field exists, else None."""
        reply = self.http.request("GET", f"{self.prefix}/{audience}/merge-fields", params={"count": FIELDS_PAGE})
        return reply if tag in {f["tag"] for f in reply.body["merge_fields"]} else None
