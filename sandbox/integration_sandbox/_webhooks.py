"""Webhook delivery with the vendors' at-least-once habits: retries with backoff, duplicates, no order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

from integration_project.webhooks.signatures import SCHEMES

from ._store import Store

# (body, event id, event type, receiver URL) -> signature headers
Signer = Callable[[bytes, str, str, str], dict[str, str]]

MAX_ATTEMPTS = 8
BASE_DELAY = 0.5  # seconds; doubles per failed attempt, with jitter, capped at MAX_DELAY
MAX_DELAY = 60.0
POLL_SECONDS = 0.2

log = logging.getLogger("integration_sandbox.webhooks")


def signer(scheme: str, secret: str) -> Signer:
    """A signer for one of `integration_project.webhooks.signatures.SCHEMES`."""
    chosen, key = SCHEMES[scheme], SecretStr(secret)

    def sign(body: bytes, event_id: str, event_type: str, url: str) -> dict[str, str]:
        return chosen.sign(body, key, event_id=event_id, event_type=event_type, url=url)

    return sign


def event(event_id: str, event_type: str, payload: Any) -> dict[str, Any]:
    """An outbox entry: the id and type the signature headers carry, and the JSON body to post."""
    return {"id": event_id, "type": event_type, "payload": payload}


class Deliverer:
    """Posts the store's outbox to one receiver until each event is acknowledged with a 2xx."""

    def __init__(self, store: Store, url: str, sign: Signer, duplicate_rate: float, seed: int):
        self.store, self.url, self.sign, self.duplicate_rate = store, url, sign, duplicate_rate
        self.rng = random.Random(seed)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start delivering in the background."""
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop delivering; undelivered events stay in the outbox for the next start."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                try:
                    await self._round(client)
                except Exception:  # e.g. the store busy: the events stay due, and delivery goes on
                    log.exception("webhook delivery round failed; its events stay in the outbox")
                await asyncio.sleep(POLL_SECONDS)

    async def _round(self, client: httpx.AsyncClient) -> None:
        """Deliver the events due now, shuffled and concurrently (vendors promise no ordering)."""
        due = self.store.due(time.time())
        self.rng.shuffle(due)
        for failed in await asyncio.gather(*(self._deliver(client, *entry) for entry in due), return_exceptions=True):
            if isinstance(failed, Exception):
                log.error("webhook delivery failed; the event stays in the outbox", exc_info=failed)

    async def _deliver(self, client: httpx.AsyncClient, outbox_id: int, entry: dict[str, Any], attempts: int) -> None:
        body = json.dumps(entry["payload"], separators=(",", ":")).encode()
        headers = {"content-type": "application/json", **self.sign(body, entry["id"], entry["type"], self.url)}
        try:
            response = await client.post(self.url, content=body, headers=headers)
            ok = response.is_success
        except httpx.HTTPError:
            ok = False
        if ok:
            self.store.delivered(outbox_id)
            if self.rng.random() < self.duplicate_rate:
                with contextlib.suppress(httpx.HTTPError):
                    await client.post(self.url, content=body, headers=headers)
            return
        attempts += 1
        if attempts >= MAX_ATTEMPTS:
            log.warning("webhook %s given up after %d attempts", entry["id"], attempts)
            self.store.delivered(outbox_id)
            return
        delay = min(MAX_DELAY, BASE_DELAY * 2 ** (attempts - 1)) * (0.5 + self.rng.random())
        self.store.retry_at(outbox_id, attempts, time.time() + delay)
