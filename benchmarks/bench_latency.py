"""Benchmark: seconds from a change in the sandbox CRM to the customer updated in billing, through
the webhook receiver and `dagster dev` (sensor -> queued run -> ingest -> deliver).

    .venv/bin/python benchmarks/bench_latency.py [--changes 20] [--gap 3]

Starts the sandbox (every system: the receiver serves every declared webhook), the receiver and
`dagster dev` on loopback with a fresh
DAGSTER_HOME and hub, syncs once, then makes one change at a time and waits for billing to show it.
Figures go to docs/performance.{json,md} ("latency").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import httpx
from _report import machine, publish

from integration_sandbox.landscape import sandbox_env
from integration_project.model import load_landscape
from integration_project.orchestration.instance import ensure_instance
from integration_sandbox.testing import free_port_sandbox

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def wait_http(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def stop(child: subprocess.Popen[bytes], group: bool = False, timeout: float = 60) -> None:
    """Wait for a terminated child (killed past `timeout`); with `group`, then kill what is left of its
    process group too (dagster dev's code server, webserver and daemon outlive it otherwise)."""
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


ACTIVE = ('{ runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED]}) '
          '{ ... on Runs { results { runId } } } }')


def settle(graphql: str, quiet_for: float = 10, timeout: float = 300) -> None:
    """Wait until no run has been queued or running for `quiet_for` seconds (steady state)."""
    deadline, quiet_since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        active = httpx.post(graphql, json={"query": ACTIVE}, timeout=30).json()["data"]["runsOrError"]["results"]
        quiet_since = (quiet_since or time.monotonic()) if not active else None
        if quiet_since and time.monotonic() - quiet_since >= quiet_for:
            return
        time.sleep(1)
    raise SystemExit("runs did not settle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between measured changes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        receiver_port, dagster_port = 18100, 13000
        with free_port_sandbox(root / "sandbox", seed=1, size=100,
                               webhook_url=f"http://127.0.0.1:{receiver_port}/webhooks/{{system}}") as sb:
            env = {**os.environ, **sandbox_env(load_landscape("definitions"), sb),
                   "INTEGRATIONS_DATABASE_URL": f"sqlite:///{root / 'hub.sqlite'}",
                   "DAGSTER_HOME": str(ensure_instance(root / "dagster_home"))}
            os.environ.update(env)
            from definitions.definitions import defs

            assert defs.resolve_job_def("customer_crm_to_billing").execute_in_process(
                instance=dg.DagsterInstance.ephemeral()).success  # the initial sync
            children = [
                subprocess.Popen([str(BIN / "integrations"), "webhooks", "serve", "--port", str(receiver_port)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                subprocess.Popen([str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(dagster_port),
                                  "-w", "workspace.yaml"], env=env, cwd=ROOT, start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            ]
            try:
                wait_http(f"http://127.0.0.1:{receiver_port}/healthz")
                wait_http(f"http://127.0.0.1:{dagster_port}/server_info")
                settle(f"http://127.0.0.1:{dagster_port}/graphql")  # the sensors' initial syncs
                crm = httpx.Client(base_url=sb.url("crm"), headers={"Authorization": f"Bearer {sb.token('crm')}"})
                billing = httpx.Client(base_url=sb.url("billing"),
                                       headers={"Authorization": f"Bearer {sb.token('billing')}"})
                valid = next(str(i) for i in range(101, 201) if str(i) not in {
                    x for p in sb.seed_report("crm")["problems"].values() for x in p})
                latencies = []
                for n in range(args.changes):
                    phone = f"+49 30 7777{n:03d}"
                    started = time.perf_counter()
                    crm.patch(f"/crm/v3/objects/contacts/{valid}", json={"properties": {"phone": phone}}).raise_for_status()
                    while True:
                        found = [c for c in billing.get("/v1/customers", params={"limit": 100}).json()["data"]
                                 if c["metadata"].get("crm_contact_id") == valid]
                        if found and found[0]["phone"] == phone:
                            break
                        if time.perf_counter() - started > 120:
                            raise SystemExit(f"change {n} did not arrive within 120 s")
                        time.sleep(0.2)
                    latencies.append(time.perf_counter() - started)
                    print(f"change {n}: {latencies[-1]:.1f} s", flush=True)
                    time.sleep(args.gap)
            finally:
                for child in children:
                    child.terminate()
                stop(children[0])
                stop(children[1], group=True)  # dagster dev leads its own session (start_new_session)
    q = statistics.quantiles(latencies, n=20)
    figures = {"changes": len(latencies), "p50_s": statistics.median(latencies), "p95_s": q[18],
               "max_s": max(latencies)}
    print(f"machine: {machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"change -> billing, {len(latencies)} changes: p50 {figures['p50_s']:.1f} s, "
          f"p95 {figures['p95_s']:.1f} s, max {figures['max_s']:.1f} s")
    publish("latency", figures, "| changes | p50 | p95 | max |\n|---:|---:|---:|---:|\n"
            f"| {len(latencies)} | {figures['p50_s']:.1f} s | {figures['p95_s']:.1f} s | {figures['max_s']:.1f} s |")


if __name__ == "__main__":
    main()
