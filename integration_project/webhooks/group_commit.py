"""Group commit: deliveries that arrive while the inbox is committing share the next commit.

A commit costs an fsync (2-4 ms here, on SQLite and PostgreSQL alike), so one commit per
request capped the receiver near 380 events/s (docs/performance.md). One writer per event loop takes every delivery
waiting, commits them in one transaction, and only then releases their requests to answer 2xx;
under load, batches grow by themselves and no request waits for a timer.

A delivery waits at most `commit_timeout` for its commit (a locked or unreachable database can
hold a commit for the driver's own timeout, 30 s on SQLite): `add` then raises TimeoutError and
the request answers 503. A delivery given up on before its batch starts is dropped from it; one
given up on mid-commit may still be stored, which the sender's retry sees as a repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from integration_project.webhooks.inbox import Delivery, Inbox
from integration_project.webhooks.signatures import Event

MAX_BATCH = 256  # deliveries per commit
COMMIT_TIMEOUT = 2.0  # seconds

logger = logging.getLogger(__name__)

_Waiting = tuple[Delivery, "asyncio.Future[list[int]]"]


def _expire(future: asyncio.Future[list[int]]) -> None:
    """Give up on a delivery whose commit has not ended in time."""
    if not future.done():
        future.set_exception(TimeoutError())


class GroupCommitter:
    """Commits deliveries to an inbox in shared transactions; `add` returns once its delivery is committed."""

    def __init__(self, inbox: Inbox, max_batch: int = MAX_BATCH, commit_timeout: float = COMMIT_TIMEOUT) -> None:
        self._inbox = inbox
        self._max_batch = max_batch
        self._commit_timeout = commit_timeout
        self._queue: asyncio.Queue[_Waiting] | None = None
        self._writer: asyncio.Task[None] | None = None
        # One thread of its own: commits are one at a time anyway, and a plain executor hands a
        # batch over with less Python than anyio's worker pool (capacity limiter, context copy).
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-commit")

    async def add(self, system: str, events: Sequence[Event], headers: Mapping[str, str]) -> list[int]:
        """Queue a delivery, wait for the commit that includes it, return the ids stored.

        Raises TimeoutError when that commit has not ended within the commit timeout.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        self._queue_for_this_loop().put_nowait((Delivery(system, events, headers), future))
        timer = loop.call_later(self._commit_timeout, _expire, future)  # a third of asyncio.wait_for's cost
        try:
            return await future
        finally:
            timer.cancel()

    def _queue_for_this_loop(self) -> asyncio.Queue[_Waiting]:
        """The queue, with a live writer task in the running loop (a new loop gets a new writer)."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self._writer = loop.create_task(self._write(self._queue))
        return self._queue

    async def _write(self, queue: asyncio.Queue[_Waiting]) -> None:
        """Forever: take what is waiting, commit it together, release the waiters."""
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            batch = [waiting for waiting in batch if not waiting[1].done()]  # drop those given up on
            if not batch:
                continue
            try:
                results = await self._commit([delivery for delivery, _ in batch])
            except Exception as error:  # noqa: BLE001 - retried one by one below, so one bad delivery fails alone
                logger.warning(
                    "inbox group commit of %d failed (%s); committing one by one", len(batch), type(error).__name__
                )
                await self._one_by_one(batch)
                continue
            for (_, future), ids in zip(batch, results, strict=True):
                if not future.done():  # a request cancelled meanwhile: its events are stored anyway
                    future.set_result(ids)

    async def _commit(self, deliveries: list[Delivery]) -> list[list[int]]:
        """Store the deliveries in one transaction, on the commit thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._inbox.add_many, deliveries)

    async def _one_by_one(self, batch: list[_Waiting]) -> None:
        """Commit each delivery alone; a failure goes to that delivery's request only."""
        for delivery, future in batch:
            if future.done():  # given up on while the batch failed
                continue
            try:
                ids = await self._commit([delivery])
            except Exception as error:  # noqa: BLE001 - handed to the waiting request, which answers 503
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(ids[0])
