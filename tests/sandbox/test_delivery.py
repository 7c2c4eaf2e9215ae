"""Webhook delivery outlives a failing round: the store busy past its timeout loses no later event."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import Delivery, Receiver
from sandbox_clients import client

from integration_sandbox.testing import free_port_sandbox

pytestmark = pytest.mark.server


def test_delivery_goes_on_after_the_store_was_locked_past_its_timeout(tmp_path: Path, receiver: Receiver) -> None:
    with free_port_sandbox(tmp_path, ["crm"], size=5, webhook_url=receiver.url + "/{system}",
                           webhook_duplicate_rate=0.0) as sandbox, client(sandbox, "crm") as http:

        def created(email: str) -> int:
            reply = http.post("/crm/v3/objects/contacts", json={"properties": {"email": email}})
            reply.raise_for_status()
            return int(reply.json()["id"])

        def of(contact: int):  # noqa: ANN202 - a predicate
            return lambda d: d.path.endswith("/crm") and json.loads(d.body)[0]["objectId"] == contact

        first = created("locked.out@example.com")
        deadline = time.monotonic() + 15
        while not any(of(first)(d) for d in list(receiver.deliveries)):
            assert time.monotonic() < deadline, "the first attempt was never made"
            time.sleep(0.02)
        # The receiver refused the first attempt; hold the CRM's database so that recording the retry's
        # outcome waits past SQLite's 5 s busy timeout and fails.
        lock = sqlite3.connect(tmp_path / "crm.sqlite", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            time.sleep(6.5)  # the failure under test is a timeout: this must outlast it
        finally:
            lock.execute("ROLLBACK")
            lock.close()

        second = created("after.the.lock@example.com")
        later: list[Delivery] = receiver.wait_for(of(second), timeout=15)
        assert any(d.answered == 200 for d in later), "no event was delivered after the failed round"
        assert any(d.answered == 200 for d in receiver.wait_for(of(first), timeout=15))
    log = (tmp_path / "logs" / "crm.log").read_text()
    assert "database is locked" in log and "stays in the outbox" in log
