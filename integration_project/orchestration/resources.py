"""Dagster resources: the hub store."""


import dagster as dg

from integration_project.runtime import Store


class HubStore(dg.ConfigurableResource):
    """The hub store's database; by default INTEGRATIONS_DATABASE_URL or a local SQLite file."""

    url: str | None = None

    def open(self) -> Store:
        """A store bound to the configured database."""
        return Store(self.url)
