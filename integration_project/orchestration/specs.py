"""Asset specs of a landscape: three layers per object, with the metadata contract attached."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from integration_project import contract as c
from integration_project.connectors import flow_reason, ingest_reason
from integration_project.model import Api, DataObject, Flow, Ingest, Landscape, System
from integration_project.model.binding import Binding
from integration_project.model.urls import redact

HUB = "hub"
DOCS_URL_ENV = "INTEGRATIONS_DOCS_URL"  # where the generated docs are published


def docs_url(key: dg.AssetKey) -> str:
    """The asset's page in the generated docs: `<docs base URL>/assets/<key path>.html`."""
    base = os.environ.get(DOCS_URL_ENV, "http://127.0.0.1:8000").rstrip("/")
    return f"{base}/assets/{'/'.join(key.path)}.html"


def hub_key(obj: str) -> dg.AssetKey:
    """The key of an object's hub asset."""
    return dg.AssetKey([HUB, obj])


def consumer_key(flow: Flow) -> dg.AssetKey:
    """The key of a flow's consumer asset."""
    return dg.AssetKey([flow.consumer.name, flow.object.name])


@dataclass(frozen=True)
class ObjectSpecs:
    """The specs of one object's three layers, and which of them a runtime materializes."""

    ingest: Ingest
    source_spec: dg.AssetSpec
    hub_spec: dg.AssetSpec
    consumer_specs: dict[str, dg.AssetSpec]  # flow name -> spec
    live_flows: list[Flow]
    ingestible: bool  # a connector reads the source: source and hub are materialized

    @property
    def obj(self) -> DataObject:
        """The object of the three layers."""
        return self.ingest.object

    @property
    def source(self) -> System:
        """The object's source of truth."""
        return self.ingest.source


