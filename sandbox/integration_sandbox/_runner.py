"""Start, find and stop sandbox systems, each in its own process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from integration_project import errors
from integration_project.errors import IntegrationError

from ._config import CONFIG_ENV, DEFAULT_PORTS, SYSTEMS, SystemConfig
from ._faults import Faults

STATE_FILE = "sandbox.json"
_SERVE_MODULE = "integration_sandbox._serve"
_PACKAGE_ROOT = Path(errors.__file__).resolve().parent  # the framework's folder
# A system process needs a few of the framework's modules, not its whole public API: registering the
# packages bare skips their __init__ (the declaration model, networkx, ...), which measured here saves
# 1-2 s of CPU per system process (8 per sandbox) on this 2-core machine.
_BOOTSTRAP = f"""
import sys, types
for name, folder in (("integration_project", {str(_PACKAGE_ROOT)!r}),
                     ("integration_project.webhooks", {str(_PACKAGE_ROOT / "webhooks")!r})):
    package = types.ModuleType(name)
    package.__path__ = [folder]
    sys.modules[name] = package
from {_SERVE_MODULE} import main
sys.exit(main())
"""


class SandboxError(IntegrationError):
    """The sandbox could not start or stop; the message is one line, fit for a terminal."""


@dataclass(frozen=True)
class RunningSystem:
    """One system of a running sandbox, as recorded in `<data_dir>/run/sandbox.json`."""

    system: str
    pid: int
    port: int
    token: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        """Base URL of the system's HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        """Whether the recorded process still runs and is a sandbox process (not a reused pid)."""
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return False
        return _SERVE_MODULE.encode() in cmdline


def health_path(system: str) -> str:
    """The path that answers once a system is ready; never subject to injected faults."""
    # localstripe authenticates every path, and serves only after its start-up (seeding) is done.
    return "/_sandbox/faults" if system == "billing" else "/_sandbox/health"


