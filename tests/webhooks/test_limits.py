"""Hostile clients against a real receiver (uvicorn on 127.0.0.1): each is cut off, refused or answered fast."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr

from integration_project.model import load_landscape
from integration_project.settings import DATABASE_URL_ENV
from integration_project.webhooks import SCHEMES, Inbox
from tests.servers import answers, free_port

pytestmark = pytest.mark.server

SECRET = "whsec_billing_secret_value"
ENDPOINTS = {"billing": ("stripe", [SECRET])}
Start = Callable[[str, dict[str, tuple[str, list[str]]]], tuple[str, subprocess.Popen[bytes]]]


def delivery(event_id: str) -> tuple[bytes, dict[str, str]]:
    """A Stripe-signed delivery of one event."""
    body = json.dumps({"id": event_id, "type": "invoice.paid"}).encode()
    return body, SCHEMES["stripe"].sign(body, SecretStr(SECRET)) | {"Content-Type": "application/json"}


def connect(base_url: str) -> socket.socket:
    """A raw TCP connection to the receiver."""
    parts = urlsplit(base_url)
    return socket.create_connection((parts.hostname, parts.port), timeout=5)


def read_until_closed(sock: socket.socket, within: float) -> tuple[bytes, bool]:
    """What the server sends until it closes the connection, and whether it did within `within` seconds."""
    deadline, received = time.monotonic() + within, b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk
    return received, False


def healthz(sock: socket.socket) -> bytes:
    """GET /healthz on a kept-alive raw connection; the whole answer."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(5)
    answer = b""
    while not answer.endswith(b"}"):
        answer += sock.recv(4096) or b"}"  # (an empty read: closed)
    return answer


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set ReceiverLimits fields for the receivers started next (run_receiver reads RECEIVER_LIMITS)."""
    return lambda **fields: monkeypatch.setenv("RECEIVER_LIMITS", json.dumps(fields))


def test_an_oversized_request_head_is_431_and_closed(sqlite_url: str, start_receiver: Start) -> None:
    """A head that never ends is refused once past 16 KiB (the default), not buffered without bound."""
    base_url, _ = start_receiver(sqlite_url, ENDPOINTS)
    sockets = [connect(base_url) for _ in range(5)]
    for sock in sockets:
        sock.sendall(b"POST /webhooks/billing HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        try:
            for _ in range(64):  # up to 1 MiB, never ending the header
                sock.sendall(b"a" * 16384)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-way, as it should be
    for sock in sockets:
        answer, closed = read_until_closed(sock, within=10)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 431 ") and closed
        assert b"x-request-id: " in answer
    assert httpx.get(f"{base_url}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("stage", ["head", "body"])
def test_trickling_clients_are_cut_off_by_the_read_timeout(
    sqlite_url: str, start_receiver: Start, limits: Callable[..., None], stage: str
) -> None:
    """Twenty connections trickling a byte every 0.2 s, in the head or the body, are all closed with a 408."""
    limits(read_timeout=1.0)
    base_url, _ = start_receiver(sqlite_url, ENDPOINTS)
    body, headers = delivery("evt_slow")
    head = "POST /webhooks/billing HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if stage == "head":
        start, trickle = b"POST /webhooks/billing HTTP/1.1\r\n", b"X-Slow: " + b"a" * 200
    else:
        start, trickle = f"{head}Content-Length: {len(body)}\r\n\r\n".encode(), body
    outcomes: list[tuple[bytes, float]] = []
    lock = threading.Lock()

    def slow_client() -> None:
        with connect(base_url) as sock:
            began = time.monotonic()
            sock.sendall(start)
            received = b""
            for byte in trickle[:-1]:  # never the last byte: the request is never whole
                answer, closed = read_until_closed(sock, within=0.2)
                received += answer
                if closed:
                    break
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    break
            with lock:
                outcomes.append((received + read_until_closed(sock, within=1)[0], time.monotonic() - began))

    clients = [threading.Thread(target=slow_client) for _ in range(20)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=60)
    assert len(outcomes) == 20
    for answer, seconds in outcomes:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert seconds < 10  # the trickle alone would take 40 s
    inbox = Inbox(sqlite_url)
    assert inbox.pending("billing") == []
    inbox.close()


def test_a_silent_connection_is_closed_by_the_read_timeout(
    sqlite_url: str, start_receiver: Start, limits: Callable[..., None]
) -> None:
    """A client that connects and sends nothing is closed after the read timeout."""
    limits(read_timeout=1.0)
    base_url, _ = start_receiver(sqlite_url, ENDPOINTS)
    with connect(base_url) as sock:
        answer, closed = read_until_closed(sock, within=10)
    assert closed and answer.startswith(b"HTTP/1.1 408 ")


def test_connections_beyond_the_per_client_cap_are_closed(
    sqlite_url: str, start_receiver: Start, limits: Callable[..., None]
) -> None:
    """With a cap of 3, a client's 4th and 5th connections are closed at once; the first 3 still serve."""
    limits(max_connections_per_client=3)
    base_url, _ = start_receiver(sqlite_url, ENDPOINTS)
    sockets = []
    try:
        for _ in range(3):  # served, so the server has counted them
            sockets.append(connect(base_url))
            assert healthz(sockets[-1]).startswith(b"HTTP/1.1 200 ")
        sockets += [connect(base_url) for _ in range(2)]
        for extra in sockets[3:]:
            assert read_until_closed(extra, within=5) == (b"", True)
        assert all(healthz(kept).startswith(b"HTTP/1.1 200 ") for kept in sockets[:3])  # still open
    finally:
        for sock in sockets:
            sock.close()


