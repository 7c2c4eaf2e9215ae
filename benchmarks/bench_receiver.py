"""Benchmark: accepted webhook events/s with durable storage, beside a bare uvicorn hello-world;
N receiver processes on one PostgreSQL inbox; then a constant-rate load on the receiver with a
count of what was lost.

    .venv/bin/python benchmarks/bench_receiver.py [--requests 20000] [--concurrency 16]
                                                  [--rate 500] [--seconds 60]
                                                  [--postgres-url postgresql+psycopg://...]
                                                  [--processes 1,2,4] [--scale-concurrency 48]
                                                  [--clients 2]

Both servers are one uvicorn process on an inherited loopback socket (access log off), driven
by the same minimal asyncio HTTP/1.1 client in this process (kept-alive connections, requests
serialised before the clock starts: httpx's async client measured itself, at 82 requests/s on
one connection here, not the server); every receiver request carries a distinct,
correctly signed Stripe event, so each one is verified and committed (SQLite: WAL, fsync per
commit) before its 200. Prints requests/s, latency percentiles, server CPU and events per
commit, and the receiver/hello-world ratios by requests/s and by CPU per request.

With `--postgres-url`, `--processes` receivers listen on one port (SO_REUSEPORT) on one
PostgreSQL inbox, driven by `--clients` client processes over `--scale-concurrency` connections
in all, the same for every count; beside requests/s the table gives the servers', clients' and
PostgreSQL backends' CPU per request and how busy the whole machine was.

The load phase is open-loop: request i is due at start + i/rate whatever happened before, and
its latency counts from that due time, so a server that stalls shows the queue it built
(no coordinated omission). A fresh receiver on SQLite gets `--rate` distinct signed events a
second for `--seconds`; afterwards every event answered 2xx must be in its inbox (lost = 2xx
events missing from the inbox). Figures go to docs/performance.{json,md} ("receiver",
"receiver_processes", "receiver_load").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _report import load_average, machine, publish

SECRET = "whsec_benchmark_secret"


def listener(where: str) -> socket.socket:
    """The socket to serve on: an inherited one (its fd), or `port:N`, a new one sharing port N (SO_REUSEPORT)."""
    if not where.startswith("port:"):
        return socket.socket(fileno=int(where))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", int(where.removeprefix("port:"))))
    sock.listen(1024)
    return sock


def serve(role: str, where: str, database_url: str) -> None:
    """Child process: serve the hello-world or the receiver on the inherited socket, or on a shared port."""
    import uvicorn

    def run(app: object) -> None:
        """Serve on the inherited TCP socket (uvicorn's `fd=` takes it for AF_UNIX: no TCP_NODELAY)."""
        config = uvicorn.Config(app, log_level="warning", access_log=False)  # type: ignore[arg-type]
        uvicorn.Server(config).run(sockets=[listener(where)])

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

    from integration_project.webhooks import Endpoint, Inbox, ReceiverLimits, create_receiver
    from integration_project.webhooks.server import receiver_config

    limits = ReceiverLimits()  # served as `integrations webhooks serve` serves it, under its default limits
    receiver = create_receiver({"billing": Endpoint("stripe", SecretStr(SECRET))}, Inbox(database_url), limits)
    config = receiver_config(receiver, limits, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[listener(where)])


def listening(port: int) -> int:
    """How many sockets listen on this loopback TCP port (Linux /proc/net/tcp)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


def start(role: str, database_url: str = "", processes: int = 1,
          reuse_port: bool = False) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """Start server children on a fresh loopback port; wait until every one listens and answers.

    One process serves an inherited socket, unless `reuse_port`; several (or `reuse_port`) each
    listen on the port with SO_REUSEPORT, so the kernel spreads connections over them evenly (a
    shared socket leaves it to whichever process accepts first: 74 % of the work went to one of two).
    """
    reserved = socket.socket()
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserved.bind(("127.0.0.1", 0))  # holds the port; it never listens, so it is given no connection
    port = reserved.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    if processes == 1 and not reuse_port:
        reserved.listen(1024)
        where, fds = str(reserved.fileno()), [reserved.fileno()]
    else:
        where, fds = f"port:{port}", []
    command = [sys.executable, __file__, "--serve", role, where, database_url]
    children = [subprocess.Popen(command, pass_fds=fds) for _ in range(processes)]
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                if fds or listening(port) == processes:
                    httpx.get(base_url + ("/healthz" if role == "receiver" else "/"), timeout=1)
                    return base_url, children
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    finally:
        reserved.close()
    stop(children)
    raise RuntimeError(f"{role} did not start")


def stop(children: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the server children and wait for them."""
    for child in children:
        child.terminate()
    for child in children:
        child.wait(timeout=30)


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


def percentile(ordered: list[float], q: float) -> float:
    """The q-quantile (0..1) of sorted values, nearest rank below; 0 for no values."""
    return ordered[int(q * (len(ordered) - 1))] if ordered else 0.0


async def _run(url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int, method: str,
               ready: Callable[[], object] = lambda: None) -> tuple[list[float], int, float, float]:
    """Send every request over `concurrency` kept-alive connections: latencies, failures, start and end.

    `ready` is called once the requests are serialised, just before the clock starts.
    """
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

    ready()
    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, failures, started, time.monotonic()


def _figures(latencies: list[float], failures: int, elapsed: float, client_cpu: float) -> dict[str, float]:
    """Throughput and latency figures of a closed-loop run."""
    latencies.sort()
    return {
        "requests": len(latencies),
        "failures": failures,
        "per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * percentile(latencies, 0.95),
        "client_cpu_us": 1e6 * client_cpu / len(latencies),
    }


def _client_cpu() -> float:
    """User + system CPU seconds this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load(
    url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int, method: str, clients: int = 1
) -> dict[str, float]:
    """Send every request over `concurrency` kept-alive connections from `clients` processes; throughput and latency.

    Several client processes (forked, each with its share of the requests and connections, all
    starting together) keep the client from being the bottleneck when several servers serve.
    """
    if clients == 1:
        cpu = _client_cpu()
        latencies, failures, started, ended = asyncio.run(_run(url, requests, concurrency, method))
        return _figures(latencies, failures, ended - started, _client_cpu() - cpu)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(clients), context.Queue()

    def client(share: list[tuple[bytes, dict[str, str]]], connections: int) -> None:
        cpu = _client_cpu()
        run = asyncio.run(_run(url, share, connections, method, ready=barrier.wait))
        results.put((*run, _client_cpu() - cpu))

    children = [context.Process(target=client, args=(requests[n::clients], concurrency // clients + (n < concurrency % clients)))
                for n in range(clients)]
    for child in children:
        child.start()
    runs = [results.get() for _ in children]
    for child in children:
        child.join()
    return _figures([x for run in runs for x in run[0]], sum(run[1] for run in runs),
                    max(run[3] for run in runs) - min(run[2] for run in runs), sum(run[4] for run in runs))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; 0 elsewhere)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return 0.0
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int]:
    """Busy and total jiffies of every core so far (Linux /proc/stat; zeros elsewhere)."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return 0, 0
    fields = [int(x) for x in stat.read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def database_backends(database_url: str) -> list[int]:
    """The pids of the PostgreSQL backends serving connections opened with this URL (by application_name)."""
    import sqlalchemy as sa

    name = sa.make_url(database_url).query.get("application_name")
    if not name:
        return []
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            own = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            pids = connection.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                                      {"name": name}).scalars()
            return [pid for pid in pids if pid != own]
    finally:
        engine.dispose()


def measure(role: str, count: int, concurrency: int, database_url: str = "", processes: int = 1,
            clients: int = 1, reuse_port: bool = False) -> dict[str, float]:
    """Start the servers, warm them up, measure them (throughput, latency, server CPU per request), stop them."""
    base_url, children = start(role, database_url, processes, reuse_port)
    try:
        if role == "hello":
            url, method, warm, run = base_url + "/", "GET", [(b"", {})] * 200, [(b"", {})] * count
        else:
            url, method = base_url + "/webhooks/billing", "POST"
            warm, run = deliveries(200 * processes, "warm"), deliveries(count, "run")
        load(url, warm, concurrency, method, clients)
        backends = database_backends(database_url) if database_url.startswith("postgresql") else []
        cpu_before = [cpu_seconds(child.pid) for child in children]
        database_before = sum(cpu_seconds(pid) for pid in backends)
        busy_before, total_before = machine_cpu()
        figures = load(url, run, concurrency, method, clients)
        busy, total = machine_cpu()
        figures["database_cpu_us"] = 1e6 * (sum(cpu_seconds(pid) for pid in backends) - database_before) / count
        figures["machine_busy"] = (busy - busy_before) / (total - total_before) if total > total_before else 0.0
        used = [cpu_seconds(child.pid) - before for child, before in zip(children, cpu_before, strict=True)]
        figures["server_cpu_us"] = 1e6 * sum(used) / count
        figures["busiest_process_share"] = max(used) / sum(used) if sum(used) else 0.0
        return figures
    finally:
        stop(children)


@dataclass
class Outcome:
    """What an open-loop run saw: a status (None: connection error) and a latency per request."""

    statuses: list[int | None] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # connection errors by exception type
    last_answer: float = 0.0


KEEP_ALIVE = 4.0  # seconds a connection may sit idle before reuse: uvicorn closes idle ones after 5 s


async def open_loop(url: str, requests: list[tuple[bytes, dict[str, str]]], rate: float, timeout: float) -> Outcome:
    """POST request i at start + i/rate on an idle kept-alive connection (a new one if none is idle).

    Latency counts from the due time, not from the send, so queueing anywhere is measured.
    Connections idle longer than the server keeps them are closed, not reused (as an HTTP client
    pool does); a request whose connection fails or times out counts as a connection error.
    """
    target = httpx.URL(url)
    host, port = target.host, target.port or 80
    raw = [_request("POST", f"{host}:{port}", target.raw_path.decode(), body, headers) for body, headers in requests]
    outcome = Outcome(statuses=[None] * len(raw))
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The most recently used live idle connection, else a new one."""
        while idle:
            reader, writer, since = idle.pop()
            if time.perf_counter() - since < KEEP_ALIVE and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(host, port)

    async def one(index: int, due: float) -> None:
        writer = None
        try:
            reader, writer = await connection()
            status = await asyncio.wait_for(_exchange(reader, writer, raw[index]), timeout)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as error:
            outcome.errors[type(error).__name__] += 1
            if writer is not None:
                writer.close()
            return
        outcome.last_answer = time.perf_counter()
        outcome.latencies.append(outcome.last_answer - due)
        outcome.statuses[index] = status
        idle.append((reader, writer, outcome.last_answer))

    started = time.perf_counter() + 0.1
    tasks = []
    for index in range(len(raw)):
        due = started + index / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    for _, writer, _ in idle:
        writer.close()
    outcome.last_answer -= started
    return outcome


def stored_event_ids(database_url: str) -> set[str]:
    """The event ids in the receiver's inbox."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(sa.text("SELECT event_id FROM webhook_inbox")).scalars())
    finally:
        engine.dispose()


def measure_load(rate: float, seconds: float, database_url: str, timeout: float = 30) -> dict[str, Any]:
    """Hold `rate` distinct signed events/s for `seconds` on a fresh receiver; count answers and losses."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a stalled server makes the client open many connections
    count = int(rate * seconds)
    requests = deliveries(count, "load")
    base_url, children = start("receiver", database_url)
    try:
        load(base_url + "/webhooks/billing", deliveries(200, "warm"), 16, "POST")
        outcome = asyncio.run(open_loop(base_url + "/webhooks/billing", requests, rate, timeout))
    finally:
        stop(children)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    accepted = {json.loads(body)["id"] for (body, _), status in zip(requests, outcome.statuses, strict=True)
                if status is not None and 200 <= status < 300}
    stored = stored_event_ids(database_url) & {json.loads(body)["id"] for body, _ in requests}
    latencies = sorted(outcome.latencies)
    return {
        "target_per_second": rate, "seconds": seconds, "sent": count,
        "2xx": len(accepted),
        "4xx": sum(1 for s in outcome.statuses if s is not None and 400 <= s < 500),
        "5xx": sum(1 for s in outcome.statuses if s is not None and s >= 500),
        "connection_errors": sum(1 for s in outcome.statuses if s is None),
        "connection_errors_by_type": dict(outcome.errors),
        "achieved_per_second": len(accepted) / outcome.last_answer if outcome.last_answer > 0 else 0.0,
        "p50_ms": 1000 * percentile(latencies, 0.50), "p95_ms": 1000 * percentile(latencies, 0.95),
        "p99_ms": 1000 * percentile(latencies, 0.99), "max_ms": 1000 * (latencies[-1] if latencies else 0.0),
        "stored": len(stored), "lost": len(accepted - stored), "stored_without_2xx": len(stored - accepted),
    }


@contextmanager
def scratch_schema(url: str) -> Iterator[str]:
    """A URL whose tables go to a fresh PostgreSQL schema, dropped afterwards (its connections named after it)."""
    import sqlalchemy as sa

    schema = f"bench_receiver_{os.getpid()}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}&application_name={schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()



def events_per_commit(database_url: str) -> float:
    """The measured run's events per commit: a commit's rows share one received_at."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            events, commits = connection.execute(sa.text(
                "SELECT count(*), count(DISTINCT received_at) FROM webhook_inbox WHERE event_id LIKE 'evt_run_%'"
            )).one()
    finally:
        engine.dispose()
    return events / commits if commits else 0.0


