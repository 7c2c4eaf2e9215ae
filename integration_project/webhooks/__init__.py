"""Inbound webhooks: signature schemes, the durable inbox and the receiver app."""

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
    "SCHEMES",
    "TOLERANCE",
    "Event",
    "GenericHmac",
    "HubSpot",
    "Scheme",
    "Shopify",
    "StandardWebhooks",
    "Stripe",
]
