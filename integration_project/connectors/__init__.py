"""How to talk to a system: one connector per API style, chosen by the declaration's `api.connector`."""

from integration_project.connectors.base import Connector, HttpConnector, Ours, Page
from integration_project.connectors.csv import DropFolder
from integration_project.connectors.hubspot import HubSpot
from integration_project.connectors.mailchimp import Mailchimp
from integration_project.connectors.rest import Rest
from integration_project.connectors.shopify import Shopify
from integration_project.connectors.sql import Sql
from integration_project.connectors.stripe import Stripe
from integration_project.connectors.zendesk import Zendesk
from integration_project.model import Binding, Flow, System

CONNECTORS: dict[str, type[Connector]] = {
    "hubspot": HubSpot, "stripe": Stripe, "zendesk": Zendesk, "shopify": Shopify, "rest": Rest,
    "mailchimp": Mailchimp, "sql": Sql, "csv": DropFolder,
}


def connector_class(system: System, binding: Binding | None = None) -> type[Connector] | None:
    """The connector class of the channel a binding uses (the system's API without one), if any."""
    api = system.api_for(binding) if binding else system.api
    return CONNECTORS.get(api.connector) if api else None


def can_extract(system: System, binding: Binding) -> bool:
    """True when the framework has a connector that reads this binding's resource."""
    cls = connector_class(system, binding)
    return bool(cls and binding.resource in cls.extracts)


def is_live(flow: Flow) -> bool:
    """True when there are connectors for both ends of the flow's resources."""
    src = connector_class(flow.source, flow.source_binding)
    dst = connector_class(flow.consumer, flow.binding)
    return bool(src and dst and flow.source_binding.resource in src.extracts
                and flow.binding.resource in dst.loads)


def connect(system: System, binding: Binding | None = None) -> Connector:
    """A live connector for a binding's channel, or the system's API without one (credentials are
    read from the environment now)."""
    api = system.api_for(binding) if binding else system.api
    cls = connector_class(system, binding)
    if cls is None or api is None:
        raise LookupError(f"no connector for {system.name}" + (f"/{binding.object}" if binding else ""))
    return cls(api)


__all__ = ["CONNECTORS", "Connector", "DropFolder", "HttpConnector", "Ours", "Page", "can_extract", "connect",
           "connector_class", "is_live"]