def object_specs(landscape: Landscape, leg: Ingest) -> ObjectSpecs:
    """Specs for one object: `<sot>/<object>`, `hub/<object>`, `<consumer>/<object>` each."""
    obj, source, source_binding = leg.object, leg.source, leg.binding
    flows = [f for f in landscape.flows() if f.object.name == obj.name]
    reasons = {f.name: flow_reason(f) for f in flows}  # None: live
    live = [f for f in flows if reasons[f.name] is None]
    not_read = ingest_reason(leg)
    ingestible = not_read is None
    status = "live" if ingestible else "planned"
    why = {c.STATUS_REASON: not_read} if not_read else {}
    flow_docs = [_flow_doc(f, f in live) for f in flows]
    if not live:  # the source -> hub leg runs on its own: it is the object's one flow
        flow_docs.append(_leg_doc(leg, status))
    common = {c.OBJECT: obj.name, c.SOURCE_OF_TRUTH: source.name, c.FLOWS: _flows_table(flow_docs),
              c.IDENTITY_KEY: obj.identity_key, c.PII: ", ".join(obj.pii),
              "dagster/column_schema": _schema(obj)}
    source_spec = dg.AssetSpec(
        key=[source.name, obj.name], group_name=source_group(source.name), owners=source.owners,
        kinds={source.kind}, description=f"{obj.name.replace('_', ' ').title()} records in "
        f"{source.title}, the source of truth. {source_binding.purpose}",
        metadata={**common, **_system_meta(landscape, source, source_binding), c.ROLE: "source",
                  c.MODE: "realtime" if source_binding.events else "batch", c.STATUS: status, **why,
                  c.TRIGGER: _pairs({"events": source_binding.events,  # a hub-only leg runs on its cron
                                     **(_leg_trigger(source_binding) if not live else {})}, "trigger")},
    )
    hub_spec = dg.AssetSpec(
        key=hub_key(obj.name), deps=[source_spec.key], group_name=HUB, owners=[obj.owner],
        kinds={"pydantic", "sqlalchemy"},
        description=f"{obj.description} Canonical, validated and versioned in the hub.",
        metadata={**common, c.SYSTEM: HUB, c.ROLE: "hub", c.STATUS: status, **why,
                  c.MODE: ",".join(sorted({f.mode for f in flows})) or "batch",
                  c.DECLARED_IN: landscape.where(f"object {obj.name}"),
                  "dagster/code_references": _code_ref(landscape.where(f"object {obj.name}"))},
    )
    consumer_specs = {}
    for flow in flows:
        consumer_specs[flow.name] = dg.AssetSpec(
            key=consumer_key(flow), deps=[hub_spec.key], group_name=flow.consumer.name,
            owners=flow.consumer.owners, kinds={flow.consumer.kind},
            description=f"{obj.name.replace('_', ' ').title()} records loaded into "
            f"{flow.consumer.title}. {flow.binding.purpose}",
            freshness_policy=dg.FreshnessPolicy.time_window(
                fail_window=timedelta(minutes=flow.freshness_minutes))
            if flow.freshness_minutes else None,
            metadata={**common, **_system_meta(landscape, flow.consumer, flow.binding),
                      c.ROLE: "consumer", c.MODE: flow.mode,
                      c.STATUS: "live" if flow in live else "planned",
                      **({c.STATUS_REASON: reasons[flow.name]} if reasons[flow.name] else {}),
                      c.FLOWS: _flows_table([_flow_doc(flow, flow in live)]),
                      c.TRIGGER: _pairs(_trigger(flow.binding), "trigger"),
                      c.VOLUME: dg.MetadataValue.json(flow.volume.model_dump())
                      if flow.volume else dg.MetadataValue.null(),
                      c.FRESHNESS_MINUTES: flow.freshness_minutes, c.ON_DELETE: flow.binding.on_delete},
        )
    def with_docs(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.merge_attributes(metadata={c.DOCS_URL: dg.MetadataValue.url(docs_url(spec.key))})

    return ObjectSpecs(leg, with_docs(source_spec), with_docs(hub_spec),
                       {name: with_docs(spec) for name, spec in consumer_specs.items()}, live, ingestible)


def _system_meta(landscape: Landscape, system: System, binding: Binding) -> dict[str, object]:
    where = landscape.where(f"system {system.name}", f"bindings[{system.bindings.index(binding)}]")
    api = system.api
    return {
        c.SYSTEM: system.name,
        c.PURPOSE: binding.purpose,
        c.MAPPING: _pairs({**binding.mapping, **binding.compose}, "canonical field", system.name),
        **({c.VALUES: dg.MetadataValue.json(binding.values)} if binding.values else {}),
        # URLs without credentials, even from a landscape that skipped `check` (which refuses them)
        c.API: _pairs({
            "vendor": system.vendor, "title": system.title,
            "connector": api.connector if api else None,
            "base_url": redact(api.base_url) if api else None, "version": api.version if api else None,
            "auth": api.auth.type if api else None,
            "credentials_env": api.auth.env_names() if api else [],
            "webhook": system.webhook.scheme if system.webhook else None,
            "docs_url": redact(api.docs_url) if api and api.docs_url else None,
            **_support(api),
        }, "field"),
        c.DECLARED_IN: where,
        "dagster/code_references": _code_ref(where),
    }


def _support(api: Api | None) -> dict[str, object]:
    """The `integration/api` rows of the pinned version's published support window (none: not known)."""
    known = api.support() if api else None
    if api is None or known is None:
        return {}
    return {"released": known.released.isoformat() if known.released else None,
            "support_ends": known.ends.isoformat() if known.ends else None,
            "support_source": known.source, "support_warning_days": api.support_warning_days}


def source_group(system: str) -> str:
    """The group of a system's source assets: apart from what it consumes (group `<system>`), so
    the collapsed lineage reads sources -> hub -> consumers with no box drawn both ways."""
    return f"{system}_source"


def _flow_doc(flow: Flow, live: bool) -> dict[str, Any]:
    return {"name": flow.name, "consumer": flow.consumer.name, "mode": flow.mode,
            "status": "live" if live else "planned"}


def _leg_doc(leg: Ingest, status: str) -> dict[str, Any]:
    """The source -> hub leg of an object no live flow consumes (its own job, schedule and DLQ name)."""
    return {"name": leg.name, "consumer": HUB, "mode": "batch", "status": status}  # its schedule runs it


def _leg_trigger(binding: Binding) -> dict[str, object]:
    """When a hub-only leg runs: the source binding's cron (no sensor runs a leg alone)."""
    return {"cron": binding.cron, "timezone": binding.timezone} if binding.cron else {}


def _flows_table(docs: list[dict[str, Any]]) -> dg.TableMetadataValue:
    """`integration/flows`: one row per flow, the columns of contract.FLOW_FIELDS."""
    columns = [dg.TableColumn(name, "bool" if name == "on_change" else "string") for name in c.FLOW_FIELDS]
    return dg.MetadataValue.table(records=[dg.TableRecord({k: d.get(k) for k in c.FLOW_FIELDS}) for d in docs],
                                  schema=dg.TableSchema(columns=columns))


def _pairs(values: dict[str, Any], key: str, value: str = "value") -> dg.TableMetadataValue:
    """A two-column table (the UI shows it as one; docs_gen reads it back as a dict); lists are
    joined with ", ", empty values left out."""
    rows = [dg.TableRecord({key: k, value: ", ".join(map(str, v)) if isinstance(v, list) else v})
            for k, v in values.items() if v not in (None, [], "")]
    return dg.MetadataValue.table(records=rows, schema=dg.TableSchema(
        columns=[dg.TableColumn(key), dg.TableColumn(value)]))


def _trigger(binding: Binding) -> dict[str, object]:
    out: dict[str, object] = {}
    if binding.cron:
        out.update(cron=binding.cron, timezone=binding.timezone)
    if binding.mode == "realtime":
        out["on_change"] = True
    return out


def _schema(obj: DataObject) -> dg.TableSchema:
    columns = []
    for name, field in obj.model.model_fields.items():
        kind = getattr(field.annotation, "__name__", None) or str(field.annotation)
        tags = {"pii": "true"} if name in obj.pii else {}
        constraints = dg.TableColumnConstraints(nullable=not field.is_required(),
                                                unique=name == obj.identity_key)
        columns.append(dg.TableColumn(name, kind.replace("typing.", ""), description=field.description,
                                      constraints=constraints, tags=tags))
    return dg.TableSchema(columns=columns)


def _code_ref(where: str) -> dg.CodeReferencesMetadataValue:
    path, _, line = where.partition(":")
    with warnings.catch_warnings():  # code references are beta in Dagster 1.13; we pin 1.13
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.CodeReferencesMetadataValue(code_references=[dg.LocalFileCodeReference(
            file_path=str(Path(path).resolve()), line_number=int(line) if line.isdigit() else None)])
