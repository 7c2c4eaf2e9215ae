"""Benchmark: the production profile — hub and Dagster instance on PostgreSQL, steps on Celery workers.

    .venv/bin/python benchmarks/bench_scale.py [--pull 10000 100000] [--flow 2000] [--repeat 3]
                                               [--flows 1000] [--concurrency 2 4]

Side by side, in one run, on loopback (PostgreSQL on 127.0.0.1:5432, RabbitMQ on 127.0.0.1:5672):
- pull: the same ingest of the sandbox CRM's contacts (bench_sync's framework case) with the hub
  store on SQLite, then on a fresh PostgreSQL database;
- one flow (ONE_FLOW over `--flow` records) by `dagster job execute` on the production profile,
  in-process and on one Celery worker; then `--repeat` runs that find nothing new (the fixed cost
  of a run) by each executor, alternating;
- independent flows of the example at once (`--concurrency` `dagster job execute` processes,
  `--flows` records a source) on one Celery worker and on two: wall time, records/s, per-run latency;
- on paper, from those figures (`_capacity.needs`): what 200 systems and 10 million records a day need.
Every run must succeed, every step run on this benchmark's workers and each consumer hold what
the hub holds for it (the flow's reconciliation), or no figure is published.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from _capacity import DAY, Assumptions, Measured, needs
from _report import ROOT, load_average, machine, now, publish
from bench_sync import UNLIMITED, framework

if str(ROOT) not in sys.path:  # run as a script: the repository's packages (tests) by their names
    sys.path.insert(0, str(ROOT))

from integration_project.connectors import connect  # noqa: E402
from integration_project.model import Flow, load_landscape  # noqa: E402
from integration_project.runtime import Store  # noqa: E402
from integration_project.runtime.checks import reconcile  # noqa: E402
from integration_sandbox.landscape import sandbox_env  # noqa: E402
from integration_sandbox.testing import free_port_sandbox  # noqa: E402
from tests.scale.conftest import BIN, PG_HOST, PG_PORT, celery_env, celery_workers, fresh_database  # noqa: E402

LANDSCAPE = load_landscape("definitions")
# a flow whose consumer keeps up: customer_crm_to_billing would measure localstripe, which rewrites
# its whole store on every change (~60 records/s at 1,000 customers, slower as it grows)
ONE_FLOW = "engagement_marketing_to_crm"
# independent flows: each its own object, source and consumer (no shared ingest); the first k run at k at once
RUN_TIMEOUT_S = 600
FLOWS = ("engagement_marketing_to_crm", "order_shop_to_fulfilment", "customer_crm_to_projects",
         "product_legacy_erp_to_inventory")


def _flow(job: str) -> Flow:
    """The flow a job runs (a flow's job bears its name)."""
    flow = LANDSCAPE.leg(job)
    assert isinstance(flow, Flow), job
    return flow


def _systems(jobs: tuple[str, ...]) -> list[str]:
    """The sandbox systems these flows read and write."""
    return sorted({s.name for job in jobs for s in (_flow(job).source, _flow(job).consumer)})


def _pg_url(database: str) -> str:
    return f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{database}"


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A fresh PostgreSQL database (its name), its tables analyzed as autovacuum would if the server runs without.

    This machine's server runs with autovacuum off (a test set-up); without statistics PostgreSQL
    filters the hub's key lookups instead of searching the index, so each page costs more as the hub
    grows (~80 records/s at 70,000 contacts). Autovacuum's rule (50 rows + 10 % changed since the
    last ANALYZE) is applied here every second, where the server would check every minute."""
    with fresh_database() as name:
        engine = sa.create_engine(_pg_url(name), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            off = conn.execute(sa.text("SHOW autovacuum")).scalar() == "off"
        stop = threading.Event()

        def analyze() -> None:
            with engine.connect() as conn:
                while not stop.wait(1):
                    for (table,) in conn.execute(sa.text(
                            "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
                            "WHERE s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)")).all():
                        conn.execute(sa.text(f'ANALYZE "{table}"'))

        thread = threading.Thread(target=analyze, daemon=True)
        if off:
            thread.start()
        try:
            yield name
        finally:
            stop.set()
            if off:
                thread.join()
            engine.dispose()


def pull(root: Path, size: int) -> dict[str, Any]:
    """The same ingest into a hub on SQLite and on PostgreSQL; each hub must hold or park every contact."""
    row: dict[str, Any] = {"load_before": load_average()}
    with free_port_sandbox(root / f"pull-{size}", ["crm"], seed=42, size=size, options=UNLIMITED) as sb:
        contacts = sb.seed_report("crm")["counts"]["contacts"]
        with database() as name:
            empty = _database_bytes(name)
            for store, url in (("sqlite", f"sqlite:///{root / f'pull-{size}.sqlite'}"),
                               ("postgres", _pg_url(name))):
                done = framework(sb, "ingest", url)
                held = _held(url)
                if not done["success"] or held != contacts:
                    raise RuntimeError(f"pull {size:,} on {store}: success {done['success']}, "
                                       f"{held:,} of {contacts:,} contacts in the hub or parked")
                row[f"{store}_rps"] = contacts / done["seconds"]
                print(f"pull {contacts:,}: hub on {store} {row[f'{store}_rps']:,.0f} rec/s", flush=True)
            row["postgres_bytes"] = _database_bytes(name) - empty
    return {**row, "records": contacts, "ratio": row["postgres_rps"] / row["sqlite_rps"], "load_after": load_average()}


def _database_bytes(database: str) -> int:
    engine = sa.create_engine(_pg_url(database))
    with engine.connect() as conn:
        size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    engine.dispose()
    return size


def _held(url: str) -> int:
    """Contacts in the hub or parked in its dead-letter queue."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        held = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM hub_records WHERE object = 'customer') + "
            "(SELECT count(DISTINCT record_id) FROM dlq WHERE status = 'open')")).scalar()
    engine.dispose()
    return held


