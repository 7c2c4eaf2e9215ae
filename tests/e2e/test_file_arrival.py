"""The ERP's nightly CSV export: a new file in the drop folder starts one run, through Dagster's
sensor, which reads it once and delivers its changes to the shop and the warehouse."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from integration_project import build_definitions, load_landscape
from integration_sandbox.landscape import sandbox_env
from integration_project.contract import TAG_FILES
from integration_sandbox import Sandbox
from integration_sandbox.testing import free_port_sandbox
from tests.sandbox.sandbox_clients import client, shop_records

JOB = "product_legacy_erp_realtime"  # the ERP's products to the shop and the warehouse, in one run


@pytest.fixture
def goods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """ERP, shop and warehouse with 50 products (few enough bad ones for the validity check), a fresh hub."""
    plus = {"shop": {"restore_rate": 1000, "bucket_size": 20_000}}  # a Shopify Plus shop's cost limits
    with free_port_sandbox(tmp_path / "sandbox", ["legacy_erp", "shop", "inventory"], seed=5, size=500,
                           options=plus) as sb:
        env = {**sandbox_env(load_landscape("definitions"), sb),
               "INTEGRATIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite'}"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield sb


def tick(defs: dg.Definitions, cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
    sensor = defs.resolve_sensor_def(f"{JOB}_sensor")
    data = sensor.evaluate_tick(dg.build_sensor_context(cursor=cursor, definitions=defs))
    return list(data.run_requests or []), data.cursor


def run(defs: dg.Definitions, job: str, tags: dict[str, str] | None = None) -> dict[str, int]:
    """Run `job`; the source rows its ingest step read, and the consumers' steps it ran."""
    result = defs.resolve_job_def(job).execute_in_process(instance=dg.DagsterInstance.ephemeral(), tags=tags)
    assert result.success
    [source] = [m for m in result.asset_materializations_for_node("ingest_product")
                if m.asset_key == dg.AssetKey(["legacy_erp", "product"])]
    steps = {e.step_key for e in result.get_step_success_events()}
    return {"read": source.metadata["read"].value, "deliveries": len({s for s in steps if s.startswith("deliver_")})}


def catalogue(sandbox) -> tuple[dict[str, dict], dict[str, dict]]:
    """The shop's products and the warehouse's stock rows, by SKU."""
    with client(sandbox, "shop") as shop:
        products = shop_records(shop, "products")
    stock = httpx.get(f"{sandbox.url('inventory')}/v1/stock", params={"limit": 500},
                      headers={"Authorization": f"Bearer {sandbox.token('inventory')}"})
    return ({p["variants"][0]["sku"]: p for p in products},
            {s["sku"]: s for s in stock.json()["data"]})


def yesterday(folder: Path) -> None:
    """Name the start-up export for the night before, so the next export (tonight's) is never a future night."""
    for path in folder.glob("ITM_MST_*.csv"):
        path.rename(folder / f"ITM_MST_{datetime.strptime(path.name[8:16], '%Y%m%d') - timedelta(days=1):%Y%m%d}.csv")


def test_each_new_export_is_one_run_to_the_shop_and_the_warehouse(goods: Sandbox):
    sandbox = goods
    defs = build_definitions(load_landscape("definitions"))
    folder = sandbox.erp_drop_folder()
    yesterday(folder)
    first = sorted(p.name for p in folder.glob("ITM_MST_*.csv"))
    assert first, "the sandbox ERP exports once at start"

    requests, cursor = tick(defs, None)
    assert [r.tags[TAG_FILES] for r in requests] == [",".join(first)]
    assert run(defs, JOB, requests[0].tags)["deliveries"] == 2
    assert tick(defs, cursor)[0] == []  # nothing new: no run
    shop, stock = catalogue(sandbox)
    assert shop and set(shop) <= set(stock)

    # the next night: purchasing renames one product and changes its price in the ERP
    sku = sorted(shop)[0]
    engine = sa.create_engine(sandbox.erp_database_url())
    with engine.begin() as conn:
        conn.execute(sa.text('UPDATE "ITM_MST" SET "ITM_TXT" = :t, "UNIT_PRC" = 123.45, "CHG_TS" = :ts '
                             'WHERE "ITM_NO" = :no'), {"t": "Renamed widget", "ts": datetime.now(), "no": sku})
    engine.dispose()
    night = (datetime.strptime(first[-1][8:16], "%Y%m%d") + timedelta(days=1)).strftime("%Y%m%d")
    exported = httpx.post(f"{sandbox.url('legacy_erp')}/_sandbox/export", params={"night": night},
                          headers={"Authorization": f"Bearer {sandbox.token('legacy_erp')}"})
    assert Path(exported.json()["file"]).name == f"ITM_MST_{night}.csv"

    requests, _ = tick(defs, cursor)
    assert [r.tags[TAG_FILES] for r in requests] == [f"ITM_MST_{night}.csv"]
    tonight = run(defs, JOB, requests[0].tags)
    assert tonight["read"] > 0 and tonight["deliveries"] == 2
    shop, stock = catalogue(sandbox)
    assert shop[sku]["title"] == stock[sku]["name"] == "Renamed widget"
    assert Decimal(shop[sku]["variants"][0]["price"]) == Decimal("123.45")
    # read, and moved by the next read (here a batch run of one flow), so never read twice
    assert [p.name for p in folder.glob("ITM_MST_*.csv")] == [f"ITM_MST_{night}.csv"]
    assert run(defs, "product_legacy_erp_to_inventory")["read"] == 0
    assert sorted(p.name for p in (folder / "done").iterdir()) == [*first, f"ITM_MST_{night}.csv"]
    assert not list(folder.glob("ITM_MST_*.csv"))
    bad = httpx.post(f"{sandbox.url('legacy_erp')}/_sandbox/export", params={"night": "tomorrow"},
                     headers={"Authorization": f"Bearer {sandbox.token('legacy_erp')}"})
    assert bad.status_code == 400
