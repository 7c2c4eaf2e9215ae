"""The warm run launcher on a real instance, runs queued by `dagster job launch` and launched by
`dagster-daemon`, as under `dagster dev`: each run is a fork of one warm process, its code location
imported afresh; the launcher does not wait for its runs; terminate cancels a run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from integration_project.orchestration.launcher import PID_TAG

DAGSTER, DAEMON = Path(sys.executable).with_name("dagster"), Path(sys.executable).with_name("dagster-daemon")
DEFINITIONS = """
import os, time
from pathlib import Path
import dagster as dg
VERSION = {version}
OUT = Path(os.environ["OUT"])
@dg.asset
def a(context):
    (OUT / context.run_id).write_text(f"{{os.getppid()}} {{VERSION}}")
    while (OUT / "hold").exists():
        time.sleep(0.05)
defs = dg.Definitions(assets=[a], jobs=[dg.define_asset_job("j", [a])], executor=dg.in_process_executor)
"""
INSTANCE = """
telemetry: {enabled: false}
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config: {dequeue_interval_seconds: 1}
run_launcher:
  module: integration_project.orchestration.launcher
  class: WarmRunLauncher
  config: {preload: [dagster, marker]}
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text(INSTANCE)
    (tmp_path / "out").mkdir()
    # imported once, by the warm process: a file named after the process that imported it
    (tmp_path / "marker.py").write_text("import os, pathlib\n"
                                        "pathlib.Path(os.environ['OUT'], f'marker-{os.getpid()}').touch()\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    (tmp_path / "defs_mod.py").write_text(DEFINITIONS.format(version=1))
    daemon = subprocess.Popen([str(DAEMON), "run", "-f", str(tmp_path / "defs_mod.py")], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield tmp_path
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def launch(home: Path, version: int) -> dg.DagsterRun:
    """Write the definitions at `version`, launch their job with the CLI, return the new run."""
    (home / "defs_mod.py").write_text(DEFINITIONS.format(version=version))
    with dg.DagsterInstance.get() as instance:
        before = {r.run_id for r in instance.get_runs()}
    subprocess.run([str(DAGSTER), "job", "launch", "-f", str(home / "defs_mod.py"), "-j", "j"], cwd=home,
                   check=True, capture_output=True, timeout=300)
    with dg.DagsterInstance.get() as instance:
        (run,) = [r for r in instance.get_runs() if r.run_id not in before]
        return run


def wait(predicate, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s")


def finished(run_id: str) -> dg.DagsterRun:
    def done() -> dg.DagsterRun | None:
        with dg.DagsterInstance.get() as instance:
            run = instance.get_run_by_id(run_id)
            return run if run and run.is_finished else None
    return wait(done, f"run {run_id} finished")


def test_each_run_is_forked_from_one_warm_process_and_imports_its_definitions_afresh(home):
    first = launch(home, 1)
    assert finished(first.run_id).status == dg.DagsterRunStatus.SUCCESS
    second = launch(home, 2)  # the definitions changed since the warm process started
    assert finished(second.run_id).status == dg.DagsterRunStatus.SUCCESS
    (marker,) = [p.name for p in (home / "out").glob("marker-*")]  # preloaded once, in the warm process
    parents = {(home / "out" / r.run_id).read_text() for r in (first, second)}
    assert parents == {f"{marker.removeprefix('marker-')} 1", f"{marker.removeprefix('marker-')} 2"}
    assert all(finished(r.run_id).tags[PID_TAG].isdigit() for r in (first, second))


def test_the_launch_returns_while_the_run_goes_on_and_terminate_cancels_it(home):
    (home / "out" / "hold").touch()  # the run's step waits while this file is there
    run = launch(home, 1)
    wait(lambda: (home / "out" / run.run_id).exists(), "the run's step started")
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        assert instance.run_launcher.terminate(run.run_id)  # from another process, as the UI's button
    assert finished(run.run_id).status == dg.DagsterRunStatus.CANCELED