@dataclass(frozen=True)
class Run:
    """One `dagster job execute` of a flow, as timed outside and as Dagster recorded it."""

    job: str
    wall_s: float  # the command, start to exit (interpreter, definitions load, the run)
    cpu_s: float  # the command's own CPU time
    run_s: float  # Dagster's run, RUN_START to RUN_SUCCESS
    step_s: float  # its steps' durations, summed (on a worker: the worker's time)
    steps: int
    records: int  # records the run delivered to the consumer (the hub's ledger)
    events: int  # rows the run added to Dagster's event log


class Profile:
    """The production profile on a fresh database and sandbox, with `workers` Celery workers (0: in-process)."""

    def __init__(self, root: Path, systems: list[str], size: int, workers: int):
        self.root, self.systems, self.size, self.workers = root, systems, size, workers
        self.label = 0

    def __enter__(self) -> Profile:
        self._stack = contextlib.ExitStack()
        self.sandbox = self._stack.enter_context(
            free_port_sandbox(self.root / "sandbox", self.systems, seed=42, size=self.size, options=UNLIMITED))
        self.database = self._stack.enter_context(database())
        self.env = {**os.environ, **sandbox_env(LANDSCAPE, self.sandbox), **celery_env(self.database, self.root / "home"),
                    "INTEGRATIONS_EXECUTOR": "celery" if self.workers else "in_process"}  # a queue of its own
        self.logs = (self._stack.enter_context(celery_workers(self.env, self.root, [{}] * self.workers,
                                                              preload="definitions.definitions"))
                     if self.workers else [])
        self.instance = self._stack.enter_context(_instance(self.env))
        # each system is a pool; Dagster creates a pool's row at its first claim, and two runs claiming
        # a new pool at once on PostgreSQL fail one of them (UniqueViolation): made here, one by one
        for system in self.systems:
            self.instance.event_log_storage.initialize_concurrency_limit_to_default(system)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def execute(self, jobs: tuple[str, ...], in_process: bool = False) -> tuple[float, list[Run]]:
        """Run the flows at once, one `dagster job execute` each (`in_process`: without the workers):
        (wall seconds of them all, the runs).

        Raises unless every run succeeded and its steps ran on this profile's workers."""
        self.label += 1
        tag, in_process = f"{os.getpid()}-{self.label}", in_process or not self.workers
        env = {**self.env, "INTEGRATIONS_EXECUTOR": "in_process"} if in_process else self.env
        before = sum(log.read_text().count(" succeeded in ") for log in self.logs)
        started = time.perf_counter()
        with ThreadPoolExecutor(len(jobs)) as pool:
            timed = list(pool.map(lambda job: self._command(job, tag, env), jobs))
        wall = time.perf_counter() - started
        runs = [self._recorded(job, tag, seconds, cpu) for job, (seconds, cpu) in zip(jobs, timed, strict=True)]
        on_workers = sum(log.read_text().count(" succeeded in ") for log in self.logs) - before
        if on_workers != (0 if in_process else sum(r.steps for r in runs)):
            raise RuntimeError(f"{on_workers} steps ran on this benchmark's workers, "
                               f"{sum(r.steps for r in runs)} expected (another worker on the queue?)")
        return wall, runs

    def _command(self, job: str, tag: str, env: dict[str, str]) -> tuple[float, float]:
        log = self.root / f"{job}-{tag}.log"
        started = time.perf_counter()
        with log.open("w") as out:
            proc = subprocess.Popen(
                [str(BIN / "dagster"), "job", "execute", "-m", "definitions.definitions", "-a", "defs", "-j", job,
                 "--tags", json.dumps({"bench": tag})], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            timer = threading.Timer(RUN_TIMEOUT_S, proc.kill)  # a step whose task never comes back
            timer.start()
            _, status, usage = os.wait4(proc.pid, 0)
            timer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise RuntimeError(f"{job} failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
        return time.perf_counter() - started, usage.ru_utime + usage.ru_stime

    def _recorded(self, job: str, tag: str, wall: float, cpu: float) -> Run:
        (record,) = self.instance.get_run_records(dg.RunsFilter(job_name=job, tags={"bench": tag}))
        if record.dagster_run.status != dg.DagsterRunStatus.SUCCESS:
            raise RuntimeError(f"{job}: run {record.dagster_run.run_id} {record.dagster_run.status}")
        run_id = record.dagster_run.run_id
        steps = self.instance.get_run_step_stats(run_id)
        engine = sa.create_engine(self.env["INTEGRATIONS_DATABASE_URL"])  # Dagster's storage is there too
        with engine.connect() as conn:
            records = conn.execute(sa.text(
                "SELECT count(DISTINCT record_id) FROM ledger WHERE run_id = :run AND to_system = :consumer"),
                {"run": run_id, "consumer": _flow(job).consumer.name}).scalar()
            events = conn.execute(sa.text("SELECT count(*) FROM event_logs WHERE run_id = :run"), {"run": run_id}).scalar()
        engine.dispose()
        return Run(job=job, wall_s=wall, cpu_s=cpu, run_s=record.end_time - record.start_time,
                   step_s=sum(s.end_time - s.start_time for s in steps), steps=len(steps), records=records,
                   events=events)

    def verify(self, jobs: tuple[str, ...]) -> None:
        """Each flow's reconciliation: every source record in the hub or parked, every eligible hub
        record in the consumer (asked through its API) or parked for it with its reason."""
        with _environ(sandbox_env(LANDSCAPE, self.sandbox)):
            store = Store(self.env["INTEGRATIONS_DATABASE_URL"])
            for job in jobs:
                flow = _flow(job)
                extractor, loader = connect(flow.source, flow.source_binding), connect(flow.consumer, flow.binding)
                try:
                    found = reconcile(flow, extractor, loader, store)
                finally:
                    extractor.close()
                    loader.close()
                if not found.passed or not found.consumer:
                    raise RuntimeError(f"{job}: the consumer does not hold the hub's records: {found}")
            store.engine.dispose()


@contextlib.contextmanager
def _instance(env: dict[str, str]) -> Iterator[dg.DagsterInstance]:
    with _environ({"DAGSTER_POSTGRES_URL": env["DAGSTER_POSTGRES_URL"]}):
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            yield instance


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """These environment variables set in this process (connectors and the instance read them), then restored."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def one_flow(root: Path, size: int, repeat: int) -> dict[str, Any]:
    """`ONE_FLOW` in-process and on one Celery worker: a run over `size` records each (a fresh profile
    each), then, on the second profile, `repeat` runs with nothing new by each executor, alternating."""
    full: dict[str, dict[str, Any]] = {}
    empty: dict[str, list[dict[str, Any]]] = {"in-process": [], "1 Celery worker": []}
    load_before = load_average()
    for workers in (0, 1):
        with Profile(root / f"one-{workers}", _systems((ONE_FLOW,)), size, workers) as profile:
            executor = "1 Celery worker" if workers else "in-process"
            _, (run,) = profile.execute((ONE_FLOW,))
            full[executor] = asdict(run)
            print(f"one flow, {executor}: {run.records:,} records, run {run.run_s:.1f} s "
                  f"(command {run.wall_s:.1f} s)", flush=True)
            if workers:
                for _ in range(repeat):
                    for name, in_process in (("in-process", True), ("1 Celery worker", False)):
                        _, (run,) = profile.execute((ONE_FLOW,), in_process=in_process)
                        empty[name].append(asdict(run))
                print("one flow, nothing new: " + "; ".join(
                    f"{name} run {_median(runs, 'run_s'):.1f} s" for name, runs in empty.items()), flush=True)
            profile.verify((ONE_FLOW,))
    return {"full": full, "empty": empty, "repeat": repeat, "load_before": load_before, "load_after": load_average()}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def concurrent(root: Path, size: int, levels: list[int]) -> list[dict[str, Any]]:
    """The first k of FLOWS at once, for each k of `levels`, on 1 and on 2 workers (a fresh profile each)."""
    rows = []
    for k in levels:
        jobs = FLOWS[:k]
        for workers in (1, 2):
            with Profile(root / f"at-once-{k}-{workers}", _systems(jobs), size, workers) as profile:
                load_before = load_average()
                wall, runs = profile.execute(jobs)
                profile.verify(jobs)
            records = sum(r.records for r in runs)
            rows.append({"flows": k, "workers": workers, "wall_s": wall, "records": records, "rps": records / wall,
                         "runs": [asdict(r) for r in runs], "load_before": load_before, "load_after": load_average()})
            print(f"{k} flows at once on {workers} worker(s): {records:,} records in {wall:.1f} s "
                  f"({records / wall:,.0f} rec/s); per run {', '.join(f'{r.wall_s:.1f}' for r in runs)} s", flush=True)
    return rows


def receiver_events_per_s() -> tuple[float | None, str]:
    """The receiver's measured events/s (PostgreSQL inbox if measured, else SQLite) from docs/performance.json."""
    path = ROOT / "docs" / "performance.json"
    block = json.loads(path.read_text()).get("receiver") if path.exists() else None
    if not block:
        return None, "not measured"
    for name, figure in sorted(block["figures"].items(), key=lambda kv: "PostgreSQL" not in kv[0]):
        if name.startswith("receiver"):
            return figure["per_second"], f"{name}, {block['date']}"
    return None, "not measured"


def plan(pulls: list[dict], one: dict[str, Any]) -> dict[str, Any]:
    """The capacity estimate for 200 systems and 10 million records a day, from this run's figures."""
    full, empty = one["full"]["1 Celery worker"], one["empty"]["1 Celery worker"]
    largest = max(pulls, key=lambda p: p["records"])
    flows = LANDSCAPE.flows()
    per_event, receiver_source = receiver_events_per_s()
    measured = Measured(
        worker_seconds_per_run=_median(empty, "step_s"),
        worker_records_per_s=full["records"] / (full["step_s"] - _median(empty, "step_s")),
        run_process_cpu_s=_median([full, *empty], "cpu_s"),
        events_per_run=_median([full, *empty], "events"),
        hub_bytes_per_record=largest["postgres_bytes"] / largest["records"],
        postgres_ingest_rps=largest["postgres_rps"], receiver_events_per_s=per_event)
    assumed = Assumptions(flows_per_system=len(flows) / len(LANDSCAPE.systems),
                          consumers_per_record=len(flows) / len({f.ingest.name for f in flows}))
    return {"measured": asdict(measured), "assumed": asdict(assumed), "needs": asdict(needs(measured, assumed)),
            "receiver_source": receiver_source}


def tables(results: dict[str, Any]) -> str:
    """The Markdown tables of one run."""
    analyzed = ("" if results["postgres_autovacuum"] == "on" else
                " (the server's autovacuum is off: the benchmark analyzes its databases by autovacuum's rule)")
    lines = ["Pull: the same ingest of the sandbox CRM's contacts (extract + validate + commit), hub store on "
             f"SQLite then on PostgreSQL{analyzed}, Dagster's ephemeral instance.", "",
             "| contacts | hub on SQLite (records/s) | hub on PostgreSQL (records/s) | PostgreSQL × SQLite | load before → after |",
             "|---:|---:|---:|---:|---|"]
    lines += [f"| {p['records']:,} | {p['sqlite_rps']:,.0f} | {p['postgres_rps']:,.0f} | {p['ratio']:.2f} | "
              f"{p['load_before']} → {p['load_after']} |" for p in results["pull"]]
    one = results["one_flow"]
    lines += ["", f"One flow (`{ONE_FLOW}`), `dagster job execute` on the production profile (instance and hub on "
              "PostgreSQL): a run over the records (a fresh sandbox and database each), then "
              f"{one['repeat']} runs with nothing new by each executor, alternating (medians). "
              f"Load {one['load_before']} → {one['load_after']}.", "",
              "| executor | records | command (s) | run (s) | steps, summed (s) | command CPU (s) | "
              "nothing new: command (s) | nothing new: run (s) | nothing new: steps (s) | event-log rows, full run |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, full in one["full"].items():
        empty = one["empty"][name]
        lines.append(f"| {name} | {full['records']:,} | {full['wall_s']:.1f} | {full['run_s']:.1f} | "
                     f"{full['step_s']:.1f} | {full['cpu_s']:.1f} | {_median(empty, 'wall_s'):.1f} | "
                     f"{_median(empty, 'run_s'):.1f} | {_median(empty, 'step_s'):.2f} | {full['events']:,} |")
    lines += ["", "Independent flows at once (" + ", ".join(f"`{f}`" for f in FLOWS) + "; the first k), one "
              "`dagster job execute` each, steps on Celery workers.", "",
              "| flows at once | workers | records | wall (s) | records/s | × 1 worker | per run, command (s): mean / max "
              "| per run, Dagster run (s): mean / max | load before → after |",
              "|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for r in results["at_once"]:
        one = next(o for o in results["at_once"] if o["flows"] == r["flows"] and o["workers"] == 1)
        walls, runs = [x["wall_s"] for x in r["runs"]], [x["run_s"] for x in r["runs"]]
        lines.append(f"| {r['flows']} | {r['workers']} | {r['records']:,} | {r['wall_s']:.1f} | {r['rps']:,.0f} | "
                     f"{r['rps'] / one['rps']:.2f} | {statistics.mean(walls):.1f} / {max(walls):.1f} | "
                     f"{statistics.mean(runs):.1f} / {max(runs):.1f} | {r['load_before']} → {r['load_after']} |")
    p = results["plan"]
    m, a, n = p["measured"], p["assumed"], p["needs"]
    receivers = ("not measured" if n["receivers"] is None else
                 f"{n['receivers']} (one receiver: {m['receiver_events_per_s']:,.0f} events/s, {p['receiver_source']})")
    lines += ["", f"On paper, from the figures above: {a['systems']} systems, {a['records_per_day']:,} records a day.",
              "", "| | |", "|---|---|",
              f"| assumed | {a['flows_per_system']:.2f} flows a system and {a['consumers_per_record']:.2f} consumers "
              f"a record (the example's ratios); a run per flow every {DAY / 60 / a['runs_per_flow_per_day']:g} min; "
              f"the busiest hour {a['peak_factor']:g} × the average; {a['webhook_share']:.0%} of records by webhook; "
              f"every resource {a['utilization']:.0%} busy at the peak |",
              f"| measured (1 Celery worker) | {m['worker_seconds_per_run']:.2f} worker-s a run with nothing new; "
              f"{m['worker_records_per_s']:,.0f} records/s a worker beyond it; {m['run_process_cpu_s']:.1f} CPU-s "
              f"a run's own process; {m['events_per_run']:,.0f} event-log rows a run; "
              f"{m['hub_bytes_per_record']:,.0f} bytes of PostgreSQL a record ingested |",
              f"| load | {n['flows']:,} flows, {n['runs_per_day']:,} runs a day; "
              f"{n['peak_records_per_s']:,.0f} records/s at the peak |",
              f"| Celery workers (one core each) | {n['workers']} ({n['worker_busy']:.1f} kept busy at the peak) |",
              f"| cores for the runs' own processes | {n['run_cores']} |",
              f"| PostgreSQL | +{n['hub_gb_per_day']:.1f} GB a day in the hub (before pruning the ledger); "
              f"{n['event_rows_per_day']:,} event-log rows a day; the peak is "
              f"{n['postgres_ingest_share']:.2f} × one ingest's measured rate |",
              f"| webhook receivers | {receivers} |"]
    return "\n".join(lines)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pull", type=int, nargs="+", default=[10_000, 100_000], help="contacts for the pull")
    parser.add_argument("--flow", type=int, default=2_000, help=f"sandbox size (records) for {ONE_FLOW}, in-process vs Celery")
    parser.add_argument("--repeat", type=int, default=3, help="runs with nothing new by each executor")
    parser.add_argument("--flows", type=int, default=1_000, help="sandbox size (records each source) for the flows at once")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[2, 4], choices=range(1, len(FLOWS) + 1),
                        help="flows at once")
    parser.add_argument("--no-publish", action="store_true", help="print only; leave docs/performance.* as they are")
    args = parser.parse_args()
    print(f"machine: {machine()}; {now()}; load average {load_average()}", flush=True)
    admin = sa.create_engine(_pg_url("postgres"))
    with admin.connect() as conn:
        autovacuum = conn.execute(sa.text("SHOW autovacuum")).scalar()
    admin.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results: dict[str, Any] = {"postgres_autovacuum": autovacuum, "pull": [pull(root, size) for size in sorted(args.pull)],
                                   "one_flow": one_flow(root, args.flow, args.repeat),
                                   "at_once": concurrent(root, args.flows, sorted(args.concurrency))}
    results["plan"] = plan(results["pull"], results["one_flow"])
    table = tables(results)
    print(table)
    if not args.no_publish:
        publish("scale", results, table)


if __name__ == "__main__":
    main()
