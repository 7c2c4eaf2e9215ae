"""How to talk to a system: one connector per API style, chosen by the declaration's `api.connector`.

The registry is open: besides the framework's own connectors, `api.connector` may name one that a
package registers under the entry point group `integration_project.connectors`, or give a dotted
path to a Connector class (`my_package.vendors:Ticketing`). A REST API the declaration describes
needs no code at all: `connector: rest` with `resources` (connectors/declarative.py).
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points

from integration_project.connectors.base import Connector, HttpConnector, Ours, Outcome, Page, Patterns, Upsert
from integration_project.connectors.csv import DropFolder
from integration_project.connectors.declarative import Declared
from integration_project.connectors.hubspot import HubSpot
from integration_project.connectors.mailchimp import Mailchimp
from integration_project.connectors.shopify import Shopify
from integration_project.connectors.sql import Sql
from integration_project.connectors.stripe import Stripe
from integration_project.connectors.zendesk import Zendesk
from integration_project.errors import Problem
from integration_project.model import Api, Binding, Flow, Ingest, Landscape, System

ENTRY_POINT_GROUP = "integration_project.connectors"
CONNECTORS: dict[str, type[Connector]] = {
    "hubspot": HubSpot, "stripe": Stripe, "zendesk": Zendesk, "shopify": Shopify, "rest": Declared,
    "mailchimp": Mailchimp, "sql": Sql, "csv": DropFolder,
}


@functools.cache
def registered() -> dict[str, type[Connector]]:
    """The framework's connectors and those packages register under ENTRY_POINT_GROUP (read once)."""
    found = dict(CONNECTORS)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point.load())  # a package cannot replace a built-in one
    return found


def lookup(name: str) -> type[Connector] | str:
    """The connector class a declaration names, else why there is none (one sentence)."""
    if name in registered():
        return registered()[name]
    if "." not in name and ":" not in name:
        known = ", ".join(sorted(registered()))
        return (f"no connector {name!r} (known: {known}; a package adds one under the entry point group "
                f"{ENTRY_POINT_GROUP}, or give a dotted path module:Class)")
    module, _, attr = name.partition(":") if ":" in name else name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        return f"connector {name!r} cannot be imported ({type(exc).__name__}: {exc})"
    if not (isinstance(found, type) and issubclass(found, Connector)):
        return f"connector {name!r} is not a Connector class"
    return found


def connector_class(system: System, binding: Binding | None = None) -> type[Connector] | None:
    """The connector class of the channel a binding uses (the system's API without one), if any."""
    api = system.api_for(binding) if binding else system.api
    found = lookup(api.connector) if api else None
    return found if isinstance(found, type) else None


def _reason(system: System, binding: Binding, verb: str) -> str | None:
    """Why a binding's resource cannot be read (verb 'extract') or written ('load'), or None."""
    api: Api | None = system.api_for(binding)
    if api is None:
        return f"{system.name} declares no API to {verb} {binding.resource!r} through"
    found = lookup(api.connector)
    if isinstance(found, str):
        return f"{system.name}: {found}"
    extracts, loads = found.supports(api)
    if binding.resource in (extracts if verb == "extract" else loads):
        return None
    if found is Declared:
        what = "a path to read" if verb == "extract" else "a write"
        return f"{system.name}: resource {binding.resource!r} is not declared with {what} in api.resources"
    hint = found.unsupported(binding.resource, verb)
    cannot = f"{system.name}: connector {api.connector!r} cannot {verb} {binding.resource!r}"
    return f"{cannot} ({hint})" if hint else cannot


def ingest_reason(ingest: Ingest) -> str | None:
    """Why the source -> hub leg cannot run (None when it can)."""
    return _reason(ingest.source, ingest.binding, "extract")


def flow_reason(flow: Flow) -> str | None:
    """Why a flow is planned, not live (None when both ends have a connector for their resources
    and the consumer's can carry out its on_delete action)."""
    return (_reason(flow.source, flow.source_binding, "extract") or _reason(flow.consumer, flow.binding, "load")
            or _removal_reason(flow))


def _removal_reason(flow: Flow) -> str | None:
    action, found = flow.binding.on_delete, connector_class(flow.consumer, flow.binding)
    if action == "ignore" or found is None or flow.binding.resource in Patterns(found.removes.get(action, ())):
        return None
    api = flow.consumer.api_for(flow.binding)
    return (f"{flow.consumer.name}: connector {api.connector if api else None!r} cannot {action} "
            f"{flow.binding.resource!r} (on_delete)")


def value_problems(landscape: Landscape) -> list[Problem]:
    """Each value a binding's value map names for the system that its connector says the vendor
    refuses (`Connector.refused_value`): caught at load, not at the first delivery."""
    problems = []
    for system, binding in landscape.bindings():
        found = connector_class(system, binding)
        if found is None:
            continue
        for field_name, table in binding.values.items():
            path = binding.mapping.get(field_name)
            for ours, theirs in table.items():
                if path and theirs is not None and (why := found.refused_value(binding.resource, path, theirs)):
                    decl = f"system {system.name}"
                    at = f"bindings[{system.bindings.index(binding)}].values.{field_name}.{ours}"
                    problems.append(Problem(landscape.where(decl, at), decl, at, why))
    return problems


def can_extract(system: System, binding: Binding) -> bool:
    """True when the framework has a connector that reads this binding's resource."""
    return _reason(system, binding, "extract") is None


def is_live(flow: Flow) -> bool:
    """True when there are connectors for both ends of the flow's resources."""
    return flow_reason(flow) is None


def connect(system: System, binding: Binding | None = None) -> Connector:
    """A live connector for a binding's channel, or the system's API without one (credentials are
    read from the environment now), told what each binding on that API reads (`select`)."""
    api = system.api_for(binding) if binding else system.api
    cls = connector_class(system, binding)
    if cls is None or api is None:
        raise LookupError(f"no connector for {system.name}" + (f"/{binding.object}" if binding else ""))
    return selected(cls(api), system, api)


def selected(connector: Connector, system: System, api: Api) -> Connector:
    """The connector told the source paths of every binding of `system` on `api` (`select`)."""
    for each in system.bindings:
        if system.api_for(each) == api:
            connector.select(each.resource, list(each.mapping.values()))
    return connector


__all__ = ["CONNECTORS", "ENTRY_POINT_GROUP", "Connector", "Declared", "DropFolder", "HttpConnector", "Ours", "Outcome",
           "Page", "Patterns", "Upsert", "can_extract", "connect", "connector_class", "flow_reason", "ingest_reason",
           "is_live", "lookup", "registered", "selected", "value_problems"]
