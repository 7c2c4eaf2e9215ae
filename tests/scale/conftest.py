"""Scale-out fixtures: a fresh PostgreSQL database, and two real Celery workers over RabbitMQ."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from integration_project.orchestration.instance import ensure_instance

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_HOST, PG_PORT, MQ_PORT = "127.0.0.1", 5432, 5672
BROKER = os.environ.get("INTEGRATIONS_TEST_CELERY_BROKER", "pyamqp://guest:guest@127.0.0.1:5672//")


def _require(port: int, what: str) -> None:
    try:
        socket.create_connection((PG_HOST, port), timeout=2).close()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is required on CI but unreachable on {PG_HOST}:{port}: {exc}")
        pytest.skip(f"{what} unreachable on {PG_HOST}:{port}")


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database on the local server (its name), dropped on exit."""
    name = f"scale_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/postgres",
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for the Dagster instance and the hub store, dropped afterwards."""
    _require(PG_PORT, "PostgreSQL")
    _require(MQ_PORT, "RabbitMQ")
    with fresh_database() as name:
        yield name


def celery_env(database: str, home: Path) -> dict[str, str]:
    """The production profile on this database: Dagster's instance and the hub store on PostgreSQL,
    steps on Celery over RabbitMQ, on a queue of their own (the broker may be shared: a worker on
    another queue's steps fails to find their runs, and those runs wait for them forever)."""
    return {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery runs `celery`
            "DAGSTER_HOME": str(ensure_instance(home, profile="production")),
            "DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{database}",
            "INTEGRATIONS_DATABASE_URL": f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{database}",
            "INTEGRATIONS_EXECUTOR": "celery", "INTEGRATIONS_CELERY_BROKER": BROKER,
            "INTEGRATIONS_CELERY_QUEUE": f"scale-{uuid.uuid4().hex[:8]}"}


@contextlib.contextmanager
def celery_workers(env: Mapping[str, str], tmp_path: Path, own: Sequence[Mapping[str, str]] = ({}, {}),
                   preload: str | None = None) -> Iterator[list[Path]]:
    """One Celery worker (one step at a time) per entry of `own` (its own extra environment), on
    the emptied queue of `env`'s executor (INTEGRATIONS_CELERY_QUEUE), with the `preload` module
    imported before it is ready; yields their log files and stops their process groups on exit."""
    queue = env.get("INTEGRATIONS_CELERY_QUEUE", "dagster")
    (tmp_path / "celery.yaml").write_text(f"execution:\n  config:\n    broker: '{BROKER}'\n")
    subprocess.run([str(BIN / "celery"), "-A", "dagster_celery.app", "-b", BROKER, "purge", "-f",
                    "-Q", queue], cwd=ROOT, env=env, capture_output=True, timeout=60, check=True)
    logs = [tmp_path / f"worker{i}.log" for i in range(1, len(own) + 1)]
    workers = [subprocess.Popen(
        [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
         "-n", f"w{i}-{uuid.uuid4().hex[:6]}@%h", "-y", str(tmp_path / "celery.yaml"), "-q", queue, "-l", "info",
         "--", "--concurrency", "1", *(["--include", preload] if preload else [])],
        cwd=ROOT, env={**env, **extra}, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        for i, (log, extra) in enumerate(zip(logs, own, strict=True), 1)]
    try:
        deadline = time.monotonic() + 120
        while not all("ready" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
            assert all(w.poll() is None for w in workers), [log.read_text()[-2000:] for log in logs]
            time.sleep(1)
        yield logs
    finally:  # `dagster-celery worker start` runs celery as a child: stop the whole group
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
