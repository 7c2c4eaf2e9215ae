"""`integrations up` (what `make run` starts): every sandbox system, the receiver, the Dagster UI
with the whole landscape, the customer flow materialized for real, and the docs; SIGINT or SIGTERM
stops all of it, even when started as a script's background job (SIGINT ignored)."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from integration_project.launcher import STOP_GRACE_S
from integration_sandbox import DEFAULT_TOKENS, SYSTEMS

ROOT = Path(__file__).resolve().parents[2]
QUERY = "{ assetNodes { assetKey { path } groupName } }"
# the customer's realtime job: its sensor's initial sync, then the runs the receiver starts
RUNS = '{ runsOrError(filter: {pipelineName: "customer_crm_realtime", statuses: [SUCCESS]}) { ... on Runs { results { runId } } } }'
WEBHOOK_RUNS = ('{ runsOrError(filter: {pipelineName: "customer_crm_realtime", statuses: [SUCCESS], '
                'tags: [{key: "integration/started_by", value: "webhook"}]}) { ... on Runs { results { runId } } } }')
SCRIPT_JOB = ["bash", "-c", '"$@" & wait', "up"]  # a script's background job: SIGINT and SIGQUIT ignored
STOPPED_WITHIN_S = STOP_GRACE_S + 10 + 15  # the children's groups, then the sandbox (10 s), then slack


def _ports(n: int) -> list[int]:
    """Free ports below the kernel's ephemeral range: a port picked inside it (bind to 0) can be taken
    again, between our pick and `up`'s listen, by the sandbox's free ports, dagster's code server or a
    sync's outgoing connection (seen under stress-ng: "docs stopped before it answered")."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports: list[int] = []
    for port in random.sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == n:
            return ports
    raise RuntimeError(f"no {n} free ports below {low}")


@dataclass
class Up:
    """A running `integrations up` (possibly under a wrapper), its ports and what it printed."""

    process: subprocess.Popen[str]  # `up` itself, or the wrapper that started it
    dagster: int
    docs: int
    receiver: int
    lines: list[str]

    def pid(self) -> int:
        """The pid of `up` itself: the process, or the wrapper's one child."""
        if self.process.args[0] != "bash":
            return self.process.pid
        [child] = [p for p in _pids() if _stat(p)[0] == self.process.pid]
        return child

    def sandbox_urls(self) -> dict[str, str]:
        return dict(re.findall(r"^  sandbox (\w+)\s+(http://127\.0\.0\.1:\d+)$", "\n".join(self.lines), re.M))


