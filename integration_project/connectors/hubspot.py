"""HubSpot CRM on a date-based API version (`/crm/objects/<version>/...`): full scans by id, then
incremental reads through the search API, looking back by its index's delay; contact updates in
batches of up to 100."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import httpx

from integration_project.connectors.base import HttpConnector, Ours, Outcome, Page, Upsert
from integration_project.connectors.budget import Budget
from integration_project.connectors.http import server_time
from integration_project.errors import PermanentError, StopRun, TransientError
from integration_project.model import Api
from integration_project.model.mapping import get_path
from integration_project.model.rest import RateLimit

PAGE = 100
BATCH = 100  # the most inputs HubSpot's batch endpoints take in one call
HISTORY_PAGE = 50  # HubSpot's largest page when property history is asked for
SEARCH_CAP = 10_000  # HubSpot's search returns at most 10,000 results per query
# A change shows in search results only once HubSpot has indexed it, seconds (at busy times
# minutes) after it was made: an incremental search looks back this far before its cursor.
INDEXING_LAG = timedelta(minutes=5)
# Each object's path segment as HubSpot's published specs give it, and its modification date.
OBJECT_PATHS = {"contacts": "contacts", "companies": "companies", "deals": "0-3"}
MODIFIED = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate"}
# HubSpot's search endpoints take 5 requests a second per account and answer without rate-limit
# headers: searches are paced one per 0.3 s (any second holds at most 4), shared by every process
SEARCH_INTERVAL = 0.3
WINDOWS = {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0}  # a short limit's policy -> its window, seconds


def _refusal(response: httpx.Response) -> None:
    """HubSpot's 429 names the limit hit (`policyName`): the daily one stops the run, for it resets
    only at midnight in the account's time zone; a shorter one is waited out, the request unsent."""
    if response.status_code != 429:
        return
    try:
        body = response.json()
    except ValueError:
        return
    policy = body.get("policyName") if isinstance(body, dict) else None
    where = f"{response.request.method} {response.request.url.path}"
    if policy == "DAILY":
        limit = response.headers.get("X-HubSpot-RateLimit-Daily")
        raise StopRun(f"{where}: HTTP 429: HubSpot's daily request limit for this account"
                      f"{f' ({limit} a day)' if limit else ''} is spent; it resets at midnight in the account's "
                      "time zone, so the run stops instead of retrying; its records stay pending")
    if policy in WINDOWS:
        interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "")
        wait = int(interval) / 1000 if interval.isdigit() else WINDOWS[policy]
        raise TransientError(f"{where}: HTTP 429 ({policy})", retry_after=wait, unsent=True)


def _ms(record: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(record["updatedAt"].replace("Z", "+00:00")).timestamp() * 1000)


def _text(value: Any) -> str:
    """A property value as HubSpot takes it: a string, empty to clear it."""
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


