"""Benchmark: seconds from a change in the sandbox CRM to billing's answer, hop by hop, beside
Dagster's own floor, through the webhook receiver and `dagster dev`.

    .venv/bin/python benchmarks/bench_latency.py [--changes 20] [--gap 2] [--rate-seconds 60] [--burst 1000]
                                                 [--sensor-only] [--default-launcher]

One sandbox (every system: the receiver serves every declared webhook), one receiver and one
`dagster dev` on loopback, a fresh DAGSTER_HOME and hub, an initial sync; then, in that one run:
- **single**: one contact change at a time, each followed by one run of Dagster's floor
  (benchmarks/latency_floor.py, a second code location: a bare sensor and a one-line asset on the
  same instance, daemon, queue, launcher and executor). Each change is taken apart hop by hop:
  webhook accepted (the inbox row), run queued (by the receiver, through Dagster's GraphQL API;
  with `--sensor-only`, by the inbox sensor at its tick), dequeued, run process up (`RUN_START`),
  consumer answered;
- **steady**: one change a second for `--rate-seconds` seconds, then as many floor requests, one a second;
- **burst**: `--burst` contacts changed at once, then as many floor requests at once (a floor run
  covers every request pending when it runs, as a framework run covers every pending event).
A change has reached billing when the hub's ledger has its delivery (written once billing answered).
Figures go to docs/performance.{json,md} ("latency", "latency_sensor_only", "latency_default_launcher").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import httpx
import sqlalchemy as sa
from _report import machine, publish

from integration_project.model import load_landscape
from integration_project.orchestration.instance import ensure_instance
from integration_project.orchestration.sensors import SENSOR_INTERVAL_SECONDS
from integration_project.runtime.store import ledger
from integration_project.webhooks.inbox import inbox_table
from integration_sandbox.landscape import sandbox_env
from integration_sandbox.testing import free_port_sandbox

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FLOW = "customer_crm_to_billing"
JOB = "customer_crm_realtime"  # the CRM contact change's one run, to every realtime consumer
HOPS = ("webhook accepted", "run queued (receiver; floor: sensor tick)", "queue: run launched", "run process up",
        "steps: consumer answered")
WORKSPACE = """\
load_from:
  - python_module: {{module_name: definitions.definitions, attribute: defs, location_name: definitions,
                    working_directory: "{root}"}}
  - python_file: {{relative_path: "{floor}", location_name: floor}}
"""
LAUNCHER = "run_launcher:\n  module: integration_project.orchestration.launcher\n  class: WarmRunLauncher\n"
EVENTS = {dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.RUN_START}  # launched; its process is up


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


def settle(graphql: str, hub: Hub, quiet_for: float = 10, timeout: float = 600) -> None:
    """Wait until no run has been queued or running and no webhook has arrived for `quiet_for` seconds
    (the vendors answer each delivery with webhooks of their own, which start more runs)."""
    deadline, quiet_since, last = time.monotonic() + timeout, None, None
    while time.monotonic() < deadline:
        active = httpx.post(graphql, json={"query": ACTIVE}, timeout=30).json()["data"]["runsOrError"]["results"]
        newest, last = last, hub.newest_event()
        quiet_since = (quiet_since or time.monotonic()) if not active and newest == last else None
        if quiet_since and time.monotonic() - quiet_since >= quiet_for:
            return
        time.sleep(1)
    raise SystemExit("runs did not settle")


def utc(moment: datetime) -> float:
    """Seconds since the epoch of a datetime stored as UTC (SQLite gives it back naive)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Hub:
    """The hub's inbox and ledger, read as the runs write them."""

    def __init__(self, url: str):
        self.engine = sa.create_engine(url)

    def delivered(self, record_ids: set[str], after: float, timeout: float) -> dict[str, float]:
        """When each record's delivery to billing after `after` was recorded, waiting up to `timeout` s."""
        deadline, found = time.monotonic() + timeout, {}
        q = sa.select(ledger.c.record_id, sa.func.min(ledger.c.at)).where(
            ledger.c.flow == FLOW, ledger.c.outcome == "delivered", ledger.c.record_id.in_(record_ids),
            ledger.c.at >= datetime.fromtimestamp(after, UTC)).group_by(ledger.c.record_id)
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                found = {rid: utc(at) for rid, at in conn.execute(q)}
            if len(found) == len(record_ids):
                return found
            time.sleep(0.1)
        raise SystemExit(f"{len(record_ids) - len(found)} of {len(record_ids)} changes not delivered in {timeout} s")

    def in_billing(self) -> list[str]:
        """The records delivered to billing so far, in id order."""
        q = sa.select(ledger.c.record_id).distinct().where(ledger.c.flow == FLOW, ledger.c.outcome == "delivered")
        with self.engine.connect() as conn:
            return sorted(conn.execute(q).scalars(), key=int)

    def newest_event(self) -> int | None:
        """The id of the newest webhook event in the inbox."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(inbox_table.c.id))).scalar()

    def accepted(self, after: float) -> float:
        """When the receiver stored the first CRM event after `after`."""
        q = sa.select(sa.func.min(inbox_table.c.received_at)).where(
            inbox_table.c.system == "crm", inbox_table.c.received_at >= datetime.fromtimestamp(after, UTC))
        with self.engine.connect() as conn:
            return utc(conn.execute(q).scalar_one())


def run_hops(instance: dg.DagsterInstance, after: float, **which: object) -> tuple[float, float, float]:
    """The first run matching `which` (RunsFilter's) created after `after`: when it was queued, launched and up."""
    (record,) = instance.get_run_records(dg.RunsFilter(**which, created_after=datetime.fromtimestamp(after, UTC)),
                                         limit=1, order_by="create_timestamp", ascending=True)
    at = {e.dagster_event.event_type: e.timestamp for e in instance.all_logs(record.dagster_run.run_id, of_type=EVENTS)}
    return (utc(record.create_timestamp), at[dg.DagsterEventType.RUN_STARTING], at[dg.DagsterEventType.RUN_START])


def percentiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=20, method="inclusive") if len(values) > 1 else values * 19
    return {"p50_s": statistics.median(values), "p95_s": q[18], "max_s": max(values)}


