"""The sandbox legacy ERP: a real SQL database with an old-style schema, and a nightly CSV export.

The database (SQLite file by default; PostgreSQL or MariaDB by SQLAlchemy URL in option
`database_url`) has upper-case tables and columns, codes instead of names (`STAT_CD` A/S/X,
`GRP_CD`, `CUR_CD`), and naive local-time timestamps (option `timezone`, default Europe/Berlin).
`ITM_MST` is the product catalogue (the ERP is its source of truth); `INV_HDR` receives invoices.
The export writes `ITM_MST_<YYYYMMDD>.csv` to the drop folder: semicolon-separated, Latin-1, a header
row, decimal commas and `DD.MM.YYYY HH:MM:SS` times; once at start if today's file is missing, then
every `export_interval_seconds` (default 86400). The HTTP app is only an admin face:
`/_sandbox/health`, `/_sandbox/info` (database URL without password, drop folder) and
`POST /_sandbox/export` (export now; `?night=YYYYMMDD` names the file for another night).
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import _fake
from ._app import BadRequest, bearer, sandbox_app
from ._config import SystemConfig
from ._jsonapi import error_body

STATUS = {"A": "active", "S": "blocked", "X": "discontinued"}
GROUPS = {"MEC": "Mechanik", "ELE": "Elektrik", "HYD": "Hydraulik", "BEF": "Befestigung", "WZG": "Werkzeug"}
PROBLEM_RATES = {"missing_price": 0.02, "lowercase_status": 0.02, "padded_text": 0.03, "duplicate_text": 0.02}

metadata = sa.MetaData()
ITM_GRP = sa.Table(
    "ITM_GRP", metadata,
    sa.Column("GRP_CD", sa.String(3), primary_key=True),
    sa.Column("GRP_TXT", sa.String(40), nullable=False),
)
ITM_MST = sa.Table(
    "ITM_MST", metadata,
    sa.Column("ITM_NO", sa.String(12), primary_key=True),
    sa.Column("ITM_TXT", sa.String(60), nullable=False),
    sa.Column("GRP_CD", sa.String(3), sa.ForeignKey("ITM_GRP.GRP_CD"), nullable=False),
    sa.Column("UNIT_PRC", sa.Numeric(10, 2), nullable=True),
    sa.Column("CUR_CD", sa.String(3), nullable=False),
    sa.Column("UOM_CD", sa.String(3), nullable=False),
    sa.Column("STAT_CD", sa.String(1), nullable=False),
    sa.Column("CRT_TS", sa.DateTime, nullable=False),
    sa.Column("CHG_TS", sa.DateTime, nullable=False),
    sa.Column("CHG_USR", sa.String(8), nullable=False),
    sa.Index("IX_ITM_MST_CHG_TS", "CHG_TS"),
)
INV_HDR = sa.Table(
    "INV_HDR", metadata,
    sa.Column("INV_NO", sa.String(20), primary_key=True),
    sa.Column("CUST_NO", sa.String(20), nullable=False),
    sa.Column("INV_DT", sa.Date, nullable=False),
    sa.Column("TOT_AMT", sa.Numeric(12, 2), nullable=False),
    sa.Column("CUR_CD", sa.String(3), nullable=False),
    sa.Column("STAT_CD", sa.String(1), nullable=False),
    sa.Column("CHG_TS", sa.DateTime, nullable=False),
)
EXPORT_COLUMNS = ("ITM_NO", "ITM_TXT", "GRP_CD", "UNIT_PRC", "CUR_CD", "UOM_CD", "STAT_CD", "CHG_TS")


def database_url(config: SystemConfig) -> str:
    """The ERP database's SQLAlchemy URL (option `database_url`, else a SQLite file in the data folder)."""
    return str(config.options.get("database_url") or f"sqlite:///{config.data_dir / 'legacy_erp.sqlite'}")


def drop_folder(config: SystemConfig) -> Path:
    """Where the nightly CSV exports land (option `drop_folder`, else `<data_dir>/legacy_erp_drop`)."""
    return Path(config.options.get("drop_folder") or config.data_dir / "legacy_erp_drop")


def _local(ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz).replace(tzinfo=None, microsecond=0)


