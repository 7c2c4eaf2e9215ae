"""The database's one schema (hub store and webhook inbox): the Alembic migrations beside this module.

Every process that opens the database upgrades it to the latest revision first. Processes that
start together take turns (an advisory lock on PostgreSQL, SQLite's write lock), so the first one
migrates and the others find nothing left to do.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import alembic.command
import alembic.config
import sqlalchemy as sa
from tenacity import retry, retry_if_exception, stop_after_delay, wait_fixed

MIGRATIONS = Path(__file__).with_name("migrations")
# The hub store may share a database with Dagster's own storage, which keeps `alembic_version`.
VERSION_TABLE = "integration_alembic_version"
_PG_LOCK_KEY = 0x5C4E_3A11  # arbitrary constant naming the migration's advisory lock
_upgraded: set[str] = set()  # databases this process has already brought to the latest revision


def _locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


# Processes switching a new SQLite database to WAL at the same moment: the losers are refused at
# once, whatever the busy timeout (SQLite refuses rather than risk a deadlock; measured here, 4 of
# 2,000 processes opening a new database ten at a time). Trying again finds WAL set, a no-op.
@retry(retry=retry_if_exception(_locked), wait=wait_fixed(0.01), stop=stop_after_delay(30), reraise=True)
def sqlite_wal(cursor: Any) -> None:
    """Put the SQLite database of this DB-API cursor in WAL mode (on connect, before any statement)."""
    cursor.execute("PRAGMA journal_mode=WAL")


def _config() -> alembic.config.Config:
    config = alembic.config.Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: sa.Engine) -> None:
    """Bring the database to the latest revision, once per process, in turn with other processes."""
    key = engine.url.render_as_string(hide_password=False)
    if key in _upgraded:
        return
    config = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
        elif connection.dialect.name == "sqlite":
            # the write lock up front: the next process waits here (busy_timeout) and then reads
            # the revision this one committed, instead of both creating the same tables
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, "head")
    _upgraded.add(key)
