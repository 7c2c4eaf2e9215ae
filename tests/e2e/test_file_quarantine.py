"""Hostile files in the ERP's drop folder, through Dagster's sensor and runs: a far-future name and a
header-only export are quarantined with an alert to the owners, and the next real export still arrives."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import httpx
import sqlalchemy as sa

from integration_project import build_definitions, load_landscape
from integration_project.contract import TAG_FILES
from integration_project.runtime import Store
from integration_sandbox import Sandbox
from tests.e2e.test_file_arrival import JOB, catalogue, goods, run, tick  # noqa: F401 - goods is a fixture


def quarantines(alerts: list[dict]) -> list[dict]:
    """The alerts about quarantined files (the run also alerts about the sandbox's bad records)."""
    return [a for a in alerts if a["title"].endswith(" quarantined")]


def test_quarantined_files_alert_the_owners_and_hide_no_export(goods: Sandbox, alert_receiver, monkeypatch):
    sandbox, (url, alerts) = goods, alert_receiver
    monkeypatch.setenv("INTEGRATIONS_ALERT_WEBHOOK_URL", url)
    defs = build_definitions(load_landscape("definitions"))
    folder = sandbox.erp_drop_folder()
    today = datetime.now(ZoneInfo("Europe/Berlin"))  # the sandbox ERP's timezone
    nights = [f"{today - timedelta(days=d):%Y%m%d}" for d in (2, 1, 0)]
    [start] = folder.glob("ITM_MST_*.csv")
    header = start.read_bytes().split(b"\r\n", 1)[0] + b"\r\n"
    start.rename(folder / f"ITM_MST_{nights[0]}.csv")  # the export of two nights ago
    (folder / "ITM_MST_99999999.csv").write_bytes(header)  # sorts after every real export

    requests, cursor = tick(defs, None)
    assert [r.tags[TAG_FILES] for r in requests] == [f"ITM_MST_{nights[0]}.csv"]  # the fake is never announced
    run(defs, JOB, requests[0].tags)
    [fake] = quarantines(alerts())
    assert fake["title"] == "Legacy ERP: ITM_MST_99999999.csv quarantined" and "team:operations" in fake["owners"]

    (folder / f"ITM_MST_{nights[1]}.csv").write_bytes(header)  # last night's export came out empty
    requests, cursor = tick(defs, cursor)
    run(defs, JOB, requests[0].tags)
    empty = quarantines(alerts())[-1]
    assert empty["title"] == f"Legacy ERP: ITM_MST_{nights[1]}.csv quarantined" and "no rows" in empty["text"]
    hub = Store()
    assert hub.cursor("legacy_erp/product") == f"ITM_MST_{nights[0]}.csv"  # not past the empty export

    sku = sorted(catalogue(sandbox)[0])[0]  # tonight: a product renamed, exported in full
    engine = sa.create_engine(sandbox.erp_database_url())
    with engine.begin() as conn:
        conn.execute(sa.text('UPDATE "ITM_MST" SET "ITM_TXT" = :t, "CHG_TS" = :ts WHERE "ITM_NO" = :no'),
                     {"t": "Renamed widget", "ts": datetime.now(), "no": sku})
    engine.dispose()
    httpx.post(f"{sandbox.url('legacy_erp')}/_sandbox/export", params={"night": nights[2]},
               headers={"Authorization": f"Bearer {sandbox.token('legacy_erp')}"}).raise_for_status()
    requests, cursor = tick(defs, cursor)
    assert [r.tags[TAG_FILES] for r in requests] == [f"ITM_MST_{nights[2]}.csv"]
    run(defs, JOB, requests[0].tags)
    assert catalogue(sandbox)[0][sku]["title"] == "Renamed widget"
    assert hub.cursor("legacy_erp/product") == f"ITM_MST_{nights[2]}.csv"
    assert sorted(p.name for p in (folder / "quarantine").iterdir()) == [
        f"ITM_MST_{nights[1]}.csv", "ITM_MST_99999999.csv"]
