"""What is observed about an asset outside a run, written to the Dagster instance (never read at
definition load): the latest `integrations assess` of a source."""

from __future__ import annotations

from typing import Any

import dagster as dg

from integration_project import contract as c


def record_assessment(system: str, obj: str, summary: dict[str, Any],
                      instance: dg.DagsterInstance | None = None) -> dg.AssetKey:
    """Record an assessment's counts (no values) as an observation of `<system>/<object>`; the
    Dagster UI shows it on the asset's page and `docs build` reads it from the same instance."""
    key = dg.AssetKey([system, obj])
    target = instance or dg.DagsterInstance.get()
    target.report_runless_asset_event(dg.AssetObservation(
        asset_key=key, description="Latest data-quality assessment (integrations assess).",
        metadata={c.ASSESSMENT: dg.MetadataValue.json(summary), "records": summary["records"],
                  "invalid_records": summary["invalid_records"]}))
    return key
