"""Integration as code on Dagster: declare systems and objects once; get syncs, lineage and docs."""

from integration_project.errors import (
    ConnectorError,
    DeclarationError,
    IntegrationError,
    PermanentError,
    Problem,
    TransientError,
    WebhookError,
)
from integration_project.model import (
    Api,
    Auth,
    Binding,
    DataObject,
    Flow,
    Landscape,
    System,
    Volume,
    Webhook,
    load_landscape,
)

__all__ = [
    "Api", "Auth", "Binding", "ConnectorError", "DataObject", "DeclarationError", "Flow",
    "IntegrationError", "Landscape", "PermanentError", "Problem", "System", "TransientError",
    "Volume", "Webhook", "WebhookError", "load_landscape",
]
