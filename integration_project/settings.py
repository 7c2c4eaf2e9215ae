"""Where the framework keeps its state, from environment variables with local defaults."""

from __future__ import annotations

import os
from pathlib import Path

DATABASE_URL_ENV = "INTEGRATIONS_DATABASE_URL"
DATA_DIR_ENV = "INTEGRATIONS_DATA_DIR"


def data_dir() -> Path:
    """The folder for local state (SQLite files, drop folders); whoever writes there creates it."""
    return Path(os.environ.get(DATA_DIR_ENV, ".data")).resolve()


def database_url() -> str:
    """SQLAlchemy URL of the hub store (hub records, cursors, ledger, DLQ, webhook inbox); the
    default SQLite file's folder is created here, as the store is about to be opened."""
    if url := os.environ.get(DATABASE_URL_ENV):
        return url
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'hub.sqlite'}"
