"""Dagster's own floor for a sensor-triggered run: the latency benchmark's second code location.

A bare sensor (no framework) requests a run when new request files are in FLOOR_DIR/requests, with
the same minimum interval as the framework's inbox sensors (FLOOR_INTERVAL), and a one-line asset
writes the time it ran to FLOOR_DIR/done for each request pending then. Same instance, daemon, run queue, launcher and executor
as the framework's flows: what is left between the two is the framework's own cost.
"""

import os
import time
from pathlib import Path

import dagster as dg

DIR = Path(os.environ.get("FLOOR_DIR", ".floor"))


@dg.asset
def floor_asset() -> None:
    """Record when the run got here for every request pending now (as a framework run covers every
    event pending when it reads)."""
    now = repr(time.time())
    for request in (DIR / "requests").iterdir():
        if not (done := DIR / "done" / request.name).exists():
            done.write_text(now)


floor_job = dg.define_asset_job("floor_job", [floor_asset])


@dg.sensor(job=floor_job, minimum_interval_seconds=int(os.environ.get("FLOOR_INTERVAL", "4")),
           default_status=dg.DefaultSensorStatus.RUNNING)
def floor_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """One run for the newest request file after the cursor."""
    new = sorted((int(p.name) for p in (DIR / "requests").glob("*")), reverse=True)
    if not new or new[0] <= int(context.cursor or -1):
        return dg.SkipReason("no new request")
    context.update_cursor(str(new[0]))
    return dg.RunRequest(run_key=str(new[0]), tags={"floor/n": str(new[0])})


defs = dg.Definitions(assets=[floor_asset], jobs=[floor_job], sensors=[floor_sensor], executor=dg.in_process_executor)
