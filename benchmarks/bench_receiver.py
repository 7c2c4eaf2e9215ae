"""Benchmark: accepted webhook events/s with durable storage, beside a bare uvicorn hello-world.

    .venv/bin/python benchmarks/bench_receiver.py [--requests 4000] [--concurrency 16]
                                                  [--postgres-url postgresql+psycopg://...]

Both servers are one uvicorn process on an inherited loopback socket (access log off), driven
by the same minimal asyncio HTTP/1.1 client in this process (kept-alive connections, requests
serialised before the clock starts: httpx's async client measured itself, at 82 requests/s on
one connection here, not the server); every receiver request carries a distinct,
correctly signed Stripe event, so each one is verified and committed (SQLite: WAL, fsync per
commit) before its 200. Prints requests/s, latency percentiles and the receiver/hello-world ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

SECRET = "whsec_benchmark_secret"


def serve(role: str, fd: int, database_url: str) -> None:
    """Child process: serve the hello-world or the receiver on the inherited socket."""
    import uvicorn

    def run(app: object) -> None:
        """Serve on the inherited TCP socket (uvicorn's `fd=` takes it for AF_UNIX: no TCP_NODELAY)."""
        config = uvicorn.Config(app, log_level="warning", access_log=False)  # type: ignore[arg-type]
        uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])

    if role == "hello":

        async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
            """Bare ASGI hello-world."""
            if scope["type"] != "http":
                return
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"5")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
            await send({"type": "http.response.body", "body": b"hello"})  # type: ignore[operator]

        run(app)
        return
    from pydantic import SecretStr

    from integration_project.webhooks import Endpoint, Inbox, create_receiver

    receiver = create_receiver({"billing": Endpoint("stripe", SecretStr(SECRET))}, Inbox(database_url))
    run(receiver)


def start(role: str, database_url: str = "") -> tuple[str, subprocess.Popen[bytes]]:
    """Start a server child on a fresh loopback socket; wait until it answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    command = [sys.executable, __file__, "--serve", role, str(listener.fileno()), database_url]
    process = subprocess.Popen(command, pass_fds=[listener.fileno()])
    listener.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(base_url + ("/healthz" if role == "receiver" else "/"), timeout=1)
            return base_url, process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{role} did not start")


def deliveries(count: int, run: str) -> list[tuple[bytes, dict[str, str]]]:
    """Distinct signed Stripe deliveries (~600-byte bodies), prepared before the clock starts."""
    from pydantic import SecretStr

    from integration_project.webhooks import SCHEMES

    prepared = []
    for n in range(count):
        event = {
            "id": f"evt_{run}_{n}",
            "type": "invoice.paid",
            "data": {"object": {"id": f"in_{n}", "customer": "cus_1", "amount_due": 4200, "lines": ["x" * 400]}},
        }
        body = json.dumps(event).encode()
        headers = SCHEMES["stripe"].sign(body, SecretStr(SECRET)) | {"Content-Type": "application/json"}
        prepared.append((body, headers))
    return prepared


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one HTTP/1.1 request on a kept-alive connection; read the whole response; return its status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return int(lines[0].split()[1])


def _request(method: str, host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The raw bytes of one HTTP/1.1 request."""
    fields = {"Host": host, "Content-Length": str(len(body))} | headers
    return (
        f"{method} {path} HTTP/1.1\r\n".encode()
        + "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode()
        + b"\r\n"
        + body
    )


async def load(
    url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int, method: str
) -> dict[str, float]:
    """Send every request over `concurrency` kept-alive connections; return throughput and latency figures."""
    target = httpx.URL(url)
    host, port = target.host, target.port or 80
    raw = [_request(method, f"{host}:{port}", target.raw_path.decode(), body, headers) for body, headers in requests]
    queue = list(reversed(raw))
    latencies: list[float] = []
    failures = 0

    async def worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, port)
        while queue:
            request = queue.pop()
            began = time.perf_counter()
            status = await _exchange(reader, writer, request)
            latencies.append(time.perf_counter() - began)
            failures += status != 200
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "failures": failures,
        "per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
    }


def measure(role: str, count: int, concurrency: int, database_url: str = "") -> dict[str, float]:
    """Start a server, warm it up, measure it, stop it."""
    base_url, process = start(role, database_url)
    try:
        if role == "hello":
            asyncio.run(load(base_url + "/", [(b"", {})] * 200, concurrency, "GET"))
            return asyncio.run(load(base_url + "/", [(b"", {})] * count, concurrency, "GET"))
        url = base_url + "/webhooks/billing"
        asyncio.run(load(url, deliveries(200, "warm"), concurrency, "POST"))
        return asyncio.run(load(url, deliveries(count, "run"), concurrency, "POST"))
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def scratch_schema(url: str) -> Iterator[str]:
    """A URL whose tables go to a fresh PostgreSQL schema, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"bench_receiver_{os.getpid()}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def machine() -> str:
    """One line describing the machine."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--postgres-url", help="also measure with the inbox on PostgreSQL (in a scratch schema, dropped afterwards)"
    )
    parser.add_argument("--serve", nargs=3, metavar=("ROLE", "FD", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        role, fd, url = args.serve
        serve(role, int(fd), url)
        return
    load_before = " ".join(f"{value:.1f}" for value in os.getloadavg())
    with tempfile.TemporaryDirectory() as folder:
        results = {"bare uvicorn hello-world": measure("hello", args.requests, args.concurrency)}
        sqlite_url = f"sqlite:///{Path(folder) / 'hub.sqlite'}"
        results["receiver, inbox on SQLite"] = measure("receiver", args.requests, args.concurrency, sqlite_url)
        if args.postgres_url:
            with scratch_schema(args.postgres_url) as url:
                results["receiver, inbox on PostgreSQL"] = measure("receiver", args.requests, args.concurrency, url)
    print(f"machine: {machine()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average before: {load_before}")
    print(f"client: asyncio HTTP/1.1, {args.concurrency} kept-alive connections, {args.requests} requests each")
    print(f"{'server':<32} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'non-200':>8}")
    for name, figures in results.items():
        print(
            f"{name:<32} {figures['per_second']:>8.0f} {figures['p50_ms']:>8.1f} "
            f"{figures['p95_ms']:>8.1f} {figures['failures']:>8.0f}"
        )
    hello = results["bare uvicorn hello-world"]["per_second"]
    for name, figures in results.items():
        if name != "bare uvicorn hello-world":
            print(f"ratio {name} / hello-world: {figures['per_second'] / hello:.2f}")


if __name__ == "__main__":
    main()
