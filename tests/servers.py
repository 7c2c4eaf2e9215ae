"""Real servers for tests, on loopback: free ports and a dagster-webserver over workspace.yaml."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str, process: subprocess.Popen, timeout: float, interval: float = 0.5) -> bool:
    """Poll a server's URL until it answers 200; False when its process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(interval)


@contextlib.contextmanager
def dagster_webserver(home: Path, timeout: float = 120, target: Sequence[str] = ("-w", "workspace.yaml"),
                      cwd: Path = ROOT) -> Iterator[str]:
    """`dagster-webserver` serving `target` (default: the project's workspace.yaml) with DAGSTER_HOME=home; its URL."""
    from integration_project.orchestration.instance import ensure_instance

    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1", "-p", str(port),
         *target], cwd=cwd, env={**os.environ, "DAGSTER_HOME": str(ensure_instance(home))},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        if not answers(f"{url}/server_info", process, timeout):
            raise RuntimeError(f"dagster-webserver did not answer within {timeout} s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def graphql(url: str, query: str) -> dict:
    """POST one GraphQL query to a dagster-webserver; its JSON answer."""
    answer = httpx.post(f"{url}/graphql", json={"query": query}, timeout=60)
    answer.raise_for_status()
    return answer.json()
