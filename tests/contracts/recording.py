"""A transport for a connector's VendorClient that sends every request on to the real (sandbox)
server and keeps each exchange, so a test can check both sides against the vendor's contract."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Exchange:
    """One request as the connector sent it and the server's answer, body read."""

    request: httpx.Request
    response: httpx.Response


class Recording(httpx.BaseTransport):
    """Forwards to the network (loopback here) and records every exchange, in order."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        response = self._inner.handle_request(request)
        content = response.read()  # decoded: the encoding headers go with the encoded bytes
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        kept = httpx.Response(response.status_code, headers=headers, content=content, request=request)
        with self._lock:
            self.exchanges.append(Exchange(request, kept))
        return kept

    def close(self) -> None:
        self._inner.close()
