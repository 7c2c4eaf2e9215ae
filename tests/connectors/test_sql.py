"""The SQL connector against the sandbox ERP's database."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from integration_project.errors import PermanentError
from tests.connectors.conftest import drain

PRODUCTS = "ITM_MST?cursor=CHG_TS"


def test_products_extract_in_change_order_and_resume_with_only_changes(connector, sandbox, monkeypatch):
    monkeypatch.setattr("integration_project.connectors.sql.PAGE", 3)
    erp = connector("legacy_erp")
    pages = list(erp.pages(PRODUCTS, None))
    assert len(pages) > 2 and all(p.cursor for p in pages)
    rows = [r for p in pages for r in p.records]
    assert len(rows) == sandbox.seed_report("legacy_erp")["counts"]["ITM_MST"]
    assert [r["CHG_TS"] for r in rows] == sorted(r["CHG_TS"] for r in rows)
    cursor = pages[-1].cursor
    assert drain(erp, PRODUCTS, cursor)[0] == []
    engine = sa.create_engine(sandbox.erp_database_url())
    with engine.begin() as conn:  # purchasing changes a price, stamped like the ERP does
        newest = conn.execute(sa.text('SELECT MAX("CHG_TS") FROM "ITM_MST"')).scalar()
        stamp = datetime.fromisoformat(str(newest)) + timedelta(seconds=1)
        conn.execute(sa.text('UPDATE "ITM_MST" SET "UNIT_PRC" = 9.99, "CHG_TS" = :ts WHERE "ITM_NO" = :no'),
                     {"ts": stamp, "no": "SKU-000002"})
    engine.dispose()
    changed, _ = drain(erp, PRODUCTS, cursor)
    assert [(r["ITM_NO"], str(r["UNIT_PRC"])) for r in changed] == [("SKU-000002", "9.99")]


def test_invoices_upsert_by_primary_key_and_the_index_finds_them(connector, sandbox):
    erp = connector("legacy_erp")
    invoice = {"INV_NO": "in_test_1", "CUST_NO": "cus_123", "TOT_AMT": "1234.50", "CUR_CD": "EUR",
               "STAT_CD": "o", "INV_DT": "2026-11-27", "CHG_TS": "2026-11-27T10:00:00Z"}
    assert erp.upsert("INV_HDR", None, invoice) == "in_test_1"
    assert erp.upsert("INV_HDR", "in_test_1", {**invoice, "STAT_CD": "p"}) == "in_test_1"
    engine = sa.create_engine(sandbox.erp_database_url())
    with engine.connect() as conn:
        rows = conn.execute(sa.text('SELECT "STAT_CD", "TOT_AMT" FROM "INV_HDR" WHERE "INV_NO" = \'in_test_1\'')).all()
    engine.dispose()
    assert [(r[0], Decimal(str(r[1]))) for r in rows] == [("p", Decimal("1234.50"))]
    assert erp.index("INV_HDR", "INV_NO")["in_test_1"] == "in_test_1"


def test_a_row_the_database_refuses_is_a_permanent_error(connector):
    with pytest.raises(PermanentError, match="NOT NULL"):
        connector("legacy_erp").upsert("INV_HDR", None, {"INV_NO": "in_test_2", "CUST_NO": "cus_1"})
    with pytest.raises(PermanentError, match="no column"):
        connector("legacy_erp").upsert("INV_HDR", None, {"INV_NO": "in_test_3", "RECHNR": "x"})
