"""Integration as code on Dagster: declare systems and objects once; get syncs, lineage and docs."""

import importlib

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
    Ingest,
    Landscape,
    System,
    Volume,
    Webhook,
    load_landscape,
)

# Dagster is imported only when these are first used: the receiver and the sandbox need the
# declarations, not the orchestration, and importing Dagster costs seconds of CPU.
_LAZY = {
    "HubStore": "integration_project.orchestration",
    "build_definitions": "integration_project.orchestration",
    "system_definitions": "integration_project.orchestration",
    "SystemComponent": "integration_project.orchestration.component",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'integration_project' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})  # Dagster's component registry lists the package with dir()


__all__ = [
    "Api", "Auth", "Binding", "ConnectorError", "DataObject", "DeclarationError", "Flow", "Ingest",
    "IntegrationError", "Landscape", "PermanentError", "Problem", "System", "TransientError",
    "Volume", "Webhook", "WebhookError", "HubStore", "build_definitions", "load_landscape",
    "SystemComponent", "system_definitions",
]
