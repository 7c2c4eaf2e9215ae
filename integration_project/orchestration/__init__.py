"""Landscape -> dagster.Definitions, with the metadata contract on every definition."""

from integration_project.orchestration.build import build_definitions, system_definitions
from integration_project.orchestration.resources import HubStore

__all__ = ["HubStore", "build_definitions", "system_definitions"]
