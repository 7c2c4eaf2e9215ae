"""The local Dagster instance: SQLite storage under DAGSTER_HOME, tuned for prompt syncs."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

# Runs start within ~1 s of being queued (the default polls every 5 s), each forked from a warm
# process (launcher.py: no interpreter start and Dagster import per run), one run of a lane at a
# time (a flow's runs, and its source's realtime runs when it is realtime: a second one waits, as
# two would send the same records and interleave a consumer's check-then-act writes); each system is a pool (ops that call it share its limit across runs:
# the vendor's request budget); telemetry stays off so a local instance never reaches outside the
# machine.
INSTANCE_YAML = """\
telemetry:
  enabled: false
run_launcher:
  module: integration_project.orchestration.launcher
  class: WarmRunLauncher
concurrency:
  pools:
    default_limit: 4
  runs:
    tag_concurrency_limits:
      - key: integration/lane
        value:
          applyLimitPerUniqueValue: true
        limit: 1
      - key: integration/maintenance
        value:
          applyLimitPerUniqueValue: true
        limit: 1
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""


# Many machines: Dagster's own engine. Run, event-log and schedule storage on PostgreSQL
# (DAGSTER_POSTGRES_URL), queued runs with a global limit, failed runs retried; steps go to
# Celery workers when INTEGRATIONS_EXECUTOR=celery (see executor()).
PRODUCTION_YAML = """\
telemetry:
  enabled: false
storage:
  postgres:
    postgres_url:
      env: DAGSTER_POSTGRES_URL
concurrency:
  pools:
    default_limit: 4
  runs:
    max_concurrent_runs: 20
    tag_concurrency_limits:
      - key: integration/lane
        value:
          applyLimitPerUniqueValue: true
        limit: 1
      - key: integration/maintenance
        value:
          applyLimitPerUniqueValue: true
        limit: 1
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
run_retries:
  enabled: true
  max_retries: 2
"""

PROFILES = {"local": INSTANCE_YAML, "production": PRODUCTION_YAML}
# the framework's own profiles as written before runs were limited per lane (per flow then)
BEFORE_LANES = {text.replace("integration/lane", "integration/flow"): text for text in PROFILES.values()}


def ensure_instance(home: Path | None = None, profile: str = "local") -> Path:
    """Create DAGSTER_HOME (default `.dagster_home`) with its dagster.yaml, and its SQLite storage
    for the local profile, if missing; return it. A dagster.yaml this framework wrote before runs
    were queued per lane, and nobody edited since, is brought up to date.

    The storage is made here, once: processes started together on a fresh home (the UI, its daemon,
    `docs serve`) otherwise race to create the same tables ("table alembic_version already exists").
    """
    home = (home or Path(os.environ.get("DAGSTER_HOME", ".dagster_home"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(PROFILES[profile])
    elif (upgraded := BEFORE_LANES.get(config.read_text())) is not None:  # ours, untouched: brought up to date
        config.write_text(upgraded)
    if config.read_text() == INSTANCE_YAML and not (home / "schedules" / "schedules.db").exists():
        with dg.DagsterInstance.from_config(str(home)):  # creates run, event-log and schedule storage
            pass
    return home


def executor() -> dg.ExecutorDefinition:
    """In-process by default (one process per run); Celery workers on INTEGRATIONS_EXECUTOR=celery.

    One run in one process avoids a process start per step, which costs seconds of CPU here; the
    Celery executor spreads steps over workers, its broker read from INTEGRATIONS_CELERY_BROKER,
    its queue from INTEGRATIONS_CELERY_QUEUE (default `dagster`: deployments that share a broker
    each need their own, or one's workers take the other's steps and fail to find their runs).
    """
    if os.environ.get("INTEGRATIONS_EXECUTOR", "in_process") == "celery":
        from dagster_celery import celery_executor  # the `scale` extra

        queue = os.environ.get("INTEGRATIONS_CELERY_QUEUE")
        return celery_executor.configured(
            {"broker": {"env": "INTEGRATIONS_CELERY_BROKER"},
             **({"config_source": {"task_default_queue": queue}} if queue else {})},
            name="celery_executor")
    return dg.in_process_executor
