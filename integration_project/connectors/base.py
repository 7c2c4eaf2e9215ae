"""What a connector offers the sync engine: pages of changed records out, upserts in."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from integration_project.connectors.http import TIMEOUT, Reply, VendorClient
from integration_project.errors import PermanentError
from integration_project.model import Api
from integration_project.model.rest import RateLimit
from integration_project.model.mapping import get_path


@dataclass
class Page:
    """A batch of raw records and the cursor that is safe to store once they are committed."""

    records: list[dict[str, Any]]
    cursor: str | None


@dataclass(frozen=True)
class Ours:
    """A record we load, known by our id at `path` in the system (the binding's identity field)."""

    path: str
    id: str


@dataclass(frozen=True)
class Upsert:
    """One record of a batch write, as `Connector.upsert` takes it."""

    external_id: str | None
    payload: dict[str, Any]
    ours: Ours | None = None


Outcome = str | PermanentError  # a batch write's answer for one record: its id in the system, or the refusal


class Patterns(frozenset[str]):
    """Resource names given as shell patterns: `lists/*/members` holds `lists/a1b2/members`."""

    def __new__(cls, patterns: Iterable[str]) -> Patterns:
        return super().__new__(cls, patterns)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(fnmatchcase(name, p) for p in self)


class Connector:
    """Base of the connectors: override `pages` to extract and `index`/`upsert` to load.

    `extracts` and `loads` name the resources a connector really supports; a flow whose
    resources are not supported is shown as planned, never run half-way.
    """

    extracts: ClassVar[frozenset[str]] = frozenset()
    loads: ClassVar[frozenset[str]] = frozenset()
    tombstones: ClassVar[frozenset[str]] = frozenset()  # resources whose deleted records `deleted` lists
    # resources read as whole snapshots (a full export): a page with a cursor ends one, and a record
    # the source held before that is missing from it was deleted there
    snapshots: ClassVar[frozenset[str]] = frozenset()
    removes: ClassVar[dict[str, frozenset[str]]] = {}  # an on_delete action (delete, archive) -> its resources
    # resources written in batches (`upsert_many`) -> the most records the vendor takes in one call
    batches: ClassVar[dict[str, int]] = {}

    def __init__(self, api: Api):
        """Connect to the API a system declares (credentials are read from the environment)."""

    @classmethod
    def supports(cls, api: Api | None) -> tuple[Collection[str], Collection[str]]:
        """The resources this connector extracts and loads for a declared API (its class's own by
        default; a declarative connector's come from the declaration)."""
        return cls.extracts, cls.loads

    @classmethod
    def refused_value(cls, resource: str, path: str, value: str) -> str | None:
        """Why the vendor would refuse this value of a resource's field (one outside its enum, say),
        or None; checked at load against every value a binding's value map names."""
        return None

    @staticmethod
    def unsupported(resource: str, verb: str) -> str | None:
        """What a resource this connector cannot `verb` (extract, load) should look like, if it can say."""
        return None

    def select(self, resource: str, paths: Collection[str]) -> None:
        """The source paths the system's bindings read from `resource` (their mapping's values),
        given once on connecting: an API that returns only the fields asked for is asked for these.
        Nothing to do by default."""

    def prepare(self, resource: str, model: type[BaseModel], mapping: dict[str, str], key: str) -> None:
        """Make a resource ready to receive an object's records, mapped so (a table created or
        migrated, say); called before a flow delivers. Nothing to do by default."""

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Records changed since the cursor, oldest first, a page at a time."""
        raise NotImplementedError(f"{type(self).__name__} cannot extract {resource}")

    def deleted(self, resource: str) -> Iterator[dict[str, Any]]:
        """The records the system reports deleted (or archived), shaped as `pages` shapes records, so
        the binding's identity path finds their ids; for the resources in `tombstones`."""
        raise NotImplementedError(f"{type(self).__name__} reports no deletes of {resource}")

    def announced_deletion(self, resource: str, event_type: str, payload: Any) -> dict[str, Any] | None:
        """The record a webhook event says was deleted, shaped as `pages` shapes records (its id where
        the binding's identity path finds it), for a delete the API cannot list afterwards (so not in
        `tombstones`); None for any other event (the run reads the change from the API). None here."""
        return None

    def scan(self, resource: str) -> Iterator[dict[str, Any]]:
        """Every record the system holds now, read-only (a full scan by default)."""
        for page in self.pages(resource, since=None):
            yield from page.records

    def changed(self, resource: str, since: str | None) -> Iterator[dict[str, Any]]:
        """The records changed since a cursor, as `pages` reads them, read-only (nothing moved nor
        set aside): what the next extraction would read, for reconciliation."""
        for page in self.pages(resource, since):
            yield from page.records

    def versions(self, resource: str, paths: Sequence[str]) -> Iterator[tuple[dict[str, Any], dict[str, int]]]:
        """Every record (a full scan) with how many values each of these source paths has had, for
        the paths whose history the system keeps ({} for a system that keeps none)."""
        for record in self.scan(resource):
            yield record, {}

    def fetch(self, resource: str, id_path: str, ids: set[str]) -> list[dict[str, Any]]:
        """The current version of these records (by our id at `id_path`); a full scan by default."""
        return [r for r in self.scan(resource) if str(get_path(r, id_path)) in ids]

    def normal(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        """A record of `resource`, a payload sent or one `scan` read back, with the values the system
        normalises in their normal form (Mailchimp's emails in any case), for reconciliation to
        compare; applied to both, so it must be idempotent. As is by default. A connector that
        cannot read back a resource it loads raises NotImplementedError from `scan`."""
        return record

    def takes_changes(self, resource: str) -> bool:
        """Whether an update of a record in `resource` reaches the system (False: it keeps the first
        version it was given, a later one is acknowledged without a call; reconciliation then
        compares its records by id only)."""
        return True

    def index(self, resource: str, id_path: str) -> dict[str, str] | None:
        """Our record id -> the system's id, for records we may have created before; None when
        the system keeps no records of ours to list (writes made safe another way)."""
        raise NotImplementedError(f"{type(self).__name__} cannot load {resource}")

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        """Create (no external id) or update a record; return the system's id.

        Transient failures are retried here (the engine sends each record once). A create whose
        answer may be lost after the system acted is not sent again blindly: the record is first
        looked up by `ours` (with `index`) and updated if found; without `ours` it is sent once.
        Called from up to the API's `concurrency` threads at once: a write that checks then acts
        must hold its own lock.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot load {resource}")

    def upsert_many(self, resource: str, writes: Sequence[Upsert]) -> list[Outcome]:
        """Write up to `batches[resource]` records at once, as `upsert` writes each; one outcome per
        write, in order: the system's id, or the PermanentError refusing that record alone (the
        others still written).

        Transient failures are retried here; one that persists is raised, and every record of the
        batch stays pending (looked up before it is sent again, as for `upsert`). Called from up to
        the API's `concurrency` threads at once.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot write {resource} in batches")

    def remove(self, resource: str, external_id: str, action: str) -> None:
        """Delete or archive (`action`, one of `removes`) a record we delivered; a record already
        gone counts as done. Transient failures are retried here, as for `upsert`."""
        raise NotImplementedError(f"{type(self).__name__} cannot {action} {resource}")

    def deprecations(self) -> dict[str, str]:
        """Endpoints the vendor announced as deprecated during this connector's calls (none here)."""
        return {}

    def quarantined(self) -> dict[str, str]:
        """Inputs set aside unread during this connector's reads (name -> reason), for the owners' alert."""
        return {}

    def retries(self) -> int:
        """How many calls were retried after a transient failure (not counted here)."""
        return 0

    def close(self) -> None:
        """Release connections."""


class HttpConnector(Connector):
    """Base of the connectors to an HTTP API: every call goes through one VendorClient, `http`."""

    deprecation_headers: ClassVar[tuple[str, ...]] = ()  # the vendor's own, besides Deprecation and Sunset
    rate_limit: ClassVar[RateLimit | None] = None  # the vendor's rate-limit headers, unless the declaration names them
    version_header: ClassVar[str | None] = None  # where the vendor names the version it served
    timeout: ClassVar[httpx.Timeout] = TIMEOUT  # a vendor's slow answers (large pages) get a longer one
    max_in_flight: ClassVar[int | None] = None  # the vendor's limit of simultaneous requests, if it has one

    def __init__(self, api: Api, transport: httpx.BaseTransport | None = None,
                 headers: dict[str, str] | None = None, auth: httpx.Auth | None = None):
        """Connect to the declared API; `transport` replaces the network (httpx.MockTransport in
        tests); `auth` sends the declared credentials in the vendor's own form."""
        self.http = VendorClient(api, headers, transport, self.deprecation_headers, self.timeout, auth,
                                 self.version_header, self.max_in_flight)
        self.http.rate_limit = self.http.rate_limit or self.rate_limit

    def recovery(self, resource: str, ours: Ours | None,
                 update: Callable[[str], Reply]) -> Callable[[], Reply | None] | None:
        """How a create whose answer was lost recovers: the record found by our id is updated
        (`update` with its id), else the create is sent again; None (sent once) without `ours`."""
        if ours is None:
            return None

        def recover() -> Reply | None:
            found = (self.index(resource, ours.path) or {}).get(ours.id)
            return None if found is None else update(found)

        return recover

    def deprecations(self) -> dict[str, str]:
        """Endpoints the vendor announced as deprecated during this connector's calls."""
        return dict(self.http.deprecations)

    def retries(self) -> int:
        """How many calls were retried after a transient failure."""
        return self.http.retries

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()
