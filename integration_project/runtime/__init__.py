"""The sync engine and its hub store (records, cursors, deliveries, ledger, dead-letter queue).

Names are imported on first use: the receiver needs only `runtime.schema` for the inbox's table,
not the engine and its connectors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from integration_project.runtime.alerts import alert
    from integration_project.runtime.engine import Stats, deliver, ingest
    from integration_project.runtime.store import Store

_LAZY = {"alert": "alerts", "Stats": "engine", "deliver": "engine", "ingest": "engine", "Store": "store"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Stats", "Store", "alert", "deliver", "ingest"]
