"""The sync engine and its hub store (records, cursors, deliveries, ledger, dead-letter queue)."""

from integration_project.runtime.alerts import alert
from integration_project.runtime.engine import Stats, deliver, ingest
from integration_project.runtime.store import Store

__all__ = ["Stats", "Store", "alert", "deliver", "ingest"]
