"""Scale-out on Dagster's own engine: instance storage and hub store on PostgreSQL, steps on two
Celery workers over RabbitMQ; the customer flow reaches the same end state as on one machine."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from integration_project.launcher import sandbox_env
from integration_project.model import load_landscape
from integration_project.orchestration.instance import ensure_instance
from integration_project.sandbox.testing import free_port_sandbox
from tests.seeds import crm_parked

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


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for the Dagster instance and the hub store, dropped afterwards."""
    _require(PG_PORT, "PostgreSQL")
    _require(MQ_PORT, "RabbitMQ")
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


def test_customer_flow_on_two_celery_workers_with_postgres(database, tmp_path):
    with free_port_sandbox(tmp_path / "sandbox", ["crm", "billing"], seed=9, size=80) as sb:
        env = {**os.environ, **sandbox_env(load_landscape("definitions"), sb),
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery runs `celery`
               "DAGSTER_HOME": str(ensure_instance(tmp_path / "home", profile="production")),
               "DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{database}",
               "INTEGRATIONS_DATABASE_URL": f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{database}",
               "INTEGRATIONS_EXECUTOR": "celery", "INTEGRATIONS_CELERY_BROKER": BROKER}
        (tmp_path / "celery.yaml").write_text(f"execution:\n  config:\n    broker: '{BROKER}'\n")
        # a queue of its own would need a tag on every op; the default queue is emptied first
        subprocess.run([str(BIN / "celery"), "-A", "dagster_celery.app", "-b", BROKER, "purge", "-f",
                        "-Q", "dagster"], cwd=ROOT, env=env, capture_output=True, timeout=60, check=True)
        logs = [tmp_path / f"worker{i}.log" for i in (1, 2)]
        workers = [subprocess.Popen(
            [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
             "-n", f"w{i}-{uuid.uuid4().hex[:6]}@%h", "-y", str(tmp_path / "celery.yaml"), "-l", "info", "--", "--concurrency", "1"],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
            for i, log in enumerate(logs, 1)]
        try:
            deadline = time.monotonic() + 120
            while not all("ready" in log.read_text() for log in logs):
                assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
                assert all(w.poll() is None for w in workers), [log.read_text()[-2000:] for log in logs]
                time.sleep(1)
            done = subprocess.run(
                [str(BIN / "dagster"), "job", "execute", "-m", "definitions.definitions", "-a", "defs",
                 "-j", "customer_crm_to_billing"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        finally:  # `dagster-celery worker start` runs celery as a child: stop the whole group
            for worker in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=60)
        executed = sum(log.read_text().count("succeeded in") for log in logs)
        assert executed == 2, [log.read_text()[-2000:] for log in logs]  # ingest and deliver, on workers

        report = sb.seed_report("crm")
        invalid = crm_parked(report)
        valid = {str(i) for i in range(101, 101 + report["counts"]["contacts"])} - invalid
        preexisting = {str(i) for i in range(101, 101 + sb.seed_report("billing")["counts"]["customers"])}
        held: Counter[str] = Counter()
        after = None
        while True:
            page = httpx.get(f"{sb.url('billing')}/v1/customers",
                             params={"limit": 100, **({"starting_after": after} if after else {})},
                             headers={"Authorization": f"Bearer {sb.token('billing')}"}).json()
            held.update(c["metadata"].get("crm_contact_id") for c in page["data"])
            if not page["has_more"]:
                break
            after = page["data"][-1]["id"]
        assert set(held) == valid | preexisting and max(held.values()) == 1
        hub = sa.create_engine(env["INTEGRATIONS_DATABASE_URL"])
        with hub.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM hub_records")).scalar() == len(valid)
            assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar() >= 1  # Dagster's own, on PostgreSQL
        hub.dispose()
