"""The receiver as a real uvicorn process on loopback, including being killed mid-stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from pydantic import SecretStr

from integration_project.webhooks import DEFAULT_MAX_BODY, SCHEMES, Inbox
from tests.webhooks.conftest import follow

pytestmark = pytest.mark.server

SECRET = "whsec_billing_secret_value"
ENDPOINTS = {"billing": ("stripe", [SECRET])}
Start = Callable[[str, dict[str, tuple[str, list[str]]]], tuple[str, subprocess.Popen[bytes]]]


def delivery(event_id: str, pad: int = 0) -> tuple[bytes, dict[str, str]]:
    """A Stripe-signed delivery of one event."""
    body = json.dumps({"id": event_id, "type": "invoice.paid", "pad": "x" * pad}).encode()
    headers = SCHEMES["stripe"].sign(body, SecretStr(SECRET))
    return body, headers | {"Content-Type": "application/json"}


def test_real_server_stores_good_and_refuses_bad(sqlite_url: str, start_receiver: Start) -> None:
    """Over real HTTP: a signed delivery is stored once; tampered and oversized ones are refused."""
    base_url, _ = start_receiver(sqlite_url, ENDPOINTS)
    body, headers = delivery("evt_real")
    with httpx.Client(base_url=base_url, timeout=10) as client:
        assert client.post("/webhooks/billing", content=body, headers=headers).status_code == 200
        assert client.post("/webhooks/billing", content=body, headers=headers).json()["duplicates"] == 1
        tampered = body.replace(b"invoice", b"invoicf")
        assert client.post("/webhooks/billing", content=tampered, headers=headers).status_code == 401
        big, big_headers = delivery("evt_big", pad=DEFAULT_MAX_BODY)
        assert client.post("/webhooks/billing", content=big, headers=big_headers).status_code == 413

        def chunked() -> Iterator[bytes]:
            yield big[:1024]
            yield big[1024:]

        assert client.post("/webhooks/billing", content=chunked(), headers=big_headers).status_code == 413
    inbox = Inbox(sqlite_url)
    assert [row.event_id for row in inbox.pending("billing")] == ["evt_real"]
    inbox.close()


def test_sigkill_mid_stream_loses_no_acknowledged_event(inbox_url: str, start_receiver: Start) -> None:
    """Four clients stream deliveries; the receiver is SIGKILLed; every 2xx'd event is in the inbox."""
    base_url, process = start_receiver(inbox_url, ENDPOINTS)
    acknowledged: list[str] = []
    cut_off: list[str] = []  # requests whose connection died with the process
    lock = threading.Lock()

    def stream(worker: int) -> None:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            for n in range(100_000):
                event_id = f"evt_{worker}_{n}"
                body, headers = delivery(event_id)
                try:
                    response = client.post("/webhooks/billing", content=body, headers=headers)
                except httpx.TransportError:
                    with lock:
                        cut_off.append(event_id)
                    return
                if response.status_code == 200:
                    with lock:
                        acknowledged.append(event_id)

    workers = [threading.Thread(target=stream, args=(w,)) for w in range(4)]
    for thread in workers:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    for thread in workers:
        thread.join(timeout=30)
    assert len(acknowledged) >= 200
    assert cut_off, "the kill should land while requests are in flight"
    inbox = Inbox(inbox_url)
    stored = {row.event_id for row in inbox.pending("billing", limit=1_000_000)}
    inbox.close()
    assert set(acknowledged) <= stored
    assert stored <= set(acknowledged) | set(cut_off)  # nothing stored that was never sent


def test_receiver_processes_on_one_postgres_inbox_store_each_event_once(postgres_url: str, start_receiver: Start) -> None:
    """Two receiver processes on one PostgreSQL inbox, each event sent to both: every 2xx'd event is
    stored exactly once, and a cursor read while they commit never skips a row."""
    urls = [start_receiver(postgres_url, ENDPOINTS)[0] for _ in range(2)]
    statuses: list[int] = []
    lock = threading.Lock()
    sent = [f"evt_{worker}_{n}" for worker in range(4) for n in range(60)]

    def stream(worker: int) -> None:
        clients = [httpx.Client(base_url=url, timeout=10) for url in urls]
        for n in range(60):
            body, headers = delivery(f"evt_{worker}_{n}")
            for client in clients[n % 2 :] + clients[: n % 2]:  # first to one process, then to the other
                response = client.post("/webhooks/billing", content=body, headers=headers)
                with lock:
                    statuses.append(response.status_code)
        for client in clients:
            client.close()

    writers_done = threading.Event()
    reader, seen = follow(postgres_url, "billing", writers_done)
    workers = [threading.Thread(target=stream, args=(w,)) for w in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    writers_done.set()
    reader.join(timeout=60)
    assert statuses == [200] * 2 * len(sent)
    inbox = Inbox(postgres_url)
    rows = inbox.pending("billing", limit=10_000)
    inbox.close()
    assert sorted(row.event_id for row in rows) == sorted(sent)  # each once: the repeat was acknowledged, not stored
    assert seen == sorted(seen) == [row.id for row in rows]
