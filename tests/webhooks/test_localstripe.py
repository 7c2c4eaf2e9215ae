"""localstripe's own signed deliveries reach the inbox through a real receiver."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from integration_project.webhooks import Inbox

pytest.importorskip("localstripe", reason="localstripe comes with the `sandbox` extra")
pytestmark = pytest.mark.server

SECRET = "whsec_localstripe_test_secret"
API_KEY = "sk_test_receiver"
# localstripe's CLI listens on every interface and pickles its store to a shared /tmp file; this
# runs its unmodified app on the given loopback socket with the store in memory.
RUN_LOCALSTRIPE = """
import socket, sys
from aiohttp import web
from localstripe import resources
from localstripe.server import app
resources.Store.dump_to_disk = lambda self: None
web.run_app(app, sock=socket.socket(fileno=int(sys.argv[1])), print=None)
"""
Start = Callable[[str, dict[str, tuple[str, list[str]]]], tuple[str, subprocess.Popen[bytes]]]


@pytest.fixture
def localstripe(tmp_path: Path) -> Iterator[str]:
    """localstripe on a free loopback port; its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    log = (tmp_path / "localstripe.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_LOCALSTRIPE, str(listener.fileno())],
        pass_fds=[listener.fileno()],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ,
    )
    listener.close()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base_url}/v1/customers", auth=(API_KEY, ""), timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"localstripe did not start: {(tmp_path / 'localstripe.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield base_url
    finally:
        process.kill()
        process.wait(timeout=10)


def test_localstripe_deliveries_are_verified_and_stored(
    localstripe: str, sqlite_url: str, start_receiver: Start
) -> None:
    """A customer created in localstripe arrives as a signed customer.created event in the inbox."""
    receiver, _ = start_receiver(sqlite_url, {"billing": ("stripe", [SECRET])})
    registered = httpx.post(
        f"{localstripe}/_config/webhooks/receiver",
        json={"url": f"{receiver}/webhooks/billing", "secret": SECRET},
        auth=(API_KEY, ""),
    )
    assert registered.status_code == 200, registered.text
    created = httpx.post(f"{localstripe}/v1/customers", data={"email": "zoe@example.com"}, auth=(API_KEY, ""))
    assert created.status_code == 200, created.text
    inbox = Inbox(sqlite_url)
    deadline = time.monotonic() + 30  # localstripe delivers one second after the change
    while not (rows := [r for r in inbox.pending("billing") if r.event_type == "customer.created"]):
        assert time.monotonic() < deadline, "no customer.created event reached the inbox"
        time.sleep(0.2)
    inbox.close()
    [row] = rows
    assert row.event_id.startswith("evt_")
    assert row.payload()["data"]["object"]["id"] == created.json()["id"]
    assert row.payload()["data"]["object"]["email"] == "zoe@example.com"
