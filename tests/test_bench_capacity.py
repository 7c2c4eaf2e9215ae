"""The capacity arithmetic of benchmarks/bench_scale.py, on figures worked out by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks._capacity import Assumptions, Measured, needs

MEASURED = Measured(worker_seconds_per_run=1.0, worker_records_per_s=100, run_process_cpu_s=4.32, events_per_run=40,
                    hub_bytes_per_record=1_000, postgres_ingest_rps=1_000, receiver_events_per_s=1_000)
# 8,640,000 records a day = 100 a second on average; 150 flows, a run each every 15 min = one run every 6 s
ASSUMED = Assumptions(systems=100, records_per_day=8_640_000, flows_per_system=1.5, consumers_per_record=2,
                      runs_per_flow_per_day=96, peak_factor=2, webhook_share=0.5, utilization=0.5)


def test_needs_from_hand_worked_figures():
    found = needs(MEASURED, ASSUMED)
    assert (found.flows, found.runs_per_day, found.peak_records_per_s) == (150, 14_400, pytest.approx(200))
    assert found.worker_busy == pytest.approx(1 / 6 * 1.0 + 200 * 2 / 100)  # runs' fixed cost + records
    assert found.workers == 9  # 4.17 busy at 50 %
    assert found.run_cores == 2  # 1/6 run a second x 4.32 CPU-s at 50 %
    assert found.hub_gb_per_day == pytest.approx(8.64)
    assert found.event_rows_per_day == 576_000
    assert found.postgres_ingest_share == pytest.approx(0.2)
    assert found.receivers == 1  # 100 webhook events/s against 500 a receiver at 50 %


def test_receivers_unknown_without_a_receiver_figure_and_never_fewer_workers_for_more_records():
    assert needs(replace(MEASURED, receiver_events_per_s=None), ASSUMED).receivers is None
    more = needs(MEASURED, replace(ASSUMED, records_per_day=10 * ASSUMED.records_per_day))
    assert more.workers > needs(MEASURED, ASSUMED).workers and more.receivers == 2
