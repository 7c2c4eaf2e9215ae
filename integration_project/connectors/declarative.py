"""The declarative connector (`connector: rest`): any REST API whose resources the declaration
describes (model/rest.py), read and written through the one HTTP seam.

Cursors it stores: `t:<value>` once a listing is read to its end (the newest incremental value,
sent back as `start_param`), `c:<json [start, page]>` between pages (the page token, link or
number, with the start it belongs to).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any
from urllib.parse import quote

import httpx

from integration_project.connectors.base import HttpConnector, Ours, Page
from integration_project.connectors.http import Reply
from integration_project.connectors.locks import KeyLocks
from integration_project.errors import PermanentError
from integration_project.model import Api
from integration_project.model.mapping import get_path, set_path
from integration_project.model.rest import PLACEHOLDER, Call, Paginator, Resource, Write

SINGLE_PAGE = Paginator(type="single_page")
_ABSENT = object()


def value(template: str, values: dict[str, Any]) -> Any:
    """A template's value: one whole `{field}` keeps the field's type (absent: _ABSENT), else text."""
    whole = PLACEHOLDER.fullmatch(template)
    if whole:
        found = get_path(values, whole.group(1))
        return _ABSENT if found is None else found
    return PLACEHOLDER.sub(lambda m: "" if (v := get_path(values, m.group(1))) is None else str(v), template)


def path_of(template: str, values: dict[str, Any]) -> str:
    """A path template filled in, each value URL-quoted; a field the record lacks refuses it."""
    def fill(match: Any) -> str:
        found = get_path(values, match.group(1))
        if found is None or found == "":
            raise PermanentError(f"{template}: the record has no {match.group(1)}")
        return quote(str(found), safe="")

    return PLACEHOLDER.sub(fill, template)


def _form(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested fields as form fields, `a[b]=...` (the convention of form-encoded APIs)."""
    out: dict[str, str] = {}
    for key, item in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(item, dict):
            out.update(_form(item, name))
        else:
            out[name] = "" if item is None else str(item)
    return out


def _newer(a: Any, b: Any) -> bool:
    """True when cursor value a is after b: numerically where both are numbers, else as text (ISO times)."""
    try:
        return float(a) > float(b)
    except (TypeError, ValueError):
        return str(a) > str(b)


def _number(item: Any) -> int | float:
    return item if isinstance(item, (int, float)) else float(item) if "." in str(item) else int(item)