def _per_commit(figures: dict[str, float]) -> str:
    """Events per commit as the tables show it ('-' for the hello-world, which commits nothing)."""
    return f"{figures['events_per_commit']:.1f}" if "events_per_commit" in figures else "-"


def throughput_table(results: dict[str, dict[str, float]], concurrency: int, requests: int) -> str:
    """The throughput comparison as a Markdown table (ratios to the hello-world of the same run)."""
    hello = results["bare uvicorn hello-world"]
    rows = [f"Closed loop: {concurrency} kept-alive connections, {requests:,} requests per server.\n",
            "| server | requests/s | p50 (ms) | p95 (ms) | non-200 | server CPU per request (µs) | events per commit "
            "| ratio to hello-world, by requests/s | by CPU per request |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows += [f"| {name} | {f['per_second']:,.0f} | {f['p50_ms']:.1f} | {f['p95_ms']:.1f} | {f['failures']:.0f} "
             f"| {f['server_cpu_us']:.0f} | {_per_commit(f)} "
             f"| {f['per_second'] / hello['per_second']:.2f} | {hello['server_cpu_us'] / f['server_cpu_us']:.2f} |"
             for name, f in results.items()]
    return "\n".join(rows)


def scaling_table(results: dict[int, dict[str, float]], concurrency: int, clients: int, requests: int) -> str:
    """Receiver processes on one PostgreSQL inbox as a Markdown table (ratios to one process)."""
    one = results[min(results)]["per_second"]
    rows = [f"Closed loop: {concurrency} kept-alive connections from {clients} client processes, {requests:,} "
            "requests per run, the processes sharing one port (SO_REUSEPORT), the inbox on PostgreSQL.\n",
            "| receiver processes | requests/s | p50 (ms) | p95 (ms) | non-200 | server CPU per request (µs) "
            "| busiest process's share of it | client CPU per request (µs) | PostgreSQL backends' CPU per request (µs) "
            "| events per commit | machine CPU busy (all users) | ratio to one process |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows += [f"| {n} | {f['per_second']:,.0f} | {f['p50_ms']:.1f} | {f['p95_ms']:.1f} | {f['failures']:.0f} "
             f"| {f['server_cpu_us']:.0f} | {f['busiest_process_share']:.0%} | {f['client_cpu_us']:.0f} "
             f"| {f['database_cpu_us']:.0f} "
             f"| {f['events_per_commit']:.1f} | {f['machine_busy']:.0%} | {f['per_second'] / one:.2f} |"
             for n, f in results.items()]
    return "\n".join(rows)


