"""`integrations up` (what `make run` starts): every sandbox system, the receiver, the Dagster UI
with the whole landscape, the customer flow materialized for real, and the docs; Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from integration_project.sandbox import SYSTEMS

ROOT = Path(__file__).resolve().parents[2]
QUERY = "{ assetNodes { assetKey { path } groupName } }"
RUNS = '{ runsOrError(filter: {pipelineName: "customer_crm_to_billing", statuses: [SUCCESS]}) { ... on Runs { results { runId } } } }'


def _ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_up_starts_the_whole_product_and_stops_it(tmp_path):
    dagster, docs, receiver = _ports(3)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DAGSTER_HOME": str(tmp_path / "home"),
           "INTEGRATIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite'}"}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("integrations")), "up", "--data-dir", str(tmp_path / "sandbox"),
         "--size", "40", "--free-ports", "--dagster-port", str(dagster), "--docs-port", str(docs),
         "--receiver-port", str(receiver)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while "Ctrl-C stops everything." not in lines:
            assert time.monotonic() < deadline and process.poll() is None, lines
            lines.append(process.stdout.readline().rstrip("\n"))
        urls = dict(re.findall(r"^  sandbox (\w+)\s+(http://127\.0\.0\.1:\d+)$", "\n".join(lines), re.M))
        assert sorted(urls) == sorted(SYSTEMS)
        assert httpx.get(f"{urls['crm']}/_sandbox/health").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{receiver}/healthz").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{docs}/").status_code == 200

        ui = f"http://127.0.0.1:{dagster}/graphql"
        groups: set[str] = set()
        while not set(SYSTEMS) <= groups and time.monotonic() < deadline:
            nodes = httpx.post(ui, json={"query": QUERY}, timeout=30).json()["data"]["assetNodes"]
            groups = {n["groupName"] for n in nodes}
            time.sleep(1)
        assert set(SYSTEMS) | {f"{s}_source" for s in SYSTEMS} | {"hub"} == groups  # every system is a source here
        runs: list = []
        while not runs and time.monotonic() < deadline:  # the sensor's first tick syncs at once
            runs = httpx.post(ui, json={"query": RUNS}, timeout=30).json()["data"]["runsOrError"]["results"]
            time.sleep(2)
        assert runs, "the customer flow never completed a run"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    for url in (f"http://127.0.0.1:{dagster}/server_info", f"http://127.0.0.1:{receiver}/healthz"):
        try:
            httpx.get(url, timeout=2)
            raise AssertionError(f"{url} still answers after Ctrl-C")
        except httpx.TransportError:
            pass
