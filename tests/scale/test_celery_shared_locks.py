"""Two Celery workers, each with a data folder of its own (as on two machines), run two flows that
deliver orders sharing SKUs to one warehouse at once (`tests/scale/budgeted.py`): together they
keep to its one request budget, measured at the warehouse, and no order is half-moved (the stock
moved by exactly the lines of the orders served)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import sqlalchemy as sa

from integration_sandbox.landscape import sandbox_env
from integration_project.model import load_landscape
from integration_sandbox.testing import free_port_sandbox
from tests.scale.budgeted import BUDGET
from tests.scale.conftest import BIN, ROOT, celery_env, celery_workers

SCARCE = 8  # units of each SKU: about 40% of the orders can be served, the SKUs running out mid-way
FLOWS = ("inventory", "depot")  # the consumers of the two order flows


def _materialize(env: dict[str, str], selection: str, log: Path) -> subprocess.Popen[str]:
    """A run of the budgeted code location materializing these assets, its output in `log`."""
    return subprocess.Popen(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "tests.scale.budgeted", "-a", "defs",
         "--select", selection],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)


def _busiest_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1) for start in times)


def test_two_workers_share_the_warehouse_budget_and_never_half_move_an_order(database, tmp_path):
    with free_port_sandbox(tmp_path / "sandbox", ["shop", "inventory"], seed=9, size=40) as sb:
        env = {**os.environ, **sandbox_env(load_landscape("definitions"), sb),
               **celery_env(database, tmp_path / "home"), "INTEGRATIONS_DATA_DIR": str(tmp_path / "cli")}
        warehouse = httpx.Client(base_url=sb.url("inventory"), timeout=30,
                                 headers={"Authorization": f"Bearer {sb.token('inventory')}"})
        before = {s["sku"]: SCARCE for s in warehouse.get("/v1/stock", params={"limit": 500}).json()["data"]}
        for sku, count in before.items():
            warehouse.put(f"/v1/stock/{sku}", json={"on_hand": count}).raise_for_status()
        ours = len(warehouse.get("/_sandbox/requests").json()["arrived"])  # the test's own requests

        machines = [{"INTEGRATIONS_DATA_DIR": str(tmp_path / f"machine{i}")} for i in (1, 2)]
        # the workers load the code location before they are ready (as a deployed image has it), so
        # the two deliveries start sending together, not one a code load (10-20 s here) behind
        with celery_workers(env, tmp_path, machines, preload="tests.scale.budgeted") as logs:
            ingest = _materialize(env, "shop/order,hub/order", tmp_path / "ingest.log")
            assert ingest.wait(timeout=300) == 0, (tmp_path / "ingest.log").read_text()[-3000:]
            runs = [_materialize(env, f"{consumer}/order", tmp_path / f"{consumer}.log") for consumer in FLOWS]
            codes = [run.wait(timeout=600) for run in runs]
            assert codes == [0, 0], [(tmp_path / f"{consumer}.log").read_text()[-3000:] for consumer in FLOWS]
        delivered = [len(re.findall(r'execution of step "deliver_order_shop_to_\w+" in', log.read_text()))
                     for log in logs]
        assert delivered == [1, 1], [log.read_text()[-2000:] for log in logs]  # one delivery on each worker

        arrived = sorted(warehouse.get("/_sandbox/requests").json()["arrived"][ours:])
        stock = warehouse.get("/v1/stock", params={"limit": 500}).json()["data"]
        after = {s["sku"]: s["on_hand"] for s in stock}
        warehouse.close()

    hub = sa.create_engine(env["INTEGRATIONS_DATABASE_URL"])
    with hub.connect() as conn:
        sending = conn.execute(sa.text(  # each flow's first and last answer from the warehouse
            "SELECT flow, min(at), max(at) FROM ledger WHERE to_system IN ('inventory', 'depot') "
            "GROUP BY flow")).all()
        orders = {r.record_id: json.loads(r.data) for r in conn.execute(sa.text(
            "SELECT record_id, data FROM hub_records WHERE object = 'order'"))}
        served = {r for r, in conn.execute(sa.text(
            "SELECT record_id FROM deliveries WHERE system IN ('inventory', 'depot') AND object = 'order' "
            "AND status = 'done'"))}
        refused = dict(conn.execute(sa.text(
            "SELECT record_id, reason FROM dlq WHERE flow IN ('order_shop_to_inventory', 'order_shop_to_depot') "
            "AND status = 'open'")).all())
    hub.dispose()

    # the two flows sent at once, each from a worker of its own
    assert len(sending) == 2, sending
    together = (min(s[2] for s in sending) - max(s[1] for s in sending)).total_seconds()
    assert together > 0, sending
    # the warehouse saw no more than its budget in any second, from both workers together
    assert len(arrived) > 4 * BUDGET
    assert _busiest_second(arrived) <= BUDGET + 1
    print(f"{len(arrived)} requests at the warehouse in {arrived[-1] - arrived[0]:.1f} s, "
          f"busiest second {_busiest_second(arrived)} (budget {BUDGET:g}/s); both sent for {together:.1f} s")

    # every order was served or refused as a whole: the stock moved by exactly the served orders' lines
    assert set(orders) == served | set(refused) and not served & set(refused)
    assert all("insufficient stock" in reason for reason in refused.values())
    assert 0 < len(served) < len(orders)
    moved: Counter[str] = Counter()
    for order in served:
        for line in orders[order]["lines"]:
            moved[line["sku"]] += line["quantity"]
    assert {sku: before[sku] - after[sku] for sku in before} == {sku: moved[sku] for sku in before}