def single(n: int, gap: float, crm: httpx.Client, contact: str, hub: Hub, floor_dir: Path,
           instance: dg.DagsterInstance) -> dict:
    """One change at a time, each followed by a floor run: every hop of both, seconds from the change.

    Each waits `gap` seconds and a random part of the sensor daemon's 5-s loop first, so that neither
    falls at the same phase of the loop every time (a floor request made a fixed time after our
    delivery would always find the next tick near)."""
    ours, floor, rng = [], [], random.Random(7)
    for i in range(n):
        started = time.time()
        crm.patch(f"/crm/v3/objects/contacts/{contact}", json={"properties": {"phone": f"+49 30 7777{i:03d}"}}
                  ).raise_for_status()
        answered = hub.delivered({contact}, started, 120)[contact]
        accepted = hub.accepted(started)
        queued, launched, up = run_hops(instance, accepted, job_name=JOB)
        ours.append([accepted - started, queued - accepted, launched - queued, up - launched, answered - up])
        print(f"change {i}: {answered - started:.1f} s ({', '.join(f'{h} +{s:.2f}' for h, s in zip(HOPS, ours[-1]))})",
              flush=True)
        time.sleep(gap + rng.uniform(0, 5))
        started = time.time()
        (floor_dir / "requests" / str(i)).touch()
        done = floor_dir / "done" / str(i)
        while not done.exists():
            if time.time() - started > 120:
                raise SystemExit(f"floor run {i} did not finish in 120 s")
            time.sleep(0.05)
        queued, launched, up = run_hops(instance, started, tags={"floor/n": str(i)})
        floor.append([0.0, queued - started, launched - queued, up - launched, float(done.read_text()) - up])
        print(f"floor {i}: {sum(floor[-1]):.1f} s", flush=True)
        time.sleep(gap + rng.uniform(0, 5))
    return {"ours": ours, "floor": floor}


def changes(crm: httpx.Client, contacts: list[str], tag: int, threads: int) -> dict[str, float]:
    """Change each contact's phone (billing receives it) once, `threads` at a time: when each was sent."""
    def change(contact: str) -> tuple[str, float]:
        at = time.time()
        crm.patch(f"/crm/v3/objects/contacts/{contact}", json={"properties": {"phone": f"+1 {tag} {contact}"}}
                  ).raise_for_status()
        return contact, at

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(change, contacts))


def steady(crm: httpx.Client, contacts: list[str], seconds: int, hub: Hub) -> list[float]:
    """One change a second for `seconds` s (a contact each): seconds from each change to billing's answer."""
    sent, start = {}, time.time()
    for i, contact in enumerate(contacts[:seconds]):
        time.sleep(max(0.0, start + i - time.time()))
        sent.update(changes(crm, [contact], 555, 1))
    answered = hub.delivered(set(sent), start, 300)
    return [answered[k] - sent[k] for k in sent]