def answers(system: str, url: str, token: str, timeout: float = 2.0) -> bool:
    """Whether the system at url answers its health path with 200."""
    try:
        response = httpx.get(url + health_path(system), headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def recorded(data_dir: Path) -> list[RunningSystem]:
    """The systems recorded as started in a data folder, alive or not (see `RunningSystem.alive`)."""
    path = Path(data_dir) / "run" / STATE_FILE
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [RunningSystem(e["system"], int(e["pid"]), int(e["port"]), e.get("token", "")) for e in entries]


def running(data_dir: Path) -> list[RunningSystem]:
    """The systems recorded as started in a data folder whose processes are still alive."""
    return [s for s in recorded(data_dir) if s.alive()]


def stop_running(data_dir: Path, timeout: float = 10.0) -> list[RunningSystem]:
    """Stop every live system recorded in a data folder (SIGTERM, then SIGKILL); returns those stopped."""
    systems = running(data_dir)
    _terminate([s.pid for s in systems], timeout)
    (Path(data_dir) / "run" / STATE_FILE).unlink(missing_ok=True)
    return systems


def _terminate(pids: Sequence[int], timeout: float) -> None:
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while _exists(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _exists(pid):
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _exists(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return waited == 0


class Sandbox:
    """Sandbox systems in their own processes on 127.0.0.1; a context manager, or `start()`/`stop()`.

    `ports` maps a system to its port (0 picks a free one); unlisted systems use `DEFAULT_PORTS`.
    `tokens`, `faults` and `options` are per system; `webhook_url` is where the systems post their
    signed events (None: no webhooks), `{system}` in it standing for each system's name, e.g.
    `http://127.0.0.1:8100/webhooks/{system}`. Seeding happens on a system's first start in `data_dir`.
    The systems stop with the process that started them unless `detach` (as `integrations sandbox up`).
    """

    def __init__(
        self,
        data_dir: Path,
        systems: Sequence[str] | None = None,
        ports: Mapping[str, int] | None = None,
        seed: int = 42,
        size: int = 50,
        *,
        tokens: Mapping[str, str] | None = None,
        faults: Mapping[str, Faults] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        webhook_url: str | None = None,
        webhook_duplicate_rate: float = 0.05,
        startup_timeout: float = 120.0,
        detach: bool = False,
    ):
        chosen = list(SYSTEMS if systems is None else systems)
        unknown = [s for s in chosen if s not in SYSTEMS]
        if unknown:
            raise SandboxError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
        self.data_dir = Path(data_dir).resolve()
        self.startup_timeout = startup_timeout
        self.detach = detach
        self._ports = {s: (ports or {}).get(s, DEFAULT_PORTS[s]) for s in chosen}
        self.configs = {
            s: SystemConfig(
                system=s,
                data_dir=self.data_dir,
                token=(tokens or {}).get(s, ""),
                seed=seed,
                size=size,
                faults=(faults or {}).get(s, Faults()),
                webhook_url=webhook_url.replace("{system}", s) if webhook_url else None,
                webhook_duplicate_rate=webhook_duplicate_rate,
                options=dict((options or {}).get(s, {})),
            )
            for s in chosen
        }
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._bound: dict[str, int] = {}

    @classmethod
    def attach(cls, data_dir: Path) -> Sandbox:
        """The live systems recorded in a data folder (started by any process), to read their URLs and
        credentials; it did not start them, so stop them with `stop_running`, not `stop()`."""
        live = running(data_dir)
        sandbox = cls(data_dir, [s.system for s in live], tokens={s.system: s.token for s in live})
        sandbox._bound = {s.system: s.port for s in live}
        return sandbox

    @property
    def systems(self) -> list[str]:
        """The systems this sandbox runs."""
        return list(self.configs)

    def url(self, system: str) -> str:
        """Base URL of a started system, e.g. `http://127.0.0.1:8101`."""
        return f"http://127.0.0.1:{self.port(system)}"

    def port(self, system: str) -> int:
        """The port a started system listens on."""
        if system not in self._bound:
            raise SandboxError(f"{system} is not running in this sandbox")
        return self._bound[system]

    def token(self, system: str) -> str:
        """The API token (or key) a client must present to a system."""
        return self.configs[system].token

    def webhook_secret(self, system: str) -> str:
        """The secret a system signs its webhooks with."""
        return self.configs[system].webhook_secret

    def erp_database_url(self) -> str:
        """SQLAlchemy URL of the legacy ERP's database."""
        from .legacy_erp import database_url

        return database_url(self.configs["legacy_erp"])

    def erp_drop_folder(self) -> Path:
        """The folder the legacy ERP writes its nightly CSV exports to."""
        from .legacy_erp import drop_folder

        return drop_folder(self.configs["legacy_erp"])

    def seed_report(self, system: str) -> dict[str, Any]:
        """The seed report of a system: counts and which ids carry which deliberate quality problem."""
        report: dict[str, Any] = json.loads(self.configs[system].seed_report.read_text())
        return report

    def start(self) -> Sandbox:
        """Start every system and return once each answers; on any failure stop them all and raise."""
        live = running(self.data_dir)
        if live:
            where = ", ".join(f"{s.system} on port {s.port}" for s in live)
            raise SandboxError(f"a sandbox already runs from {self.data_dir} ({where}); stop it first")
        run_dir = self.data_dir / "run"
        logs = self.data_dir / "logs"
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            logs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SandboxError(f"cannot use {self.data_dir} for the sandbox's data: {exc.strerror}") from None
        for system, config in self.configs.items():
            (run_dir / f"{system}.port").unlink(missing_ok=True)
            with (logs / f"{system}.log").open("ab") as log:
                self._processes[system] = subprocess.Popen(
                    [sys.executable, "-c", _BOOTSTRAP, str(self._ports[system]),
                     *([] if self.detach else ["--with-parent"])],
                    env={**os.environ, CONFIG_ENV: config.model_dump_json()},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        try:
            self._wait_ready(run_dir, logs)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, run_dir: Path, logs: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        pending = set(self.configs)
        while pending:
            for system in sorted(pending):
                process = self._processes[system]
                if process.poll() is not None:
                    last = _last_line(logs / f"{system}.log")
                    raise SandboxError(last or f"{system} exited with {process.returncode}")
                port_file = run_dir / f"{system}.port"
                if system not in self._bound and port_file.exists():
                    self._bound[system] = int(port_file.read_text())
                    self._record(run_dir)
                if system in self._bound and answers(system, self.url(system), self.token(system)):
                    pending.discard(system)
            if pending and time.monotonic() > deadline:
                raise SandboxError(f"{', '.join(sorted(pending))} did not answer within {self.startup_timeout:g} s")
            if pending:
                time.sleep(0.1)

    def _record(self, run_dir: Path) -> None:
        entries = [
            {"system": s, "pid": self._processes[s].pid, "port": port, "token": self.token(s)}
            for s, port in self._bound.items()
        ]
        tmp = run_dir / (STATE_FILE + ".tmp")
        # The file holds the tokens, so only the owner may read it.
        tmp.touch(mode=0o600)
        tmp.write_text(json.dumps(entries))
        tmp.replace(run_dir / STATE_FILE)

    def stop(self) -> None:
        """Stop every system this object started (SIGTERM, then SIGKILL after 10 s)."""
        _terminate([p.pid for p in self._processes.values()], 10.0)
        for process in self._processes.values():
            process.wait()
        self._processes.clear()
        self._bound.clear()
        (self.data_dir / "run" / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def reseed(data_dir: Path, systems: Sequence[str], seed: int, size: int) -> dict[str, dict[str, Any] | None]:
    """Wipe the chosen systems' data in a stopped sandbox and seed them afresh; returns each seed report.

    billing (localstripe) seeds itself at its next start, so its report is None here.
    """
    data_dir = Path(data_dir).resolve()
    if running(data_dir):
        raise SandboxError(f"the sandbox in {data_dir} is running; stop it before seeding")
    from ._systems import build_app

    reports: dict[str, dict[str, Any] | None] = {}
    for system in systems:
        config = SystemConfig(system=system, data_dir=data_dir, seed=seed, size=size)
        for stale in (config.database, config.seed_report, data_dir / "billing.pickle",
                      Path(f"{config.database}-wal"), Path(f"{config.database}-shm")):
            if system != "billing" and stale.name.startswith("billing"):
                continue
            stale.unlink(missing_ok=True)
        if system == "billing":
            reports[system] = None
            continue
        build_app(config)
        reports[system] = json.loads(config.seed_report.read_text())
    return reports
