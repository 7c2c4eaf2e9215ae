"""Dagster resources: the hub store (and the webhook inbox kept in the same database)."""

import dagster as dg

from integration_project.runtime import Store
from integration_project.webhooks.inbox import Inbox


class HubStore(dg.ConfigurableResource):
    """The hub store's database; by default INTEGRATIONS_DATABASE_URL or a local SQLite file."""

    url: str | None = None

    def open(self) -> Store:
        """A store bound to the configured database."""
        return Store(self.url)

    def inbox(self) -> Inbox:
        """The webhook inbox in the configured database (close it after use)."""
        return Inbox(self.url)
