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
    (tmp_path / "ITM_MST_20000101.csv").write_bytes(b"ITM_NO;ITM_TXT\r\nSKU-1;a;b\r\n")
    folder = DropFolder(Api(connector="csv", base_url=str(tmp_path), version="1"))

    rows, cursor = drain(folder, EXPORT, None)
    assert len(rows) == sandbox.seed_report("legacy_erp")["counts"]["ITM_MST"] * len(exported)
    first = rows[0]
    assert first["ITM_NO"] == "SKU-000001"
    assert "," not in (first["UNIT_PRC"] or "") and first["CHG_TS"][4] == "-"  # 12,06 -> 12.06; ISO time
    assert cursor == exported[-1].name
    assert [p.name for p in (tmp_path / "failed").iterdir()] == ["ITM_MST_20000101.csv"]
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


def test_what_changed_since_a_cursor_is_read_without_moving_a_file(tmp_path: Path):
    """Reconciliation asks what the next read would take: the exports after the cursor, pending or
    done, and nothing leaves the folder (a bogus file is not set aside either)."""
    for night, sku in (("20260101", "SKU-1"), ("20260102", "SKU-2"), ("20260103", "SKU-3")):
        (tmp_path / f"ITM_MST_{night}.csv").write_text(f"ITM_NO;UNIT_PRC\r\n{sku};1,50\r\n", encoding="latin-1")
    (tmp_path / "ITM_MST_nonight.csv").write_text("ITM_NO\r\nSKU-9\r\n", encoding="latin-1")
    folder = DropFolder(Api(connector="csv", base_url=str(tmp_path), version="1"))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert [r["ITM_NO"] for r in folder.changed(EXPORT, "ITM_MST_20260101.csv")] == ["SKU-2", "SKU-3"]
    assert [r["ITM_NO"] for r in folder.changed(EXPORT, None)] == ["SKU-1", "SKU-2", "SKU-3"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


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


def export(folder: Path, night: str, rows: int, sku: str = "SKU") -> Path:
    """A Latin-1 export of `rows` products named for `night`."""
    path = folder / f"ITM_MST_{night}.csv"
    lines = ["ITM_NO;UNIT_PRC", *(f"{sku}-{n};{n},50" for n in range(rows))]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="latin-1")
    return path


def drop_folder(path: Path, **api: object) -> DropFolder:
    return DropFolder(Api(connector="csv", base_url=str(path), version="1", **api))


def test_a_symlink_is_quarantined_never_followed_out_of_the_folder(tmp_path: Path):
    (tmp_path / "drop").mkdir()
    outside = export(tmp_path, "20260102", 3, sku="SECRET")  # a file beside the folder, not in it
    export(tmp_path / "drop", "20260101", 2)
    (tmp_path / "drop" / "ITM_MST_20260102.csv").symlink_to(outside)
    (tmp_path / "elsewhere").mkdir()
    export(tmp_path / "elsewhere", "20260103", 3, sku="SECRET")
    (tmp_path / "drop" / "done").symlink_to(tmp_path / "elsewhere")  # done/ itself leading out
    folder = drop_folder(tmp_path / "drop")

    assert folder.arrivals(EXPORT, None) == ["ITM_MST_20260101.csv"]
    rows, cursor = drain(folder, EXPORT, None)
    assert [r["ITM_NO"] for r in rows] == ["SKU-0", "SKU-1"] and cursor == "ITM_MST_20260101.csv"
    assert (tmp_path / "drop" / "quarantine" / "ITM_MST_20260102.csv").is_symlink()
    assert outside.exists() and "symlink" in folder.quarantined()["ITM_MST_20260102.csv"]
    assert all(r["ITM_NO"].startswith("SKU") for r in folder.scan(EXPORT))


