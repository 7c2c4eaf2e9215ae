"""The local run launcher: each run forked from a process that has Dagster and the framework imported.

Dagster's `DefaultRunLauncher` has the code server start each run in a fresh interpreter
(multiprocessing's spawn), which imports Dagster, the framework and the definitions again: most of
a webhook change's way to its consumer (docs/performance.md, latency). This launcher keeps one warm
process (`python -m integration_project.orchestration.launcher`, started at the first launch) that
imported the libraries once (`preload`) and forks a process per run; the run's code location is
still imported afresh in that process, so a changed definition reaches the next run as with the
default launcher. The run's process then does what `dagster api execute_run` does.

The warm process is single-threaded (a fork keeps no other thread's locks), reads one run per line
on its stdin and ends when the launcher's process does; runs already forked go on to their end, in
the launcher's process group (a Ctrl-C of `dagster dev` reaches them, as it reaches the default
launcher's). For one machine (the local profile): the run's pid, kept as a run tag, is how any
process of the instance (the UI's terminate button) interrupts it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from importlib import import_module
from typing import IO, Any

import dagster as dg
from dagster._cli.api import _execute_run_command_body
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import LaunchRunContext, RunLauncher
from dagster._serdes import ConfigurableClass, ConfigurableClassData, deserialize_value, serialize_value
from dagster._utils.interrupts import capture_interrupts

PID_TAG = "integration/run_pid"
# what every run imports before it reaches the user's code: imported once, in the forkserver
PRELOAD = ["sqlalchemy", "pydantic", "httpx", "integration_project.orchestration.build"]


def execute(run_id: str, instance_ref: InstanceRef) -> None:
    """A run's process: load its job from its code origin, execute it, log to the instance."""
    with capture_interrupts(), dg.DagsterInstance.from_ref(instance_ref) as instance:
        _execute_run_command_body(run_id, instance, lambda _event: None, set_exit_code_on_failure=False)


def serve(preload: Sequence[str], requests: IO[str], replies: IO[str]) -> None:
    """The warm process: import `preload`, then fork a run's process per request line
    (`run id` TAB `serialized instance ref`), answering each with the new process's pid."""
    for module in preload:
        import_module(module)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # runs are reaped by the kernel, never waited for
    for line in requests:
        run_id, ref = line.rstrip("\n").split("\t", 1)
        pid = os.fork()
        if pid == 0:  # the run's process: the requests and replies are the warm process's, not its own
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            replies.close()
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(2, 1)
            code = 0
            try:
                execute(run_id, deserialize_value(ref, InstanceRef))
            except BaseException:  # noqa: BLE001 - failures are in the run's event log; the exit code says it
                code = 1
            finally:
                os._exit(code)
        replies.write(f"{pid}\n")
        replies.flush()


class WarmRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run as a fork of a warm process (`run_launcher` in dagster.yaml)."""

    def __init__(self, preload: Sequence[str] | None = None, inst_data: ConfigurableClassData | None = None):
        self._inst_data = inst_data
        self._preload = list(preload or PRELOAD)
        self._lock = threading.Lock()
        self._warm: subprocess.Popen[str] | None = None
        self._replies: IO[str] | None = None
        super().__init__()

    def _start(self) -> None:
        """Start the warm process; its replies come on a pipe of their own (what it imports may print)."""
        read, write = os.pipe()
        self._warm = subprocess.Popen([sys.executable, "-m", __name__, str(write), *self._preload], text=True,
                                      stdin=subprocess.PIPE, pass_fds=(write,))
        os.close(write)
        self._replies = os.fdopen(read)

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"preload": dg.Field([str], is_required=False,
                                    description="modules the warm process imports once (default: Dagster, "
                                                "the framework and their libraries)")}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> WarmRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        request = f"{run.run_id}\t{serialize_value(self._instance.get_ref())}\n"
        with self._lock:
            if self._warm is None or self._warm.poll() is not None:
                self._start()
            assert self._warm is not None and self._warm.stdin is not None and self._replies is not None
            self._warm.stdin.write(request)
            self._warm.stdin.flush()
            pid = self._replies.readline().strip()
        if not pid:
            raise RuntimeError(f"the warm run process ended (exit code {self._warm.wait()}) before forking the run")
        self._instance.add_run_tags(run.run_id, {PID_TAG: pid})

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished or PID_TAG not in run.tags:
            return False
        self._instance.report_run_canceling(run)
        try:  # the run's process turns the interrupt into a cancelled run
            os.kill(int(run.tags[PID_TAG]), signal.SIGINT)
        except ProcessLookupError:
            return False
        return True

    def dispose(self) -> None:
        if self._warm is not None and self._warm.stdin is not None:
            self._warm.stdin.close()  # the warm process ends; runs it forked go on


if __name__ == "__main__":
    serve(sys.argv[2:], sys.stdin, os.fdopen(int(sys.argv[1]), "w"))
