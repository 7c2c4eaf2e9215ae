"""Inbound webhooks: signature schemes, the durable inbox and the receiver app."""

from integration_project.webhooks.app import DEFAULT_MAX_BODY, ReceiverLimits, create_receiver
from integration_project.webhooks.endpoints import Endpoint, endpoints_from_landscape
from integration_project.webhooks.inbox import Delivery, Inbox, InboxRow, SystemStats
from integration_project.webhooks.signatures import (
    SCHEMES,
    TOLERANCE,
    Event,
    GenericHmac,
    HubSpot,
    Scheme,
    Shopify,
    StandardWebhooks,
    Stripe,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "SCHEMES",
    "TOLERANCE",
    "Delivery",
    "Endpoint",
    "Event",
    "GenericHmac",
    "HubSpot",
    "Inbox",
    "InboxRow",
    "ReceiverLimits",
    "Scheme",
    "Shopify",
    "StandardWebhooks",
    "Stripe",
    "SystemStats",
    "create_receiver",
    "endpoints_from_landscape",
]