class Declared(HttpConnector):
    """A REST API read and written as its declaration says; what it declares is what it supports."""

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None):
        super().__init__(api, transport, headers=dict(api.defaults.headers))
        self.api = api
        # serialize_by: across every process on the hub's PostgreSQL, else this process's threads
        self._locks = KeyLocks(api.url())

    @classmethod
    def supports(cls, api: Api | None) -> tuple[frozenset[str], frozenset[str]]:
        """The resources the declaration reads (those with a path) and writes (those with a write)."""
        resources = api.resources if api else {}
        return (frozenset(n for n, r in resources.items() if r.path),
                frozenset(n for n, r in resources.items() if r.write))

    def _resource(self, name: str) -> Resource:
        found = self.api.resources.get(name)
        if found is None:
            raise PermanentError(f"resource {name!r} is not declared by this API")
        return found

    # --- reads ---------------------------------------------------------------------------------

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Changes since the cursor (everything without one), a page at a time."""
        declared = self._resource(resource)
        if declared.path is None:
            raise PermanentError(f"resource {resource!r} declares no path to read")
        if declared.parent is not None:
            yield from self._children(declared, since)
            return
        start: Any = None
        token: Any = None
        kind, _, rest = (since or "").partition(":")
        if kind == "t":
            start = rest
        elif kind == "c":
            start, token = json.loads(rest)
        yield from self._listing(declared, declared.path, start, token)

    def _listing(self, r: Resource, path: str, start: Any, token: Any) -> Iterator[Page]:
        defaults = self.api.defaults
        pag = r.paginator or defaults.paginator or SINGLE_PAGE
        selector = r.data_selector or defaults.data_selector
        params: dict[str, Any] = {**defaults.params, **r.params}
        inc = r.incremental
        sent = start if start is not None else (inc.initial_value if inc else None)
        if inc and sent is not None:
            params[inc.start_param] = sent
        newest = sent
        while True:
            url, query = self._page_request(pag, path, params, token)
            reply = self.http.request("GET", url, params=query, headers=dict(r.headers))
            records = self._select(reply.body, selector, path)
            if inc:
                for record in records:
                    seen = get_path(record, inc.cursor_path)
                    if seen is not None and (newest is None or _newer(seen, newest)):
                        newest = seen
            token = self._next(pag, reply, records, token)
            if token is None:
                yield Page(records, f"t:{newest}" if inc and newest is not None else None)
                return
            yield Page(records, "c:" + json.dumps([sent, token]))

    @staticmethod
    def _page_request(pag: Paginator, path: str, params: dict[str, Any],
                      token: Any) -> tuple[str, dict[str, Any] | None]:
        """The URL and query of the page a token names (the first page without one)."""
        if token is not None and pag.type in ("json_link", "header_link"):
            return str(token), None  # the link carries its whole query
        query = dict(params)
        if pag.type in ("cursor", "offset", "page_number") and pag.limit_param:
            query[pag.limit_param] = pag.limit
        if pag.type == "cursor" and token is not None:
            query[pag.cursor_param] = token
        elif pag.type == "offset":
            query[pag.offset_param] = token or 0
        elif pag.type == "page_number":
            query[pag.page_param] = pag.base_page if token is None else token
        return path, query or None

    @staticmethod
    def _next(pag: Paginator, reply: Reply, records: list[dict[str, Any]], token: Any) -> Any:
        """The next page's token, None after the last page."""
        body = reply.body if isinstance(reply.body, dict) else {}
        if pag.type == "json_link":
            return get_path(body, pag.next_url_path) or None
        if pag.type == "header_link":
            return reply.response.links.get(pag.links_next_key, {}).get("url") or None
        if pag.type == "cursor":
            return get_path(body, pag.cursor_path) or None
        if pag.type in ("offset", "page_number"):
            if not records or (pag.stop_on_short_page and len(records) < pag.limit):
                return None
            if pag.type == "offset":
                following = int(token or 0) + pag.limit
                total = get_path(body, pag.total_path) if pag.total_path else None
                return None if total is not None and following >= int(total) else following
            page = (pag.base_page if token is None else int(token)) + 1
            total = get_path(body, pag.total_path) if pag.total_path else None
            return None if total is not None and page - pag.base_page >= int(total) else page
        return None

    @staticmethod
    def _select(body: Any, selector: str | None, path: str) -> list[dict[str, Any]]:
        records = get_path(body, selector) if selector else body
        if not isinstance(records, list):
            raise PermanentError(f"GET {path}: no list of records at {selector or 'the body'!r}")
        return records

    def _children(self, r: Resource, since: str | None) -> Iterator[Page]:
        """Each parent page's children (read whole), under the parent page's cursor."""
        assert r.parent is not None and r.path is not None
        parent = r.parent
        for page in self.pages(parent.resource, since):
            children: list[dict[str, Any]] = []
            for record in page.records:
                path = path_of(r.path, {k: get_path(record, field) for k, field in parent.resolve.items()})
                extra = {f"_{parent.resource}_{f}": get_path(record, f) for f in parent.include_from_parent}
                for child_page in self._listing(r, path, None, None):
                    children += [{**child, **extra} for child in child_page.records]
            yield Page(children, page.cursor)

    # --- writes --------------------------------------------------------------------------------

    def _write(self, resource: str) -> Write:
        write = self._resource(resource).write
        if write is None:
            raise PermanentError(f"resource {resource!r} declares no write")
        return write

    def takes_changes(self, resource: str) -> bool:
        """A write with an update call changes a record; one without (or moving an order's lines once) does not."""
        write = self._write(resource)
        return write.each is None and write.update is not None

    def index(self, resource: str, id_path: str) -> dict[str, str] | None:
        """Our id -> the vendor's, from the write's lookup listing; None without a lookup."""
        lookup = self._write(resource).lookup
        if lookup is None:
            return None
        own = self._resource(resource)
        listing = own if lookup.path is None else Resource(path=lookup.path, params=lookup.params,
                                                           data_selector=lookup.data_selector,
                                                           paginator=own.paginator)
        assert listing.path is not None
        found: dict[str, str] = {}
        for page in self._listing(listing.model_copy(update={"incremental": None}), listing.path, None, None):
            for record in page.records:
                ours, theirs = get_path(record, id_path), get_path(record, lookup.id_path)
                if ours is not None and theirs is not None:
                    found[str(ours)] = str(theirs)
        return found

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """Create (no external id) or update one record as the write declares; the vendor's id."""
        write = self._write(resource)
        if write.each is not None:  # an order's lines: moved once, when it is first sent
            return external_id if external_id is not None else self._fan_out(write, payload)
        with self._serial(write, [payload]):
            if external_id is not None:
                if write.update is None:  # the vendor takes no change: acknowledged without a call
                    return external_id
                values = {**payload, "external_id": external_id}
                reply = self.http.request(write.update.method, path_of(write.update.path, values),
                                          empty_ok=True, **self._body(write.update, values))
                return self._id(write, write.update, reply, values, external_id)
            return self._create(resource, write, payload, ours)

    def _create(self, resource: str, write: Write, payload: dict[str, Any], ours: Ours | None) -> str:
        call = write.create or write.update
        assert call is not None
        headers = self._key(write, payload)
        conflict = write.conflict
        # safe to send again: a second create is refused as a conflict, replayed by its key, or a PUT
        safe = bool(conflict or headers or call.method == "PUT")
        adopted: list[str] = []
        recover: Callable[[], Reply | None] | None = None
        if not safe and write.lookup is not None:
            def update(found: str) -> Reply:
                adopted.append(found)
                if write.update is None:
                    return Reply(httpx.Response(200), None)
                values = {**payload, "external_id": found}
                return self.http.request(write.update.method, path_of(write.update.path, values),
                                         empty_ok=True, **self._body(write.update, values))

            recover = self.recovery(resource, ours, update)
        reply = self.http.request(call.method, path_of(call.path, payload), ok=(conflict.status,) if conflict else (),
                                  idempotent=safe, recover=recover, empty_ok=True, headers=headers,
                                  **self._body(call, payload))
        if adopted:
            return adopted[-1]
        if conflict and reply.response.status_code == conflict.status:
            existing = get_path(reply.body, conflict.id_path)
            if existing is None:
                raise PermanentError(f"{call.method} {call.path}: HTTP {conflict.status} names no "
                                     f"existing record at {conflict.id_path!r}")
            return str(existing)
        return self._id(write, call, reply, payload)

    @staticmethod
    def _id(write: Write, call: Call, reply: Reply, values: dict[str, Any], fallback: str | None = None) -> str:
        if call.id_path and reply.body is not None and (found := get_path(reply.body, call.id_path)) is not None:
            return str(found)
        if write.id:
            return str(value(write.id, values))
        if fallback is not None:
            return fallback
        raise PermanentError(f"{call.method} {call.path}: the answer holds no id at {call.id_path!r}")

    @staticmethod
    def _body(call: Call, values: dict[str, Any]) -> dict[str, Any]:
        """The request's body: the template filled in (the mapped payload as is without one)."""
        if call.body is None:
            data = {k: v for k, v in values.items() if k != "external_id"}
        else:
            data = {}
            for field, template in call.body.items():
                filled = value(template, values)
                if filled is not _ABSENT:
                    set_path(data, field, filled)
        return {"json": data} if call.encoding == "json" else {"data": _form(data)}

    @staticmethod
    def _key(write: Write, values: dict[str, Any]) -> dict[str, str]:
        return {write.idempotency_header: str(value(write.idempotency_key, values))} if write.idempotency_key else {}

    def _serial(self, write: Write, items: list[dict[str, Any]]) -> AbstractContextManager[None]:
        """Hold the lock of every `serialize_by` value of these items (KeyLocks: no deadlock)."""
        if not write.serialize_by:
            return nullcontext()
        return self._locks.held(str(get_path(item, write.serialize_by)) for item in items)

    def _fan_out(self, write: Write, payload: dict[str, Any]) -> str:
        """One call per item group, all or nothing where `require` says so: every group is checked
        before any is sent (the API has no transaction). A group that looks short may be one an
        earlier, interrupted attempt already sent: sent again under its idempotency key it is
        replayed (moves nothing new) or refused (nothing moves at all)."""
        each = write.each
        assert each is not None
        top = {k: v for k, v in payload.items() if k != each.items}
        groups: dict[str, dict[str, Any]] = {}
        for item in payload.get(each.items) or []:
            key = str(get_path(item, each.key))
            if key in groups:
                for field in each.sum:
                    groups[key][field] = _number(groups[key][field]) + _number(get_path(item, field))
            else:
                groups[key] = {**top, **item}
        items = list(groups.values())
        with self._serial(write, items):
            if write.require is not None:
                need = write.require
                for item in items:
                    held = get_path(self.http.request("GET", path_of(need.path, item)).body, need.field)
                    wanted = value(need.at_least, item)
                    if _number(held or 0) < _number(wanted) and not self._send_item(write, item, probe=True):
                        facts = {"field": need.field, "key": get_path(item, each.key), "held": held, "needed": wanted}
                        raise PermanentError(str(value(need.message, {**item, **facts})))
            for item in items:
                self._send_item(write, item)
        return str(value(write.id, payload)) if write.id else str(len(items))

    def _send_item(self, write: Write, item: dict[str, Any], probe: bool = False) -> bool:
        """Send one item; True when done (now, or replayed). With `probe`, a refusal is an answer."""
        call = write.create
        assert call is not None
        refused = (write.require.refused_status,) if probe and write.require else ()
        reply = self.http.request(call.method, path_of(call.path, item), ok=refused, empty_ok=True,
                                  headers=self._key(write, item), **self._body(call, item))
        return reply.response.status_code < 300
