"""The CSV drop-folder connector on the sandbox ERP's real nightly export."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from integration_project.connectors.csv import DropFolder
from integration_project.connectors.sql import Sql
from integration_project.model import Api, Ingest
from integration_project.runtime import Store, ingest
from integration_project.runtime.store import hub_records
from tests.connectors.conftest import drain

EXPORT = "ITM_MST_*.csv?encoding=latin-1&delimiter=;&decimal=,&datetime=%d.%m.%Y %H:%M:%S"


def test_each_export_is_read_once_then_moved_and_a_broken_one_fails(sandbox, tmp_path: Path):
    exported = sorted(sandbox.erp_drop_folder().glob("ITM_MST_*.csv"))
    assert exported
    for path in exported:
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "ITM_MST_20990101.csv").write_bytes(b"ITM_NO;ITM_TXT\r\nSKU-1;a;b\r\n")
    folder = DropFolder(Api(connector="csv", base_url=str(tmp_path), version="1"))

    rows, cursor = drain(folder, EXPORT, None)
    assert len(rows) == sandbox.seed_report("legacy_erp")["counts"]["ITM_MST"] * len(exported)
    first = rows[0]
    assert first["ITM_NO"] == "SKU-000001"
    assert "," not in (first["UNIT_PRC"] or "") and first["CHG_TS"][4] == "-"  # 12,06 -> 12.06; ISO time
    assert cursor == exported[-1].name
    assert [p.name for p in (tmp_path / "failed").iterdir()] == ["ITM_MST_20990101.csv"]
    assert not (tmp_path / "done").exists()  # nothing leaves before its rows are committed
    assert drain(folder, EXPORT, cursor)[0] == []  # the next read, from the committed cursor
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == [p.name for p in exported]


def test_a_file_is_read_again_until_its_rows_are_committed_then_never(tmp_path: Path):
    (tmp_path / "ITM_MST_20260101.csv").write_text("ITM_NO;UNIT_PRC\r\nSKU-1;1,50\r\n", encoding="latin-1")
    folder = DropFolder(Api(connector="csv", base_url=str(tmp_path), version="1"))
    page = next(iter(folder.pages(EXPORT, None)))
    assert page.records == [{"ITM_NO": "SKU-1", "UNIT_PRC": "1.50"}]
    assert drain(folder, EXPORT, None)[0] == page.records  # a crash before the commit: read again
    assert drain(folder, EXPORT, page.cursor)[0] == []
    assert [p.name for p in (tmp_path / "done").iterdir()] == ["ITM_MST_20260101.csv"]


def test_the_nightly_export_gives_the_hub_the_same_products_as_the_database(sandbox, landscape, env, tmp_path: Path):
    erp = landscape.systems["legacy_erp"]
    from_csv = next(b for b in erp.bindings if b.object == "product")
    from_db = from_csv.model_copy(update={"resource": "ITM_MST?cursor=CHG_TS", "api": None})
    product = landscape.objects["product"]
    (tmp_path / "drop").mkdir()
    exported = httpx.post(sandbox.url("legacy_erp") + "/_sandbox/export",
                          headers={"Authorization": f"Bearer {sandbox.token('legacy_erp')}"}).json()["file"]
    shutil.copy(exported, tmp_path / "drop")
    hubs = []
    for name, connector, binding in (
            ("db", Sql(erp.api), from_db),
            ("csv", DropFolder(Api(connector="csv", base_url=str(tmp_path / "drop"), version="1")), from_csv)):
        store = Store(f"sqlite:///{tmp_path / name}.sqlite")
        stats = ingest(connector, Ingest(product, erp, binding), store, run_id=name)
        connector.close()
        assert stats.rejected == len(set().union(*(sandbox.seed_report("legacy_erp")["problems"][p]
                                                   for p in ("missing_price", "lowercase_status"))))
        hubs.append({r["record_id"]: r["data"] for r in store.rows(hub_records, object="product")})
    assert hubs[0] == hubs[1] and len(hubs[0]) > 0