def start_up(tmp_path: Path, wrapper: list[str] | None = None, timeout: float = 660) -> Up:
    """Start `integrations up` on free non-default ports and wait until it says it is ready (its
    own bound for the Dagster UI is 600 s: a loaded CI machine's first start has taken over 180 s)."""
    dagster, docs, receiver = _ports(3)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DAGSTER_HOME": str(tmp_path / "home"),
           "INTEGRATIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite'}"}
    command = [str(Path(sys.executable).with_name("integrations")), "up", "--data-dir", str(tmp_path / "sandbox"),
               "--size", "40", "--free-ports", "--dagster-port", str(dagster), "--docs-port", str(docs),
               "--receiver-port", str(receiver)]
    stderr = tmp_path / "up.stderr"
    with stderr.open("w") as errors:
        process = subprocess.Popen([*(wrapper or []), *command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=errors, text=True, start_new_session=True)
    up = Up(process, dagster, docs, receiver, [])
    deadline = time.monotonic() + timeout
    while "Ctrl-C stops everything." not in up.lines:
        assert time.monotonic() < deadline and process.poll() is None, (up.lines, stderr.read_text()[-4000:])
        up.lines.append(process.stdout.readline().rstrip("\n"))
    return up


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _stat(pid: int) -> tuple[int, int, str]:
    """(ppid, session id, state) of a process; (0, 0, "gone") once it has gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0, 0, "gone"
    fields = text.rsplit(")", 1)[1].split()  # after "(comm)": state ppid pgrp session ...
    return int(fields[1]), int(fields[3]), fields[0]


def _descendants(pid: int) -> set[int]:
    """Every live process below pid (children, grandchildren, ...)."""
    parents = {p: _stat(p)[0] for p in _pids()}
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        children = {p for p, pp in parents.items() if pp == parent} - found
        found |= children
        todo += children
    return found


def _listening(pids: set[int]) -> set[int]:
    """The TCP ports these processes listen on (their socket inodes in /proc/net/tcp and tcp6)."""
    inodes = set()
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        inodes |= {link[8:-1] for link in links if link.startswith("socket:[")}
    return {port for port, inode in _listeners() if inode in inodes}


def _listeners() -> list[tuple[int, str]]:
    """(port, socket inode) of every TCP socket in LISTEN state on this machine."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                found.append((int(fields[1].rsplit(":", 1)[1], 16), fields[9]))
    return found


def _free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (as a restarted `up` would)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def stop_and_check(up: Up, sig: signal.Signals) -> float:
    """Send `sig` to `up`; assert it exits in bounded time, with every port it bound free and no
    process of its sessions left; return the seconds it took."""
    pid = up.pid()
    started = _descendants(pid)
    sessions = {_stat(p)[1] for p in started} | {_stat(pid)[1]}
    ports = _listening(started | {pid})
    expected = {up.dagster, up.docs, up.receiver, *(int(u.rsplit(":", 1)[1]) for u in up.sandbox_urls().values())}
    assert expected <= ports, f"listening: {sorted(ports)}; expected at least {sorted(expected)}"
    # what `up` started must not inherit an ignored SIGINT (their own children may ignore it on
    # purpose, e.g. multiprocessing's resource tracker)
    children = [p for p in started if _stat(p)[0] == pid]
    ignoring = [_cmdline(p) for p in children if int(_status(p).get("SigIgn", "0"), 16) & (1 << (signal.SIGINT - 1))]
    assert len(children) >= 3 + len(SYSTEMS) and ignoring == []
    begun = time.monotonic()
    os.kill(pid, sig)
    up.process.wait(timeout=STOPPED_WITHIN_S + 30)
    seconds = time.monotonic() - begun
    up.lines += up.process.stdout.read().splitlines()
    print("\n".join(up.lines[up.lines.index("Ctrl-C stops everything.") + 1:]))
    assert seconds < STOPPED_WITHIN_S
    survivors = [(p, _cmdline(p)) for p in _pids() if _stat(p)[1] in sessions and _stat(p)[2] not in ("Z", "gone")]
    assert survivors == []
    assert [port for port, _ in _listeners() if port in ports] == [] and all(_free(p) for p in ports)
    return seconds


def abort(up: Up) -> None:
    """After a failed assertion: stop `up` as best we can, so a failing test leaves nothing running."""
    if up.process.poll() is None:
        os.kill(up.pid(), signal.SIGTERM)
        try:
            up.process.wait(timeout=STOPPED_WITHIN_S)
        except subprocess.TimeoutExpired:
            os.killpg(up.process.pid, signal.SIGKILL)


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return ""


def test_up_starts_the_whole_product_and_stops_it_on_sigint(tmp_path):
    up = start_up(tmp_path)
    try:
        urls = up.sandbox_urls()
        assert sorted(urls) == sorted(SYSTEMS)
        assert httpx.get(f"{urls['crm']}/_sandbox/health").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{up.receiver}/healthz").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{up.docs}/").status_code == 200
        ui = f"http://127.0.0.1:{up.dagster}/graphql"
        # links between the two go to the ports they really use, not the defaults
        triggers = httpx.get(f"http://127.0.0.1:{up.docs}/triggers.html").text
        assert f'href="http://127.0.0.1:{up.dagster}/locations/definitions/jobs/customer_crm_to_billing"' in triggers
        deadline = time.monotonic() + 300
        groups: set[str] = set()
        while not set(SYSTEMS) <= groups and time.monotonic() < deadline:
            nodes = httpx.post(ui, json={"query": QUERY}, timeout=30).json()["data"]["assetNodes"]
            groups = {n["groupName"] for n in nodes}
            time.sleep(1)
        assert set(SYSTEMS) | {f"{s}_source" for s in SYSTEMS} | {"hub"} == groups  # every system is a source here
        docs_url = httpx.post(ui, json={"query": '{ assetNodeOrError(assetKey: {path: ["crm", "customer"]}) '
                                                 '{ ... on AssetNode { metadataEntries { label '
                                                 '... on UrlMetadataEntry { url } } } } }'}, timeout=30)
        entries = docs_url.json()["data"]["assetNodeOrError"]["metadataEntries"]
        assert {"label": "integration/docs_url", "url": f"http://127.0.0.1:{up.docs}/assets/crm/customer.html"} \
            in entries
        runs: list = []
        while not runs and time.monotonic() < deadline:  # the sensor's first tick syncs at once
            runs = httpx.post(ui, json={"query": RUNS}, timeout=30).json()["data"]["runsOrError"]["results"]
            time.sleep(2)
        assert runs, "the customer flow never completed a run"
        # a new contact reaches billing through a run the receiver started as its webhook came in
        email = f"up.{random.randrange(10**9)}@example.com"
        httpx.post(f"{urls['crm']}/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {DEFAULT_TOKENS['crm']}"},
                   json={"properties": {"email": email, "firstname": "Ada", "lastname": "Up", "country": "DE"}},
                   timeout=30).raise_for_status()
        billed: list = []
        while not billed and time.monotonic() < deadline:
            billed = httpx.get(f"{urls['billing']}/v1/customers", params={"email": email},
                               headers={"Authorization": f"Bearer {DEFAULT_TOKENS['billing']}"}, timeout=30).json()["data"]
            time.sleep(1)
        assert billed, f"the new contact {email} never reached billing"
        started: list = []
        while not started and time.monotonic() < deadline:  # billing answered: the run may still be finishing
            started = httpx.post(ui, json={"query": WEBHOOK_RUNS}, timeout=30).json()["data"]["runsOrError"]["results"]
            time.sleep(1)
        assert started, "no run of the customer flow started by the receiver succeeded"
    except BaseException:
        abort(up)
        raise
    print(f"stopped in {stop_and_check(up, signal.SIGINT):.1f} s")


@pytest.mark.parametrize(("wrapper", "sig"), [(None, signal.SIGTERM), (SCRIPT_JOB, signal.SIGINT),
                                              (SCRIPT_JOB, signal.SIGTERM)],
                         ids=["sigterm", "script-job-sigint", "script-job-sigterm"])
def test_up_stops_everything_it_started(tmp_path, wrapper, sig):
    """Stopped right after it is ready (initial syncs in flight), every process and port is gone."""
    if wrapper:  # the wrapper really makes `up` start with SIGINT ignored, as a script's `&` does
        probe = subprocess.run([*wrapper, "grep", "^SigIgn:", "/proc/self/status"], capture_output=True, text=True)
        assert int(probe.stdout.split()[1], 16) & (1 << (signal.SIGINT - 1))
    up = start_up(tmp_path, wrapper)
    try:
        seconds = stop_and_check(up, sig)
    except BaseException:
        abort(up)
        raise
    print(f"stopped in {seconds:.1f} s")
