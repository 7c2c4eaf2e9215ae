"""What a connector offers the sync engine: pages of changed records out, upserts in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from integration_project.model import Api
from integration_project.model.mapping import get_path


@dataclass
class Page:
    """A batch of raw records and the cursor that is safe to store once they are committed."""

    records: list[dict[str, Any]]
    cursor: str | None


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

    def __init__(self, api: Api):
        """Connect to the API a system declares (credentials are read from the environment)."""

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Records changed since the cursor, oldest first, a page at a time."""
        raise NotImplementedError(f"{type(self).__name__} cannot extract {resource}")

    def scan(self, resource: str) -> Iterator[dict[str, Any]]:
        """Every record the system holds now, read-only (a full scan by default)."""
        for page in self.pages(resource, since=None):
            yield from page.records

    def versions(self, resource: str, paths: Sequence[str]) -> Iterator[tuple[dict[str, Any], dict[str, int]]]:
        """Every record (a full scan) with how many values each of these source paths has had, for
        the paths whose history the system keeps ({} for a system that keeps none)."""
        for record in self.scan(resource):
            yield record, {}

    def fetch(self, resource: str, id_path: str, ids: set[str]) -> list[dict[str, Any]]:
        """The current version of these records (by our id at `id_path`); a full scan by default."""
        return [r for r in self.scan(resource) if str(get_path(r, id_path)) in ids]

    def index(self, resource: str, id_path: str) -> dict[str, str] | None:
        """Our record id -> the system's id, for records we may have created before; None when
        the system keeps no records of ours to list (writes made safe another way)."""
        raise NotImplementedError(f"{type(self).__name__} cannot load {resource}")

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any]) -> str:
        """Create (no external id) or update a record; return the system's id.

        An update retries transient failures itself (the engine sends it once); a create is sent
        once and raises TransientError: its answer may be lost after the system acted, so the
        engine looks the record up before sending it again. Called from up to the API's
        `concurrency` threads at once: a write that checks then acts must hold its own lock.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot load {resource}")

    def deprecations(self) -> dict[str, str]:
        """Endpoints the vendor announced as deprecated during this connector's calls."""
        http = getattr(self, "http", None)
        return dict(getattr(http, "deprecations", {}))

    def quarantined(self) -> dict[str, str]:
        """Inputs set aside unread during this connector's reads (name -> reason), for the owners' alert."""
        return {}

    def retries(self) -> int:
        """How many calls were retried after a transient failure."""
        return getattr(getattr(self, "http", None), "retries", 0)

    def note_retry(self) -> None:
        """Count a retry the engine made itself (a create sent again once looked up)."""
        if (http := getattr(self, "http", None)) is not None:
            with http.counting:
                http.retries += 1

    def close(self) -> None:
        """Release connections."""