class HubSpot(HttpConnector):
    """Reads CRM objects (contacts, deals, companies) oldest change first; updates contacts.

    HubSpot returns only the properties asked for, so every read asks for those the flows map
    (`properties.<name>` paths, given to `select`), and links records by associations: a path
    `associations.<object type>.results.0.id` asks for them (read with the list, or in one batch
    per search page). Searches are paced under HubSpot's own limit for them (SEARCH_INTERVAL); a
    429 is read by the limit it names (`_refusal`). The CRM is the customer master, so a load only
    updates the contact it finds (by its id, or by email as HubSpot's unique property); one it
    cannot find is refused, never created from another system's data.
    """

    extracts = frozenset(OBJECT_PATHS)
    tombstones = extracts
    loads = frozenset({"contacts"})
    batches = {"contacts": BATCH}
    # HubSpot's rolling 10-s limit per app: when its remaining count is 0, wait out the window
    rate_limit = RateLimit(remaining_header="X-HubSpot-RateLimit-Remaining",
                           reset_header="X-HubSpot-RateLimit-Interval-Milliseconds", reset="milliseconds")

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None):
        super().__init__(api, transport)
        self.http.refusal = _refusal
        self.searches = Budget(f"{self.http.base.netloc.decode()} search", 1 / SEARCH_INTERVAL)
        self.version = api.version
        self._properties: dict[str, set[str]] = {}
        self._associations: dict[str, set[str]] = {}

    def select(self, resource: str, paths: Collection[str]) -> None:
        """Ask for these properties and associations whenever `resource` is read."""
        for path in paths:
            head, _, rest = path.partition(".")
            if head == "properties" and rest:
                self._properties.setdefault(resource, set()).add(rest.split(".", 1)[0])
            elif head == "associations" and rest:
                self._associations.setdefault(resource, set()).add(rest.split(".", 1)[0])

    def _objects(self, resource: str) -> str:
        return f"/crm/objects/{self.version}/{OBJECT_PATHS[resource]}"

    def _props(self, resource: str, *extra: str) -> list[str]:
        return sorted(self._properties.get(resource, set()) | {p for p in extra if p})

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """A full scan when there is no cursor (or search cannot progress), else changes since it.

        The cursor is the newest change read; each search looks back INDEXING_LAG before it, so a
        change made before the cursor but indexed late is read by a later run (the hub skips what
        it already holds), and a read that finds nothing new leaves the cursor where it was.
        """
        if since is None:
            yield from self._scan(resource)
            return
        cursor, offset = int(since), 0
        modified, lag = MODIFIED[resource], int(INDEXING_LAG.total_seconds() * 1000)
        while True:
            body = {"filterGroups": [{"filters": [
                        {"propertyName": modified, "operator": "GTE", "value": str(max(cursor - lag, 0))}]}],
                    "sorts": [modified], "limit": PAGE, "after": str(offset), "properties": self._props(resource)}
            self.searches.acquire()
            data = self.http.request("POST", f"{self._objects(resource)}/search", json=body).body
            records = self._associate(resource, data["results"])
            newest = max((_ms(r) for r in records), default=cursor)
            yield Page(records, str(max(newest, int(since))))
            if "paging" not in data:
                return
            offset += len(records)
            if offset + PAGE > SEARCH_CAP:  # restart the query from the newest change read
                if newest <= cursor:  # more than the cap within the look-back: only a scan is safe
                    yield from self._scan(resource)
                    return
                cursor, offset = newest, 0

    def deleted(self, resource: str) -> Iterator[dict[str, Any]]:
        """The archived records (HubSpot's delete archives; it keeps them 90 days), as a scan reads them."""
        for page in self._scan(resource, archived="true"):
            yield from page.records

    def _associate(self, resource: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Search results with the associations asked for, as a list read shows them."""
        if not records:
            return records
        for other in sorted(self._associations.get(resource, ())):
            body = {"inputs": [{"id": r["id"]} for r in records]}
            data = self.http.request("POST", f"/crm/associations/{self.version}/{resource}/{other}/batch/read",
                                     json=body).body
            linked = {str(item["from"]["id"]): [{"id": str(to["toObjectId"]),
                                                 "type": str(to["associationTypes"][0]["typeId"])
                                                 if to.get("associationTypes") else ""}
                                                for to in item["to"]] for item in data["results"]}
            for record in records:
                record.setdefault("associations", {})[other] = {"results": linked.get(record["id"], [])}
        return records

    def versions(self, resource: str, paths: Sequence[str]) -> Iterator[tuple[dict[str, Any], dict[str, int]]]:
        """Every record with the number of values each `properties.*` path has had (HubSpot's
        `propertiesWithHistory`)."""
        names = {path.removeprefix("properties."): path for path in paths if path.startswith("properties.")}
        for page in self._scan(resource, HISTORY_PAGE, propertiesWithHistory=",".join(names)):
            for record in page.records:
                past = record.pop("propertiesWithHistory", {})
                yield record, {names[name]: len(values) for name, values in past.items() if name in names}

    def _scan(self, resource: str, limit: int = PAGE, *extra_properties: str, **extra: str) -> Iterator[Page]:
        """Every record by id; the cursor (the older of the newest change and the listing's start:
        a record changed meanwhile is read again) is committed only with the last page."""
        after, newest, began = None, 0, None
        associations = ",".join(sorted(self._associations.get(resource, ())))
        while True:
            params = {"limit": limit, "properties": ",".join(self._props(resource, *extra_properties)), **extra,
                      **({"associations": associations} if associations else {}), **({"after": after} if after else {})}
            response, data = self.http.request("GET", self._objects(resource), params=params)
            began = began or int(server_time(response).timestamp() * 1000) - 1000
            records = data["results"]
            newest = max([newest, *(_ms(r) for r in records)])
            after = data.get("paging", {}).get("next", {}).get("after")
            yield Page(records, None if after else str(min(newest, began)))
            if not after:
                return

    def index(self, resource: str, id_path: str) -> dict[str, str]:
        """Our id (at `id_path`, e.g. properties.email) -> CRM id; the oldest record wins a tie."""
        found: dict[str, str] = {}
        for page in self._scan(resource, PAGE, id_path.removeprefix("properties.") if id_path.startswith("properties.")
                               else ""):
            for record in page.records:
                if (ours := get_path(record, id_path)) is not None:
                    found.setdefault(str(ours), record["id"])
        return found

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """Update one record, as `upsert_many` does (a contact not found is refused)."""
        outcome = self.upsert_many(resource, [Upsert(external_id, payload, ours)])[0]
        if isinstance(outcome, PermanentError):
            raise outcome
        return outcome

    def upsert_many(self, resource: str, writes: Sequence[Upsert]) -> list[Outcome]:
        """Update records through the batch update, up to BATCH a call, each by its id or else by
        email (HubSpot's unique property): an update never creates, so a contact not found is refused.

        HubSpot answers 207 listing the inputs it could not update (the others are written), and
        refuses a whole batch for one invalid input with a 400: the inputs it names are refused,
        the rest sent again; a refusal naming none of them is narrowed down by halving the batch.
        Two inputs for the same record go in separate calls (HubSpot refuses duplicate ids)."""
        outcomes: list[Outcome | None] = [None] * len(writes)
        inputs: list[tuple[int, dict[str, Any]]] = []
        for n, write in enumerate(writes):
            item = _input(write)
            if item is None:
                outcomes[n] = PermanentError(f"no {resource} record to update: no id and no email; "
                                             "the CRM creates its own")
            else:
                inputs.append((n, item))
        for chunk in _chunks(inputs):
            for n, outcome in self._update(resource, chunk).items():
                outcomes[n] = outcome
        return cast(list[Outcome], outcomes)  # every write has its outcome now

    def _update(self, resource: str, chunk: list[tuple[int, dict[str, Any]]]) -> dict[int, Outcome]:
        """One batch update call (more where HubSpot refuses the batch): each input's outcome."""
        body = {"inputs": [{**item, "objectWriteTraceId": str(n)} for n, item in chunk]}
        reply = self.http.request("POST", f"{self._objects(resource)}/batch/update", json=body, ok=(207, 400))
        data = reply.body if isinstance(reply.body, dict) else {}
        if reply.response.status_code == 400:
            named = {n for n, item in chunk if _key(item) in _named(data)}
            if len(chunk) == 1 or named:
                refused = named or {chunk[0][0]}
                why = PermanentError(f"HubSpot refused the {resource} update: {data.get('category', 'HTTP 400')}: "
                                     f"{data.get('message', '')}")
                rest = [(n, item) for n, item in chunk if n not in refused]
                return {**dict.fromkeys(refused, why), **(self._update(resource, rest) if rest else {})}
            half = len(chunk) // 2
            return {**self._update(resource, chunk[:half]), **self._update(resource, chunk[half:])}
        by_trace = {str(r.get("objectWriteTraceId")): str(r["id"]) for r in data.get("results", [])}
        by_id = {str(r["id"]) for r in data.get("results", [])}
        errors = [(e, _named(e)) for e in data.get("errors", [])]
        outcomes: dict[int, Outcome] = {}
        for n, item in chunk:
            if str(n) in by_trace:
                outcomes[n] = by_trace[str(n)]
            elif "idProperty" not in item and item["id"] in by_id:
                outcomes[n] = item["id"]
            else:
                said = next((f"{e.get('category')}: {e.get('message')}" for e, ids in errors if _key(item) in ids),
                            "not in HubSpot's answer")
                outcomes[n] = PermanentError(f"no {resource} record to update ({said}): the CRM creates its own")
        return outcomes


def _input(write: Upsert) -> dict[str, Any] | None:
    """A batch update input: by the record's id, else by email; None without either."""
    properties = {k: _text(v) for k, v in write.payload.get("properties", {}).items()}
    if write.external_id is not None:
        return {"id": write.external_id, "properties": properties}
    if properties.get("email"):
        return {"id": properties["email"], "idProperty": "email",
                "properties": {k: v for k, v in properties.items() if k != "email"}}
    return None


def _key(item: dict[str, Any]) -> str:
    """How HubSpot names an input in its errors: its id as sent, in any case (an email's)."""
    return str(item["id"]).lower()


def _named(error: dict[str, Any]) -> set[str]:
    """The inputs an error names (its context's ids), as `_key` gives them."""
    return {str(v).lower() for values in (error.get("context") or {}).values()
            for v in (values if isinstance(values, list) else [values])}


def _chunks(inputs: list[tuple[int, dict[str, Any]]]) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """Calls of up to BATCH inputs, none naming a record twice (HubSpot refuses duplicate ids)."""
    chunk, keys, later = [], set(), []
    for entry in inputs:
        if _key(entry[1]) in keys:
            later.append(entry)
            continue
        chunk.append(entry)
        keys.add(_key(entry[1]))
        if len(chunk) == BATCH:
            yield chunk
            chunk, keys = [], set()
    if chunk:
        yield chunk
    if later:
        yield from _chunks(later)
