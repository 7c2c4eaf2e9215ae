"""`integrations assess`: a source's data quality before go-live, kept where Dagster shows it."""

from __future__ import annotations

import json
import os

import click

from integration_project.connectors import connect
from integration_project.orchestration.observations import record_assessment
from integration_project.project import package_option
from integration_project.runtime.assess import assess as run_assessment
from integration_project.runtime.assess import save as save_assessment
from integration_project.runtime.assess import summary
from integration_project.runtime.cli import _landscape


@click.command()
@click.argument("target", metavar="SYSTEM/OBJECT")
@package_option
@click.option("--json", "as_json", is_flag=True, help="Print the assessment as JSON.")
def assess(target: str, package: str | None, as_json: bool) -> None:
    """Assess a source's data quality before go-live.

    Reads the system only and writes nothing to any system; the report is kept in the local data
    folder, and its counts are recorded as an observation of the asset in the Dagster instance
    ($DAGSTER_HOME), where the UI and `docs build` show them.
    """
    landscape = _landscape(package)
    system_name, _, obj_name = target.partition("/")
    system = landscape.systems.get(system_name)
    binding = next((b for b in system.bindings if b.object == obj_name), None) if system else None
    if system is None or binding is None or obj_name not in landscape.objects:
        raise click.BadParameter(f"{target!r} is not a declared SYSTEM/OBJECT binding", param_hint="target")
    connector = connect(system, binding)
    try:
        report = run_assessment(connector, binding, landscape.objects[obj_name])
    finally:
        connector.close()
    report["system"] = system_name
    save_assessment(report)
    if os.environ.get("DAGSTER_HOME"):
        record_assessment(system_name, obj_name, summary(report))
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    edited = report["changed_records"]
    click.echo(f"{target}: {report['records']} records, {report['invalid_records']} invalid, "
               + ("changed since created: unknown (no history)" if edited is None
                  else f"{edited} changed since created"))
    for field, r in report["fields"].items():
        click.echo(f"  {field:<14} invalid {r['invalid']:>6} ({r['invalid_rate']:.1%})  "
                   f"missing {r['missing']:>6} ({r['missing_rate']:.1%})"
                   + (f"  changed {r['changed']:>6}" if r["changed"] else "")
                   + (f"  padded {r['padded']:>6}" if r["padded"] else "")
                   + (f"  shared values {r['repeated']:>4}" if r["repeated"] else ""))
        for example in r["examples"]:
            click.echo(f"      e.g. id {example['id']}: {example['value']!r}: {example['error']}")
        if r["codes"]:
            click.echo("      codes: " + ", ".join(f"{k}={v}" for k, v in r["codes"].items()))
    for rule, n in report["rules"].items():
        click.echo(f"  record rule broken {n:>6}: {rule}")
    click.echo(f"  duplicate ids: {len(report['duplicate_ids'])}")
    for key, groups in report["duplicates"].items():
        click.echo(f"  duplicates by {key}: {len(groups)} group(s) {groups[:5]}")
