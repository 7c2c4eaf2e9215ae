"""One whole sandbox on free loopback ports, with a webhook receiver, shared by the sandbox tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integration_sandbox import Sandbox
from integration_sandbox.testing import free_port_sandbox


@dataclass
class Delivery:
    """One webhook request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """Records every delivery; answers 500 to the first attempt of each HubSpot- or Stripe-signed event."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    refused_once: set[bytes] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, match: Callable[[Delivery], bool], count: int = 1, timeout: float = 15.0) -> list[Delivery]:
        """Wait until at least `count` answered-2xx deliveries match; returns every matching delivery."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = [d for d in self.deliveries if match(d)]
            if sum(d.answered == 200 for d in found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a free loopback port."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            status = 200
            with state.lock:
                signed = {k.lower() for k in self.headers} & {"x-hubspot-signature-v3", "stripe-signature"}
                if signed and body not in state.refused_once:
                    state.refused_once.add(body)
                    status = 500
                state.deliveries.append(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Sandbox]:
    """All nine systems, seed 42, size 50, webhooks to `receiver` at /hooks/<system> (30% duplicated)."""
    options = {"fulfilment": {"advance_seconds": 1}}
    with free_port_sandbox(tmp_path_factory.mktemp("sandbox"), None, seed=42, size=50, options=options,
                           webhook_url=receiver.url + "/{system}", webhook_duplicate_rate=0.3) as sb:
        yield sb
