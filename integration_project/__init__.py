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
from integration_project.orchestration import HubStore, build_definitions, system_definitions
from integration_project.orchestration.component import SystemComponent

__all__ = [
    "Api", "Auth", "Binding", "ConnectorError", "DataObject", "DeclarationError", "Flow",
    "IntegrationError", "Landscape", "PermanentError", "Problem", "System", "TransientError",
    "Volume", "Webhook", "WebhookError", "HubStore", "build_definitions", "load_landscape",
    "SystemComponent", "system_definitions",
]