def test_a_header_only_or_shrunken_export_is_quarantined_and_the_cursor_stays(tmp_path: Path):
    folder = drop_folder(tmp_path)
    export(tmp_path, "20260101", 10)
    _, cursor = drain(folder, EXPORT, None)
    export(tmp_path, "20260102", 0)  # header only
    export(tmp_path, "20260103", 4)  # under half of the 10 committed

    assert drain(folder, EXPORT, cursor) == ([], "ITM_MST_20260101.csv")
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == ["ITM_MST_20260102.csv",
                                                                          "ITM_MST_20260103.csv"]
    assert folder.quarantined() == {
        "ITM_MST_20260102.csv": "it has no rows (header only)",
        "ITM_MST_20260103.csv": "it has 4 rows, under 50% of the 10 of the last export committed"}
    export(tmp_path, "20260104", 6)  # the next night's full export is read
    rows, cursor = drain(folder, EXPORT, cursor)
    assert len(rows) == 6 and cursor == "ITM_MST_20260104.csv"
    export(tmp_path, "20260105", 2)
    assert len(drain(drop_folder(tmp_path, min_share_of_previous=0.3), EXPORT, cursor)[0]) == 2  # declared lower


def test_a_name_for_a_future_night_hides_no_export(tmp_path: Path):
    folder = drop_folder(tmp_path)
    export(tmp_path, "99999999", 0)  # no such night, and sorts after everything
    export(tmp_path, "20991231", 3, sku="FAKE")
    export(tmp_path, "20260101", 2)

    assert folder.arrivals(EXPORT, None) == ["ITM_MST_20260101.csv"]  # the sensor never sees them
    rows, cursor = drain(folder, EXPORT, None)
    assert [r["ITM_NO"] for r in rows] == ["SKU-0", "SKU-1"] and cursor == "ITM_MST_20260101.csv"
    assert sorted(folder.quarantined()) == ["ITM_MST_20991231.csv", "ITM_MST_99999999.csv"]
    assert "not come yet" in folder.quarantined()["ITM_MST_20991231.csv"]
    export(tmp_path, "20260102", 2)  # the next real export is announced and read
    assert folder.arrivals(EXPORT, cursor) == ["ITM_MST_20260102.csv"]
    assert drain(folder, EXPORT, cursor)[1] == "ITM_MST_20260102.csv"


def test_exports_are_taken_by_night_not_by_name(tmp_path: Path):
    pattern = "*.csv?delimiter=;&decimal=,"
    folder = drop_folder(tmp_path)
    (tmp_path / "b_20260101.csv").write_text("ITM_NO\r\nfirst\r\n")
    (tmp_path / "a_20260102.csv").write_text("ITM_NO\r\nsecond\r\n")
    assert folder.arrivals(pattern, None) == ["b_20260101.csv", "a_20260102.csv"]
    assert drain(folder, pattern, None) == ([{"ITM_NO": "first"}, {"ITM_NO": "second"}], "a_20260102.csv")


def test_a_product_gone_from_the_next_export_is_a_tombstone_and_lives_again_when_back(landscape, tmp_path: Path):
    from integration_project.runtime.store import ledger

    erp = landscape.systems["legacy_erp"]
    leg = Ingest(landscape.objects["product"], erp, next(b for b in erp.bindings if b.object == "product"))
    store, folder = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}"), drop_folder(tmp_path, min_share_of_previous=0.1)

    def night(date: str, rows: dict[str, str]) -> dict[str, str | None]:
        """Export these SKUs (SKU -> price) that night, ingest it, return each hub record's deleted_at."""
        lines = ["ITM_NO;ITM_TXT;UNIT_PRC;CUR_CD;STAT_CD;CHG_TS",
                 *(f"{sku};Item {sku};{price};EUR;A;01.12.2026 10:00:00" for sku, price in rows.items())]
        (tmp_path / f"ITM_MST_{date}.csv").write_text("\r\n".join(lines) + "\r\n", encoding="latin-1")
        ingest(folder, leg, store, run_id=date)
        return {r["record_id"]: r["deleted_at"] for r in store.rows(hub_records, object="product")}

    assert not any(night("20261201", {"A-1": "1,50", "A-2": "2,50", "A-3": "3,50"}).values())
    # A-2 gone from the export; A-3 still there but invalid now (no price): only A-2 was deleted
    held = night("20261202", {"A-1": "1,50", "A-3": ""})
    assert held["A-2"] is not None and held["A-1"] is None and held["A-3"] is None
    assert [r["record_id"] for r in store.rows(ledger, outcome="deleted")] == ["A-2"]
    assert not any(night("20261203", {"A-1": "1,50", "A-2": "2,75", "A-3": "3,50"}).values())  # back: alive
    assert len(store.rows(ledger, outcome="deleted")) == 1
