"""Group commit: concurrent deliveries share commits; a failing delivery fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from integration_project.webhooks.group_commit import GroupCommitter
from integration_project.webhooks.inbox import Delivery, Inbox
from integration_project.webhooks.signatures import Event


class CountingInbox(Inbox):
    """An inbox that records the size of every commit and refuses system 'poison'."""

    commits: list[int]

    def add_many(self, deliveries: Sequence[Delivery]) -> list[list[int]]:
        """Record the batch size; fail the whole batch if it holds a poisoned delivery."""
        self.commits.append(len(deliveries))
        if any(delivery.system == "poison" for delivery in deliveries):
            raise ValueError("cannot store this one")
        return super().add_many(deliveries)


@pytest.fixture
def inbox(sqlite_url: str) -> CountingInbox:
    """A counting inbox on an empty SQLite file."""
    inbox = CountingInbox(sqlite_url)
    inbox.commits = []
    return inbox


def one(n: int) -> list[Event]:
    """A one-event delivery."""
    return [Event(f"evt_{n}", "t", b"{}")]


def test_concurrent_deliveries_share_commits(inbox: CountingInbox) -> None:
    """200 deliveries at once take far fewer than 200 commits, and each gets its own id back."""
    committer = GroupCommitter(inbox)

    async def burst() -> list[list[int]]:
        return await asyncio.gather(*(committer.add("shop", one(n), {}) for n in range(200)))

    results = asyncio.run(burst())
    assert sum(inbox.commits) == 200
    assert len(inbox.commits) < 20
    assert sorted(ids[0] for ids in results) == [row.id for row in inbox.pending("shop", limit=500)]


def test_a_failing_delivery_fails_alone(inbox: CountingInbox) -> None:
    """The batch is retried one by one: the poisoned delivery raises, the others are stored."""
    committer = GroupCommitter(inbox)

    async def burst() -> list[list[int] | BaseException]:
        adds = [committer.add("poison" if n == 3 else "shop", one(n), {}) for n in range(8)]
        return await asyncio.gather(*adds, return_exceptions=True)

    results = asyncio.run(burst())
    assert isinstance(results[3], ValueError)
    assert all(isinstance(r, list) and len(r) == 1 for i, r in enumerate(results) if i != 3)
    assert len(inbox.pending("shop")) == 7


def test_a_new_event_loop_gets_a_new_writer(inbox: CountingInbox) -> None:
    """The committer keeps working when used from another event loop (a restarted server, a new test client)."""
    committer = GroupCommitter(inbox)
    assert len(asyncio.run(committer.add("shop", one(1), {}))) == 1
    assert len(asyncio.run(committer.add("shop", one(2), {}))) == 1
    assert asyncio.run(committer.add("shop", one(2), {})) == []
