"""Where the framework keeps its state, from environment variables with local defaults."""

from __future__ import annotations

import os
from pathlib import Path

DATABASE_URL_ENV = "INTEGRATIONS_DATABASE_URL"
DATA_DIR_ENV = "INTEGRATIONS_DATA_DIR"


def data_dir() -> Path:
    """The folder for local state (SQLite files, drop folders); created on first use."""
    path = Path(os.environ.get(DATA_DIR_ENV, ".data")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """SQLAlchemy URL of the hub store (hub records, cursors, ledger, DLQ, webhook inbox)."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{data_dir() / 'hub.sqlite'}"