def load_table(figures: dict[str, Any]) -> str:
    """The load phase as a Markdown table (and the connection errors by type, if any)."""
    f = figures
    errors = ", ".join(f"{name} {count}" for name, count in f["connection_errors_by_type"].items())
    return (
        f"Open loop: {f['target_per_second']:.0f} requests/s for {f['seconds']:.0f} s, receiver on SQLite, "
        "latency from each request's due time.\n\n"
        "| sent | 2xx | 4xx | 5xx | connection errors | achieved 2xx/s | p50 (ms) | p95 (ms) | p99 (ms) "
        "| max (ms) | stored | lost |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {f['sent']:,.0f} | {f['2xx']:,.0f} | {f['4xx']:.0f} | {f['5xx']:.0f} | {f['connection_errors']:.0f} "
        f"| {f['achieved_per_second']:.0f} | {f['p50_ms']:.1f} | {f['p95_ms']:.1f} | {f['p99_ms']:.1f} "
        f"| {f['max_ms']:.1f} | {f['stored']:,.0f} | {f['lost']:.0f} |"
        + (f"\n\nConnection errors: {errors}." if errors else "")
    )


def main() -> None:
    """Run the benchmark, print the figures, publish them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000, help="closed-loop requests per server")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop connections")
    parser.add_argument("--rate", type=float, default=500, help="load phase: requests per second")
    parser.add_argument("--seconds", type=float, default=60, help="load phase: duration")
    parser.add_argument(
        "--postgres-url", help="also measure with the inbox on PostgreSQL (in a scratch schema, dropped afterwards), "
        "and N receiver processes on it"
    )
    parser.add_argument("--processes", default="1,2,4", help="with --postgres-url: receiver process counts to compare")
    parser.add_argument("--scale-concurrency", type=int, default=48,
                        help="connections for the process comparison (under the per-client limit of 64)")
    parser.add_argument("--clients", type=int, default=2, help="client processes for the process comparison")
    parser.add_argument("--serve", nargs=3, metavar=("ROLE", "FD_OR_PORT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        role, where, url = args.serve
        serve(role, where, url)
        return
    print(f"machine: {machine()}; load average before: {load_average()}")
    with tempfile.TemporaryDirectory() as folder:
        results = {"bare uvicorn hello-world": measure("hello", args.requests, args.concurrency)}
        sqlite_url = f"sqlite:///{Path(folder) / 'hub.sqlite'}"
        results["receiver, inbox on SQLite"] = measure("receiver", args.requests, args.concurrency, sqlite_url)
        results["receiver, inbox on SQLite"]["events_per_commit"] = events_per_commit(sqlite_url)
        if args.postgres_url:
            with scratch_schema(args.postgres_url) as url:
                results["receiver, inbox on PostgreSQL"] = measure("receiver", args.requests, args.concurrency, url)
                results["receiver, inbox on PostgreSQL"]["events_per_commit"] = events_per_commit(url)
        throughput = throughput_table(results, args.concurrency, args.requests)
        print(throughput, flush=True)
        print(f"load average: {load_average()}", flush=True)
        scaling: dict[int, dict[str, float]] = {}
        if args.postgres_url:
            for processes in (int(n) for n in args.processes.split(",")):
                with scratch_schema(args.postgres_url) as url:
                    scaling[processes] = measure("receiver", args.requests, args.scale_concurrency, url, processes,
                                                 args.clients, reuse_port=True)
                    scaling[processes]["events_per_commit"] = events_per_commit(url)
            scaled = scaling_table(scaling, args.scale_concurrency, args.clients, args.requests)
            print(scaled, flush=True)
            print(f"load average: {load_average()}", flush=True)
        under_load = measure_load(args.rate, args.seconds, f"sqlite:///{Path(folder) / 'load.sqlite'}")
    print(load_table(under_load))
    publish("receiver", results, throughput)
    if scaling:
        publish("receiver_processes", {str(n): f for n, f in scaling.items()}, scaled)
    publish("receiver_load", under_load, load_table(under_load))


if __name__ == "__main__":
    main()