def burst(crm: httpx.Client, contacts: list[str], hub: Hub) -> tuple[list[float], float]:
    """Every contact changed at once: seconds from each change to billing's answer, and the sending time."""
    start = time.time()
    sent = changes(crm, contacts, 666, 16)
    answered = hub.delivered(set(sent), start, 600)
    return [answered[k] - sent[k] for k in sent], max(sent.values()) - start


def floor_load(floor_dir: Path, numbers: range, at_once: bool) -> list[float]:
    """Floor requests, one a second or all at once: seconds from each to the floor run that covered it."""
    made, start = {}, time.time()
    for k, n in enumerate(numbers):
        if not at_once:
            time.sleep(max(0.0, start + k - time.time()))
        made[n] = time.time()
        (floor_dir / "requests" / str(n)).touch()
    done = [floor_dir / "done" / str(n) for n in numbers]
    while not all(path.exists() for path in done):
        if time.time() - start > 300:
            raise SystemExit("floor runs did not cover every request in 300 s")
        time.sleep(0.05)
    return [float(path.read_text()) - made[n] for n, path in zip(numbers, done)]


def table(figures: dict) -> str:
    """The Markdown tables of one run."""
    s, lines = figures["single"], []
    lines += ["Single changes, one at a time: median seconds of each hop (ours: CRM change -> billing's answer; "
              "floor: request file -> a bare sensor's one-line run, same instance), then the totals.", "",
              "| hop | framework | Dagster floor |", "|---|---:|---:|"]
    lines += [f"| {hop} | {a:.2f} | {b:.2f} |" for hop, a, b in zip(HOPS, s["ours_hops_median_s"],
                                                                    s["floor_hops_median_s"])]
    lines += [f"| **total p50 / p95 / max** | {s['ours']['p50_s']:.1f} / {s['ours']['p95_s']:.1f} / "
              f"{s['ours']['max_s']:.1f} | {s['floor']['p50_s']:.1f} / {s['floor']['p95_s']:.1f} / "
              f"{s['floor']['max_s']:.1f} |",
              f"| p95 × the floor's | {s['ours']['p95_s'] / s['floor']['p95_s']:.2f} | 1.00 |", "",
              "Load: change -> billing's answer. Goals: p95 ≤ 3 s at 1 change/s; p95 ≤ 5 s for a burst of 1,000 "
              "(or within 1.5 × Dagster's floor).", "",
              "| load | changes | p50 (s) | p95 (s) | max (s) | floor p50 / p95 (s) | p95 × the floor's |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name in ("steady", "burst"):
        if name in figures:
            f, fl = figures[name], figures[name]["floor"]
            lines.append(f"| {f['label']} | {f['changes']:,} | {f['p50_s']:.1f} | {f['p95_s']:.1f} | "
                         f"{f['max_s']:.1f} | {fl['p50_s']:.1f} / {fl['p95_s']:.1f} | {f['p95_s'] / fl['p95_s']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20, help="single changes (and as many floor runs)")
    parser.add_argument("--gap", type=float, default=2.0,
                        help="seconds of quiet after each single change (plus a random 0-5 s)")
    parser.add_argument("--rate-seconds", type=int, default=60, help="seconds of one change a second (0: none)")
    parser.add_argument("--burst", type=int, default=1000, help="contacts changed at once (0: none)")
    parser.add_argument("--default-launcher", action="store_true",
                        help="Dagster's DefaultRunLauncher instead of the local profile's warm one (a comparison)")
    parser.add_argument("--sensor-only", action="store_true",
                        help="the receiver does not start runs: the inbox sensors do, at their ticks (a comparison)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        floor_dir = root / "floor"
        for sub in ("requests", "done"):
            (floor_dir / sub).mkdir(parents=True)
        workspace = root / "workspace.yaml"
        workspace.write_text(WORKSPACE.format(root=ROOT, floor=Path(__file__).with_name("latency_floor.py")))
        receiver_port, dagster_port = 18100, 13000
        size = max(200, int(max(args.burst, args.rate_seconds) * 1.3))  # ~1 in 6 seeded contacts is invalid
        with free_port_sandbox(root / "sandbox", seed=1, size=size,
                               webhook_url=f"http://127.0.0.1:{receiver_port}/webhooks/{{system}}") as sb:
            hub_url, home = f"sqlite:///{root / 'hub.sqlite'}", ensure_instance(root / "dagster_home")
            if args.default_launcher:
                config = home / "dagster.yaml"
                assert LAUNCHER in config.read_text(), "the local profile's launcher is not where expected"
                config.write_text(config.read_text().replace(LAUNCHER, ""))
            env = {**os.environ, **sandbox_env(load_landscape("definitions"), sb), "INTEGRATIONS_DATABASE_URL": hub_url,
                   "DAGSTER_HOME": str(home), "FLOOR_DIR": str(floor_dir),
                   "FLOOR_INTERVAL": str(SENSOR_INTERVAL_SECONDS)}
            os.environ.update(env)
            from definitions.definitions import defs

            assert defs.resolve_job_def(FLOW).execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
            valid = Hub(hub_url).in_billing()  # the contacts the initial sync delivered (valid, not duplicates)
            logs = [(root / f"{name}.log").open("w") for name in ("receiver", "dagster-dev")]
            children = [
                # every sandbox vendor posts from 127.0.0.1: one client to the receiver's per-client limit
                subprocess.Popen([str(BIN / "integrations"), "webhooks", "serve", "--port", str(receiver_port),
                                  "--max-connections-per-client", "1024",
                                  *([] if args.sensor_only else ["--dagster-url", f"http://127.0.0.1:{dagster_port}"])],
                                 env=env, stdout=logs[0], stderr=subprocess.STDOUT),
                subprocess.Popen([str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(dagster_port),
                                  "-w", str(workspace)], env=env, cwd=ROOT, start_new_session=True,
                                 stdout=logs[1], stderr=subprocess.STDOUT),
            ]
            graphql = f"http://127.0.0.1:{dagster_port}/graphql"
            try:
                wait_http(f"http://127.0.0.1:{receiver_port}/healthz")
                wait_http(f"http://127.0.0.1:{dagster_port}/server_info")
                hub, instance = Hub(hub_url), dg.DagsterInstance.get()
                settle(graphql, hub)  # the sensors' initial syncs, and the webhooks they set off
                crm = httpx.Client(base_url=sb.url("crm"), headers={"Authorization": f"Bearer {sb.token('crm')}"},
                                   limits=httpx.Limits(max_connections=16), timeout=60)
                raw = single(args.changes, args.gap, crm, valid[0], hub, floor_dir, instance)
                figures: dict = {"single": {
                    "changes": args.changes, "ours": percentiles([sum(h) for h in raw["ours"]]),
                    "floor": percentiles([sum(h) for h in raw["floor"]]),
                    "ours_hops_median_s": [statistics.median(h[i] for h in raw["ours"]) for i in range(len(HOPS))],
                    "floor_hops_median_s": [statistics.median(h[i] for h in raw["floor"]) for i in range(len(HOPS))]}}
                if args.rate_seconds:
                    settle(graphql, hub, quiet_for=5)
                    figures["steady"] = {"label": f"1 change/s for {args.rate_seconds} s",
                                         "changes": args.rate_seconds,
                                         **percentiles(steady(crm, valid[1:], args.rate_seconds, hub))}
                    settle(graphql, hub, quiet_for=5)
                    figures["steady"]["floor"] = percentiles(
                        floor_load(floor_dir, range(10_000, 10_000 + args.rate_seconds), at_once=False))
                    print(f"steady: {figures['steady']}", flush=True)
                if args.burst:
                    settle(graphql, hub, quiet_for=5)
                    seconds, sending = burst(crm, valid[1:args.burst + 1], hub)
                    figures["burst"] = {"label": f"burst of {args.burst:,} (sent in {sending:.1f} s)",
                                        "changes": args.burst, "sending_s": sending, **percentiles(seconds)}
                    settle(graphql, hub, quiet_for=5)
                    figures["burst"]["floor"] = percentiles(
                        floor_load(floor_dir, range(100_000, 100_000 + args.burst), at_once=True))
            except BaseException:  # what the servers said, for the diagnosis
                for log in logs:
                    log.flush()
                for path in (*(Path(log.name) for log in logs), *sorted((root / "sandbox" / "logs").glob("*.log"))):
                    print(f"--- {path}, last lines:\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:]))
                raise
            finally:
                for child in children:
                    child.terminate()
                stop(children[0])
                stop(children[1], group=True)  # dagster dev leads its own session (start_new_session)
    print(f"machine: {machine()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(table(figures))
    variant = "".join(f"_{name}" for name in ("default_launcher", "sensor_only") if getattr(args, name))
    publish(f"latency{variant}", figures, table(figures))


if __name__ == "__main__":
    main()
