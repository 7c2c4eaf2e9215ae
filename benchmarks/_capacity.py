"""On paper: what a landscape of many systems would need, from figures measured on one machine.

`bench_scale.py` measures the inputs (`Measured`) and states the load (`Assumptions`); `needs`
is the arithmetic, kept pure so that it is tested apart from the measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DAY = 86_400


@dataclass(frozen=True)
class Measured:
    """Figures of the production profile measured by bench_scale (one Celery worker = one core)."""

    worker_seconds_per_run: float  # a run that finds nothing new: its steps' time on a worker
    worker_records_per_s: float  # records one worker ingests and delivers beyond that fixed cost
    run_process_cpu_s: float  # CPU of the process that starts and watches one run (`dagster job execute`)
    events_per_run: float  # rows a run adds to Dagster's event log
    hub_bytes_per_record: float  # PostgreSQL database growth per record ingested (rows, ledger, indexes)
    postgres_ingest_rps: float  # one ingest's records/s into the hub on PostgreSQL
    receiver_events_per_s: float | None  # one receiver process, from the receiver benchmark


@dataclass(frozen=True)
class Assumptions:
    """The load to plan for; every figure is a stated guess, not a measurement."""

    systems: int = 200
    records_per_day: int = 10_000_000
    flows_per_system: float = 1.0  # the example landscape's ratio, passed in by the benchmark
    consumers_per_record: float = 1.0  # deliveries per ingested record (the example's flows per ingest)
    runs_per_flow_per_day: int = 96  # one run every 15 minutes
    peak_factor: float = 4.0  # the busiest hour carries this many times the average hour's records
    webhook_share: float = 0.5  # share of records that arrive as webhook events
    utilization: float = 0.6  # plan each resource to 60 % busy at the peak


@dataclass(frozen=True)
class Needs:
    """What the assumed load needs, at its peak."""

    flows: int
    runs_per_day: int
    peak_records_per_s: float
    worker_busy: float  # worker-seconds of work per second at the peak (= cores kept busy)
    workers: int
    run_cores: int  # cores for the processes that start and watch the runs
    hub_gb_per_day: float
    event_rows_per_day: int
    postgres_ingest_share: float  # peak records/s as a multiple of one ingest's measured rate
    receivers: int | None


def needs(m: Measured, a: Assumptions) -> Needs:
    """Workers, run cores, database growth and receivers for load `a` at the rates `m`.

    Runs are scheduled evenly over the day (their fixed cost is not peaked); records peak by
    `peak_factor`, each one ingested and delivered `consumers_per_record` times at the measured
    rate of an ingest plus a delivery (conservative: the ingest is counted once per consumer)."""
    flows = round(a.systems * a.flows_per_system)
    runs_per_day = flows * a.runs_per_flow_per_day
    peak = a.records_per_day / DAY * a.peak_factor
    busy = runs_per_day / DAY * m.worker_seconds_per_run + peak * a.consumers_per_record / m.worker_records_per_s
    receivers = (None if m.receiver_events_per_s is None else
                 max(1, math.ceil(peak * a.webhook_share / (m.receiver_events_per_s * a.utilization))))
    return Needs(
        flows=flows, runs_per_day=runs_per_day, peak_records_per_s=peak, worker_busy=busy,
        workers=max(1, math.ceil(busy / a.utilization)),
        run_cores=max(1, math.ceil(runs_per_day / DAY * m.run_process_cpu_s / a.utilization)),
        hub_gb_per_day=a.records_per_day * m.hub_bytes_per_record / 1e9,
        event_rows_per_day=round(runs_per_day * m.events_per_run),
        postgres_ingest_share=peak / m.postgres_ingest_rps, receivers=receivers)
