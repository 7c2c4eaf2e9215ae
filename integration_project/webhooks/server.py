"""Serving the receiver under its limits: uvicorn's own settings where it has them, a thin protocol where not.

uvicorn (0.54, httptools parser) gives `timeout_keep_alive` (idle between requests) and
`limit_concurrency` (503 once that many connections or requests are open); h11's
`h11_max_incomplete_event_size` bounds a request head, but the h11 parser costs far more CPU per
request than httptools. httptools itself bounds neither the head nor the time a request may take:
a connection that sends nothing, or a byte a second, stays open for ever. `LimitedHttp` adds
those to uvicorn's httptools protocol, per connection:

- the request head may take `max_header_bytes` (431, then the connection is closed);
- a request must arrive whole within `read_timeout` of the connection opening (the first
  request) or of its first byte (later ones): else 408 and closed;
- a client address may hold `max_connections_per_client` connections; more are closed at once.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import socket
from collections import Counter
from http import HTTPStatus
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from integration_project.webhooks.app import ReceiverLimits, request_id

logger = logging.getLogger(__name__)


class LimitedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head, a read deadline and a per-client cap."""

    limits: ClassVar[ReceiverLimits]
    open_per_client: ClassVar[Counter[str]]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the client's connections (closing one too many) and start the first request's deadline."""
        super().connection_made(transport)
        self._address = self.client[0] if self.client else ""
        self._head_left: int | None = self.limits.max_header_bytes  # None while a body is read
        self._deadline: asyncio.TimerHandle | None = self.loop.call_later(self.limits.read_timeout, self._timed_out)
        self.open_per_client[self._address] += 1
        if self.open_per_client[self._address] > self.limits.max_connections_per_client:
            self._refuse(0, f"more than {self.limits.max_connections_per_client} connections from one client")

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and its deadline."""
        self.open_per_client[self._address] -= 1
        if not self.open_per_client[self._address]:
            del self.open_per_client[self._address]
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse the bytes, refusing a request head that passes `max_header_bytes`.

        The head is counted from the bytes received while it is incomplete; bytes that follow the
        end of one request in the same read are not counted, so a head may pass the limit by at
        most one read (uvicorn's reads are at most 256 KiB). Any byte starts the deadline, even
        one that begins no request (blank lines between requests keep no connection open).
        """
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.limits.read_timeout, self._timed_out)
        if self._head_left is not None and len(data) > self._head_left:
            allowed, self._head_left = self._head_left, 0
            super().data_received(data[:allowed])
            if self._head_left == 0:  # the head did not end within the limit
                self._refuse(431, f"request head larger than {self.limits.max_header_bytes} bytes")
            elif not self.transport.is_closing():  # (closed: uvicorn answered a parse error)
                self.data_received(data[allowed:])
            return
        if self._head_left is not None:
            self._head_left -= len(data)
        super().data_received(data)

    def on_message_begin(self) -> None:
        """A request starts: its deadline runs from now (the first one's from the connection)."""
        super().on_message_begin()
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.limits.read_timeout, self._timed_out)

    def on_headers_complete(self) -> None:
        """The head is in: stop counting its bytes."""
        self._head_left = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request is in: no deadline until the next one starts (keep-alive covers the wait)."""
        self._cancel_deadline()
        self._head_left = self.limits.max_header_bytes
        super().on_message_complete()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        """The request did not arrive in time: 408 unless an answer was started, then close."""
        self._deadline = None
        answered = self.cycle is not None and self.cycle.response_started
        self._refuse(0 if answered else 408, f"request not received within {self.limits.read_timeout:g} s")

    def _refuse(self, status: int, reason: str) -> None:
        """Log the refusal at WARNING, answer `status` (0: no answer) and close the connection."""
        rid = request_id()
        logger.warning("webhook refused: client=%s status=%s reason=%s request_id=%s",
                       self._address, status or "closed", reason, rid)
        if status and not self.transport.is_closing():
            body = f'{{"error": "{HTTPStatus(status).phrase}"}}'.encode()
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"x-request-id: %s\r\nconnection: close\r\n\r\n%s"
                % (status, HTTPStatus(status).phrase.encode(), len(body), rid.encode(), body)
            )
        self.transport.close()


def protocol_for(limits: ReceiverLimits) -> type[LimitedHttp]:
    """A LimitedHttp class bound to these limits, with its own count of connections per client."""
    return type("LimitedHttp", (LimitedHttp,), {"limits": limits, "open_per_client": Counter()})


def log_config() -> dict[str, Any]:
    """uvicorn's logging, plus the receiver's own loggers at INFO on the same handler (refusals show)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["integration_project.webhooks"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def receiver_config(app: Any, limits: ReceiverLimits, **options: Any) -> uvicorn.Config:
    """A uvicorn Config serving `app` under `limits` (`options`: host, port, log_level, ...)."""
    return uvicorn.Config(
        app,
        http=protocol_for(limits),
        timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]  # used by call_later: a float works
        limit_concurrency=limits.max_connections,
        ws="none",  # no upgrades: a receiver has no WebSocket routes
        server_header=False,
        **options,
    )


def shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port that other processes may listen on too (SO_REUSEPORT).

    The kernel spreads new connections over every process listening so: N receivers on one port
    and one PostgreSQL inbox, each started and kept alive by the process manager.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock
