"""Scale-out on Dagster's own engine: instance storage and hub store on PostgreSQL, steps on two
Celery workers over RabbitMQ; the customer flow reaches the same end state as on one machine."""

from __future__ import annotations

import os
import subprocess
from collections import Counter

import httpx
import sqlalchemy as sa

from integration_sandbox.landscape import sandbox_env
from integration_project.model import load_landscape
from integration_sandbox.testing import free_port_sandbox
from tests.scale.conftest import BIN, ROOT, celery_env, celery_workers
from tests.seeds import crm_parked


def test_customer_flow_on_two_celery_workers_with_postgres(database, tmp_path):
    with free_port_sandbox(tmp_path / "sandbox", ["crm", "billing"], seed=9, size=80) as sb:
        env = {**os.environ, **sandbox_env(load_landscape("definitions"), sb),
               **celery_env(database, tmp_path / "home")}
        with celery_workers(env, tmp_path) as logs:
            done = subprocess.run(
                [str(BIN / "dagster"), "job", "execute", "-m", "definitions.definitions", "-a", "defs",
                 "-j", "customer_crm_to_billing"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
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
