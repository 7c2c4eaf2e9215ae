"""Integration as code on Dagster: declare systems and objects once; get syncs, lineage and docs.

The public API is this module's `__all__` (docs/api.md). Each name is imported when first used: a
command that needs no declaration (`integrations --help`) starts without pydantic or networkx, the
receiver and the sandbox (a distribution of its own) without Dagster.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from integration_project.errors import (
    ConnectorError,
    DeclarationError,
    IntegrationError,
    PermanentError,
    Problem,
    TransientError,
    WebhookError,
)

if TYPE_CHECKING:
    from integration_project.model import (
        Api,
        Auth,
        Binding,
        DataObject,
        Email,
        Flow,
        Ingest,
        Landscape,
        System,
        Volume,
        Webhook,
        load_landscape,
    )
    from integration_project.orchestration import HubStore, build_definitions, system_definitions
    from integration_project.orchestration.component import DataObjectComponent, SystemComponent

_MODEL = "integration_project.model"
_LAZY = {
    **dict.fromkeys(["Api", "Auth", "Binding", "DataObject", "Email", "Flow", "Ingest", "Landscape", "System",
                     "Volume", "Webhook", "load_landscape"], _MODEL),
    **dict.fromkeys(["HubStore", "build_definitions", "system_definitions"], "integration_project.orchestration"),
    **dict.fromkeys(["DataObjectComponent", "SystemComponent"], "integration_project.orchestration.component"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # the next use is a plain attribute
        return value
    raise AttributeError(f"module 'integration_project' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})  # Dagster's component registry lists the package with dir()


__all__ = [
    "Api", "Auth", "Binding", "ConnectorError", "DataObject", "DataObjectComponent", "DeclarationError", "Email",
    "Flow", "Ingest", "IntegrationError", "Landscape", "PermanentError", "Problem", "System", "TransientError",
    "Volume", "Webhook", "WebhookError", "HubStore", "build_definitions", "load_landscape",
    "SystemComponent", "system_definitions",
]
