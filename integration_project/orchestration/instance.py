"""The local Dagster instance: SQLite storage under DAGSTER_HOME, tuned for prompt syncs."""

from __future__ import annotations

import os
from pathlib import Path

# Runs start within ~1 s of being queued (the default polls every 5 s); each system is a pool
# (ops that call it share its limit across runs: the vendor's request budget); telemetry stays
# off so a local instance never reaches outside the machine.
INSTANCE_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 4
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""


def ensure_instance(home: Path | None = None) -> Path:
    """Create DAGSTER_HOME (default `.dagster_home`) with its dagster.yaml if missing; return it."""
    home = (home or Path(os.environ.get("DAGSTER_HOME", ".dagster_home"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    return home