def test_a_body_too_large_is_413_and_the_rest_is_not_read(sqlite_url: str, start_receiver: Start) -> None:
    """A declared 50 MB body is refused before it is read, and the connection closed: the sender cannot stream on."""
    base_url, _ = start_receiver(sqlite_url, ENDPOINTS)
    _, headers = delivery("evt_huge")
    head = "POST /webhooks/billing HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    with connect(base_url) as sock:
        sock.sendall(head.encode() + b"\r\n" + b"{" * 65536)
        try:
            for _ in range(200):  # up to 13 MB more, which a closed connection refuses
                sock.sendall(b" " * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer, closed = read_until_closed(sock, within=10)
    assert answer.startswith(b"HTTP/1.1 413 ") and closed


def test_a_locked_inbox_is_503_with_retry_after_within_seconds(sqlite_url: str, start_receiver: Start) -> None:
    """While another connection holds the SQLite write lock, a delivery hears 503 + Retry-After in about
    the 2 s commit timeout (not after the driver's 30 s busy timeout); once unlocked, its retry is stored."""
    base_url, _ = start_receiver(sqlite_url, ENDPOINTS)
    body, headers = delivery("evt_locked")
    locker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        began = time.monotonic()
        response = httpx.post(f"{base_url}/webhooks/billing", content=body, headers=headers, timeout=20)
        waited = time.monotonic() - began
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert 1.5 < waited < 6
    retried = httpx.post(f"{base_url}/webhooks/billing", content=body, headers=headers, timeout=40)
    assert retried.status_code == 200
    inbox = Inbox(sqlite_url)
    assert [row.event_id for row in inbox.pending("billing")] == ["evt_locked"]
    inbox.close()


def test_path_variants_are_a_plain_404_never_a_redirect(sqlite_url: str, start_receiver: Start) -> None:
    """A trailing slash (or another variant) is 404 with no Location, whatever the Host header says."""
    base_url, _ = start_receiver(sqlite_url, ENDPOINTS)
    body, headers = delivery("evt_slash")
    for path in ("/webhooks/billing/", "/webhooks//billing", "/webhooks/billing/x", "/healthz/"):
        response = httpx.post(base_url + path, content=body, headers=headers | {"Host": "evil.example"}, timeout=5)
        assert (response.status_code, response.headers.get("location")) == (404, None), path


@pytest.fixture
def served(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """`integrations webhooks serve` on the example landscape, on a free port; its log file and secrets."""
    declared = {n: s.webhook for n, s in load_landscape("definitions").systems.items() if s.webhook}
    secrets = {hook.secret_env: f"{name}-secret-value" if hook.scheme != "standard_webhooks" else
               "whsec_c2VydmUgbG9nIHRlc3Qga2V5" for name, hook in declared.items()}
    port = free_port()
    command = [str(Path(sys.executable).with_name("integrations")), "webhooks", "serve", "--port", str(port)]
    log = tmp_path / "serve.log"
    env = os.environ | secrets | {DATABASE_URL_ENV: sqlite_url}
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        if not answers(f"{base_url}/healthz", process, timeout=90, interval=0.2):
            pytest.fail(f"serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
        yield base_url, log, secrets
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_refusals_are_warnings_in_the_serve_log_without_secrets(served: tuple[str, Path, dict[str, str]]) -> None:
    """A bad signature is logged by `webhooks serve` at WARNING with system, reason and the request id the
    sender got back; no secret, signature or body is in the log."""
    base_url, log, secrets = served
    system = next(n for n, s in load_landscape("definitions").systems.items() if s.webhook and s.webhook.scheme == "stripe")
    body = b'{"id": "evt_bad", "type": "invoice.paid", "customer": "Zo\xc3\xab"}'
    forged = SCHEMES["stripe"].sign(body, SecretStr("whsec_not_the_secret"))
    response = httpx.post(f"{base_url}/webhooks/{system}", content=body,
                          headers=forged | {"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 401
    rid = response.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while rid not in (text := log.read_text(errors="replace")) and time.monotonic() < deadline:
        time.sleep(0.05)
    [line] = [line for line in text.splitlines() if rid in line]
    assert re.match(rf"WARNING: +webhook refused: system={system} status=401 reason=no matching signature", line)
    for secret in secrets.values():
        assert secret not in text
    assert forged["Stripe-Signature"][-20:] not in text and "evt_bad" not in text and "Zo" not in text
