"""Benchmark: accepted webhook events/s with durable storage, beside a bare uvicorn hello-world.

    .venv/bin/python benchmarks/bench_receiver.py [--requests 4000] [--concurrency 16]
                                                  [--postgres-url postgresql+psycopg://...]

Both servers are one uvicorn process on an inherited loopback socket (access log off), driven
by the same httpx async client in this process; every receiver request carries a distinct,
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
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})  # type: ignore[operator]
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


async def load(
    url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int, method: str
) -> dict[str, float]:
    """Send every request with `concurrency` in flight; return throughput and latency figures."""
    latencies: list[float] = []
    failures = 0
    queue = list(reversed(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal failures
            while queue:
                body, headers = queue.pop()
                began = time.perf_counter()
                if method == "POST":
                    response = await client.post(url, content=body, headers=headers)
                else:
                    response = await client.get(url)
                latencies.append(time.perf_counter() - began)
                failures += response.status_code != 200

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
    parser.add_argument("--postgres-url", help="also measure the receiver with its inbox on PostgreSQL")
    parser.add_argument("--serve", nargs=3, metavar=("ROLE", "FD", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        role, fd, url = args.serve
        serve(role, int(fd), url)
        return
    with tempfile.TemporaryDirectory() as folder:
        results = {"bare uvicorn hello-world": measure("hello", args.requests, args.concurrency)}
        sqlite_url = f"sqlite:///{Path(folder) / 'hub.sqlite'}"
        results["receiver, inbox on SQLite"] = measure("receiver", args.requests, args.concurrency, sqlite_url)
        if args.postgres_url:
            results["receiver, inbox on PostgreSQL"] = measure(
                "receiver", args.requests, args.concurrency, args.postgres_url
            )
    print(f"machine: {machine()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"client: httpx AsyncClient in one process, {args.concurrency} in flight, {args.requests} requests each")
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
