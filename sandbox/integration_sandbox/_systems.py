"""Which module builds which sandbox system's app."""

from __future__ import annotations

import importlib

from starlette.applications import Starlette

from ._config import SystemConfig

# billing is localstripe's aiohttp app, served by `billing.serve`, not built here.
STARLETTE_SYSTEMS = ("crm", "support", "shop", "inventory", "fulfilment", "marketing", "legacy_erp", "projects")


def build_app(config: SystemConfig) -> Starlette:
    """The starlette app of a system, built from its config."""
    if config.system not in STARLETTE_SYSTEMS:
        raise ValueError(f"unknown sandbox system {config.system!r}")
    module = importlib.import_module(f"integration_sandbox.{config.system}")
    app: Starlette = module.build_app(config)
    return app
