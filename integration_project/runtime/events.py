"""Webhook events a run covers: the inbox range it was started for, marked processed once the
changes they announced are committed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from integration_project.model import Ingest

BATCH = 1000  # inbox events covered by one run at most


class _Row(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def event_type(self) -> str: ...
    def payload(self) -> Any: ...


class _Pending(Protocol):
    @property
    def system(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def oldest_received_at(self) -> datetime: ...


class Inbox(Protocol):
    """What marking needs of the webhook inbox (integration_project.webhooks.Inbox has it)."""

    def pending(self, system: str, after_id: int = 0, limit: int = 100) -> Sequence[_Row]: ...
    def mark_processed(self, ids: Iterable[int]) -> int: ...
    def pending_by_type(self) -> Sequence[_Pending]: ...


@dataclass(frozen=True)
class Covered:
    """The inbox ids `first`..`last` of one system's events, as one run covers them."""

    system: str
    first: int
    last: int

    def __str__(self) -> str:
        return f"{self.system}:{self.first}:{self.last}"

    @classmethod
    def parse(cls, text: str) -> Covered:
        """Read back what `str()` wrote."""
        system, first, last = text.rsplit(":", 2)
        return cls(system, int(first), int(last))

    @classmethod
    def before_read(cls, tag: str, inbox: Inbox) -> Covered | None:
        """What a run covers, from its inbox tag, taken just before it reads the source: the tag's
        range, or for `<system>:*` the system's events pending now (at most `BATCH`): a change
        announced before the read begins is in what the read returns."""
        system, _, rest = tag.rpartition(":")
        if rest != "*":
            return cls.parse(tag)
        rows = inbox.pending(system, after_id=0, limit=BATCH)
        return cls(system, rows[0].id, rows[-1].id) if rows else None


@dataclass(frozen=True)
class Backlog:
    """What is left in the inbox of a leg's source after a run: events of the leg's types only
    (events no flow subscribes to are not a backlog)."""

    processed: int
    depth: int
    oldest_age_seconds: float


def covered_events(inbox: Inbox, leg: Ingest, covered: Covered | None) -> list[_Row]:
    """The pending events of the leg's types a run covers (none without a range)."""
    if covered is None:
        return []
    rows = inbox.pending(covered.system, after_id=covered.first - 1, limit=covered.last - covered.first + 1)
    return [r for r in rows if r.id <= covered.last and r.event_type in leg.events]


def announced(inbox: Inbox, leg: Ingest, covered: Covered | None) -> list[tuple[str, Any]]:
    """(event type, body) of the events a run covers: what a connector reads a delete its API
    cannot list from (`Connector.announced_deletion`)."""
    return [(r.event_type, _body(r)) for r in covered_events(inbox, leg, covered)]


def _body(row: _Row) -> Any:
    """An event's body as JSON; None for one that is none (nothing in it to read a delete from)."""
    try:
        return row.payload()
    except ValueError:
        return None


def mark_processed(inbox: Inbox, leg: Ingest, covered: Covered | None) -> Backlog:
    """After the source's changes are committed, mark the covered events of the leg's types
    processed; report the source's backlog."""
    processed = inbox.mark_processed(r.id for r in covered_events(inbox, leg, covered)) if covered else 0
    waiting = [p for p in inbox.pending_by_type() if p.system == leg.source.name and p.event_type in leg.events]
    oldest = min((p.oldest_received_at for p in waiting), default=None)
    return Backlog(processed, sum(p.count for p in waiting),
                   (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0)