def seed(engine: sa.Engine, seed_: int, size: int, tz: ZoneInfo) -> dict[str, Any]:
    """The catalogue (`product_count(size)` items) and a few invoices; returns the seed report."""
    rng = random.Random(seed_ + 8)
    ids = range(1, 1 + _fake.product_count(size))
    problems = _fake.pick_problems(rng, ids, PROBLEM_RATES)
    flags = {i: name for name, chosen in problems.items() for i in chosen}

    def items() -> Iterator[dict[str, Any]]:
        for i in ids:
            created = _fake.created_ms(rng)
            text = _fake.product_name(i)
            status = rng.choice("AAAAAAAS X".replace(" ", ""))
            price: Decimal | None = Decimal(rng.randrange(100, 50_000)) / 100
            match flags.get(i):
                case "missing_price":
                    price = None
                case "lowercase_status":
                    status = status.lower()
                case "padded_text":
                    text = text.ljust(40)
                case "duplicate_text":
                    text = _fake.product_name(i - 1 if i > 1 else i + 1)
            yield {"ITM_NO": _fake.sku(i), "ITM_TXT": text, "GRP_CD": rng.choice(list(GROUPS)), "UNIT_PRC": price,
                   "CUR_CD": "EUR", "UOM_CD": "STK", "STAT_CD": status, "CRT_TS": _local(created, tz),
                   "CHG_TS": _local(created + rng.randrange(1, 30 * 86_400_000), tz),
                   "CHG_USR": rng.choice(["BATCH", "MUELLER", "ADMIN"])}

    with engine.begin() as conn:
        conn.execute(ITM_GRP.insert(), [{"GRP_CD": k, "GRP_TXT": v} for k, v in GROUPS.items()])
        batch: list[dict[str, Any]] = []
        for row in items():
            batch.append(row)
            if len(batch) >= 10_000:
                conn.execute(ITM_MST.insert(), batch)
                batch.clear()
        if batch:
            conn.execute(ITM_MST.insert(), batch)
    return {"system": "legacy_erp", "seed": seed_, "size": size,
            "counts": {"ITM_MST": len(ids), "ITM_GRP": len(GROUPS)},
            "rates": PROBLEM_RATES, "problems": {k: [_fake.sku(i) for i in v] for k, v in problems.items()}}


def export(engine: sa.Engine, folder: Path, tz: ZoneInfo, now: datetime | None = None) -> tuple[Path, int]:
    """Write today's `ITM_MST_<YYYYMMDD>.csv` (atomically: a temp file, then a rename); returns path and rows."""
    moment = now or datetime.now(tz)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"ITM_MST_{moment:%Y%m%d}.csv"
    tmp = target.with_suffix(".tmp")
    rows = 0
    with engine.connect() as conn, tmp.open("w", encoding="latin-1", errors="replace", newline="") as f:
        writer = csv.writer(f, delimiter=";", lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        result = conn.execution_options(stream_results=True).execute(
            sa.select(*(ITM_MST.c[c] for c in EXPORT_COLUMNS)).order_by(ITM_MST.c.ITM_NO))
        for row in result:
            price = "" if row.UNIT_PRC is None else f"{row.UNIT_PRC:.2f}".replace(".", ",")
            writer.writerow([row.ITM_NO, row.ITM_TXT, row.GRP_CD, price, row.CUR_CD, row.UOM_CD, row.STAT_CD,
                             row.CHG_TS.strftime("%d.%m.%Y %H:%M:%S")])
            rows += 1
    tmp.replace(target)
    return target, rows


def build_app(config: SystemConfig) -> Starlette:
    """The ERP's admin app for a config; creates and seeds the database on first start."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    tz = ZoneInfo(str(config.options.get("timezone", "Europe/Berlin")))
    engine = sa.create_engine(database_url(config))
    metadata.create_all(engine)
    with engine.connect() as conn:
        empty = conn.execute(sa.select(sa.func.count()).select_from(ITM_MST)).scalar() == 0
    if empty:
        config.seed_report.write_text(json.dumps(seed(engine, config.seed, config.size, tz), indent=1))
    folder = drop_folder(config)
    interval = float(config.options.get("export_interval_seconds", 86_400))

    async def nightly() -> None:
        if not (folder / f"ITM_MST_{datetime.now(tz):%Y%m%d}.csv").exists():
            await asyncio.to_thread(export, engine, folder, tz)
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(export, engine, folder, tz)

    async def info(_: Request) -> Response:
        url = sa.make_url(database_url(config)).render_as_string(hide_password=True)
        return JSONResponse({"database_url": url, "drop_folder": str(folder), "timezone": str(tz)})

    async def export_now(request: Request) -> Response:
        night = request.query_params.get("night")
        try:
            moment = datetime.strptime(night, "%Y%m%d").replace(tzinfo=tz) if night else None
        except ValueError:
            raise BadRequest(400, f"night must be YYYYMMDD, got {night!r}") from None
        path, rows = await asyncio.to_thread(export, engine, folder, tz, moment)
        return JSONResponse({"file": str(path), "rows": rows})

    routes = [
        Route("/_sandbox/info", info, methods=["GET"]),
        Route("/_sandbox/export", export_now, methods=["POST"]),
    ]
    return sandbox_app(config, routes, None, bearer, error_body, background=nightly)

