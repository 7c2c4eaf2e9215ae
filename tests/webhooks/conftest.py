"""Fixtures for the webhook tests: an inbox URL on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import threading
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("INTEGRATIONS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_schema_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards; skip (or fail on CI) without PostgreSQL."""
    admin = sa.create_engine(PG_URL)
    schema = f"inbox_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required on CI but unreachable at {PG_URL}: {error}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL} (set INTEGRATIONS_TEST_POSTGRES_URL)")
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def follow(url: str, system: str, writers_done: threading.Event) -> tuple[threading.Thread, list[int]]:
    """A started thread reading `system`'s pending events with a cursor, as a sensor does, until the
    writers are done and nothing is left; and the ids it saw, in order."""
    from integration_project.webhooks import Inbox

    seen: list[int] = []

    def read() -> None:
        inbox, cursor = Inbox(url), 0
        while True:
            finished = writers_done.is_set()
            batch = inbox.pending(system, after_id=cursor, limit=7)
            seen.extend(row.id for row in batch)
            cursor = batch[-1].id if batch else cursor
            if finished and not batch:
                inbox.close()
                return

    reader = threading.Thread(target=read)
    reader.start()
    return reader, seen


@pytest.fixture(params=["sqlite", "postgresql"])
def inbox_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for an inbox, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.sqlite'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite database file."""
    return f"sqlite:///{tmp_path / 'hub.sqlite'}"


@pytest.fixture
def start_receiver(
    tmp_path: Path,
) -> Iterator[Callable[[str, dict[str, tuple[str, list[str]]]], tuple[str, subprocess.Popen[bytes]]]]:
    """Start real receiver processes (uvicorn on 127.0.0.1, a free port); kill them afterwards."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(database_url: str, endpoints: dict[str, tuple[str, list[str]]]) -> tuple[str, subprocess.Popen[bytes]]:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        env = os.environ | {"RECEIVER_ENDPOINTS": json.dumps(endpoints)}
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("run_receiver.py")), database_url, str(listener.fileno())],
            pass_fds=[listener.fileno()],
            env=env,
            stderr=(tmp_path / f"receiver-{len(processes)}.log").open("wb"),
        )
        listener.close()
        processes.append(process)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    return base_url, process
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log = (tmp_path / f"receiver-{len(processes) - 1}.log").read_text(errors="replace")
                pytest.fail(f"receiver did not start:\n{log[-3000:]}")
            time.sleep(0.1)

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL schema (skipped without PostgreSQL, failed on CI)."""
    yield from postgres_schema_url()
