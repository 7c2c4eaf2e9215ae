"""How to talk to a system: one connector per API style, chosen by the declaration's `api.connector`."""

from integration_project.connectors.base import Connector, Page
from integration_project.connectors.csv import DropFolder
from integration_project.connectors.hubspot import HubSpot
from integration_project.connectors.mailchimp import Mailchimp
from integration_project.connectors.rest import Rest
from integration_project.connectors.shopify import Shopify
from integration_project.connectors.sql import Sql
from integration_project.connectors.stripe import Stripe
from integration_project.connectors.zendesk import Zendesk
from integration_project.model import Flow, System

CONNECTORS: dict[str, type[Connector]] = {
    "hubspot": HubSpot, "stripe": Stripe, "zendesk": Zendesk, "shopify": Shopify, "rest": Rest,
    "mailchimp": Mailchimp, "sql": Sql, "csv": DropFolder,
}


def connector_class(system: System) -> type[Connector] | None:
    """The connector class a system's API declares, if the framework has it."""
    return CONNECTORS.get(system.api.connector) if system.api else None


def can_extract(system: System, resource: str | None) -> bool:
    """True when the framework has a connector that reads this resource of this system."""
    cls = connector_class(system)
    return bool(cls and resource in cls.extracts)


def is_live(flow: Flow) -> bool:
    """True when there are connectors for both ends of the flow's resources."""
    src, dst = connector_class(flow.source), connector_class(flow.consumer)
    return bool(src and dst and flow.source_binding.resource in src.extracts
                and flow.binding.resource in dst.loads)


def connect(system: System) -> Connector:
    """A live connector for a system (credentials are read from the environment now)."""
    cls = connector_class(system)
    if cls is None:
        raise LookupError(f"no connector for system {system.name!r}")
    return cls(system.api)


__all__ = ["CONNECTORS", "Connector", "Page", "can_extract", "connect", "connector_class", "is_live"]
