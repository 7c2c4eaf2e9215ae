"""Operating the customer flow: assess before go-live, DLQ replay and discard, alerts to owners."""

from __future__ import annotations

import json

import dagster as dg
import httpx
from click.testing import CliRunner

from docs_gen.graph import build_graph
from docs_gen.site import build
from integration_project import Volume, build_definitions, load_landscape
from integration_project.cli import main
from integration_project.runtime import Store
from integration_project.runtime.store import dlq, hub_records, ledger
from integration_sandbox.testing import crm_params

FLOW = "customer_crm_to_billing"


def run(defs: dg.Definitions | None = None) -> dg.ExecuteInProcessResult:
    defs = defs or build_definitions(load_landscape("definitions"))
    return defs.resolve_job_def(FLOW).execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                                         raise_on_error=False)


def crm(sandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.url("crm"), headers={"Authorization": f"Bearer {sandbox.token('crm')}"})


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_assess_reports_every_seeded_problem_and_writes_nothing(sandbox, business_env, tmp_path, monkeypatch):
    monkeypatch.setenv("INTEGRATIONS_DATA_DIR", str(tmp_path / "data"))
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    report = sandbox.seed_report("crm")["problems"]
    before = crm(sandbox).get("/crm/v3/objects/contacts", params=crm_params("contacts", limit=100)).json()
    code, out = cli("assess", "crm/customer", "--json")
    assert code == 0, out
    found = json.loads(out)
    assert found["records"] == sandbox.seed_report("crm")["counts"]["contacts"]
    assert found["fields"]["email"]["invalid"] == len(report["invalid_email"])
    assert found["fields"]["email"]["missing"] == len(report["missing_email"])
    assert found["fields"]["country"]["invalid"] == len(report["inconsistent_country"])
    assert found["changed_records"] == found["fields"]["phone"]["changed"] == len(report["updated_twice"])
    assert found["fields"]["email"]["changed"] == 0
    grouped = {i for group in found["duplicates"]["email"] for i in group}
    assert set(report["duplicate"]) <= grouped
    assert all(e["value"] == "***" for e in found["fields"]["email"]["examples"])  # PII masked
    assert found["fields"]["country"]["codes"] is None or "DE" in found["fields"]["country"]["codes"]
    assert crm(sandbox).get("/crm/v3/objects/contacts", params=crm_params("contacts", limit=100)).json() == before
    assert Store(business_env["INTEGRATIONS_DATABASE_URL"]).rows(hub_records) == []

    # the latest assessment is observed on the source asset in the Dagster instance, and shown on
    # its docs page (counts only); loading the Definitions reads none of it
    defs = build_definitions(load_landscape("definitions"))
    assert "integration/assessment" not in defs.resolve_assets_def(dg.AssetKey(["crm", "customer"])).specs_by_key[
        dg.AssetKey(["crm", "customer"])].metadata
    instance = dg.DagsterInstance.from_config(str(home))
    (seen,) = instance.fetch_observations(dg.AssetKey(["crm", "customer"]), limit=1).records
    shown = seen.event_log_entry.asset_observation.metadata["integration/assessment"].data
    assert shown["invalid_records"] == found["invalid_records"]
    assert {k: shown["fields"]["email"][k] for k in ("invalid", "missing", "changed")} == {
        "invalid": len(report["invalid_email"]), "missing": len(report["missing_email"]), "changed": 0}
    site = tmp_path / "site"
    build(build_graph(defs, "example", instance=instance), site, "html")
    page = (site / "assets" / "crm" / "customer.html").read_text()
    assert "Data-quality assessment" in page and f"{found['records']} records" in page
    assert "@" not in page.split("Data-quality assessment")[1].split("</table>")[0]  # no email values


def test_fixing_at_the_source_then_replay_delivers_and_discard_is_ledgered(sandbox, business_env):
    assert run().success
    store = Store(business_env["INTEGRATIONS_DATABASE_URL"])
    bad_email = sandbox.seed_report("crm")["problems"]["invalid_email"]
    entry = next(r for r in store.rows(dlq, status="open") if r["record_id"] == bad_email[0])

    code, out = cli("dlq", "list", "--flow", entry["flow"], "--json")
    assert code == 0 and entry["id"] in [r["id"] for r in json.loads(out)]

    code, out = cli("dlq", "replay", str(entry["id"]))  # not fixed yet: stays open, exit 1
    assert code == 1 and "still invalid" in out

    crm(sandbox).patch(f"/crm/v3/objects/contacts/{entry['record_id']}",
                       json={"properties": {"email": "fixed.by.sales@example.com"}}).raise_for_status()
    code, out = cli("dlq", "replay", str(entry["id"]), "--dry-run", "--json")
    assert code == 0 and json.loads(out)[0]["record"]["email"] == "fixed.by.sales@example.com"
    assert store.rows(dlq, id=entry["id"])[0]["status"] == "open"  # a dry run changes nothing

    code, out = cli("dlq", "replay", str(entry["id"]))
    assert code == 0, out
    assert store.rows(dlq, id=entry["id"])[0]["status"] == "resolved"
    billing = httpx.get(f"{sandbox.url('billing')}/v1/customers", params={"limit": 100},
                        headers={"Authorization": f"Bearer {sandbox.token('billing')}"}).json()["data"]
    assert [c["email"] for c in billing if c["metadata"].get("crm_contact_id") == entry["record_id"]] == [
        "fixed.by.sales@example.com"]

    other = next(r for r in store.rows(dlq, status="open"))
    code, out = cli("dlq", "discard", str(other["id"]), "--yes")
    assert code == 0 and "discarded 1" in out
    assert store.rows(dlq, id=other["id"])[0]["status"] == "discarded"
    assert [r["outcome"] for r in store.rows(ledger, idempotency_key=f"dlq:{other['id']}")] == ["discarded"]


def test_dlq_growth_and_volume_alerts_name_the_owner(sandbox, business_env, alert_receiver, monkeypatch):
    url, alerts = alert_receiver
    monkeypatch.setenv("INTEGRATIONS_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", business_env["INTEGRATIONS_DATABASE_URL"] + ".alerts")
    landscape = load_landscape("definitions")
    billing = landscape.systems["billing"]
    tight = billing.model_copy(update={"bindings": [
        b.model_copy(update={"volume": Volume(min=0, max=5)}) if b.object == "customer" else b
        for b in billing.bindings]})
    landscape.systems["billing"] = tight
    result = run(build_definitions(landscape))
    assert result.success
    received = alerts()
    titles = [a["title"] for a in received]
    assert any("parked in the dead-letter queue" in t for t in titles), titles
    assert any("volume outside its bounds" in t for t in titles), titles
    volume = next(a for a in received if "volume" in a["title"])
    assert "team:finance" in volume["owners"] and "team:finance" in volume["text"]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["volume_within_bounds"] is False and checks["valid_share"] is True


def test_an_api_deprecation_reaches_the_owner(sandbox, business_env, alert_receiver, monkeypatch):
    url, alerts = alert_receiver
    monkeypatch.setenv("INTEGRATIONS_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", business_env["INTEGRATIONS_DATABASE_URL"] + ".deprecation")
    headers = {"Authorization": f"Bearer {sandbox.token('crm')}"}
    httpx.put(f"{sandbox.url('crm')}/_sandbox/faults", headers=headers,
              json={"deprecation": "true", "sunset": "Wed, 01 Jul 2027 00:00:00 GMT"}).raise_for_status()
    try:
        result = run()
    finally:
        httpx.put(f"{sandbox.url('crm')}/_sandbox/faults", headers=headers, json={}).raise_for_status()
    assert result.success
    [source] = [m for m in result.asset_materializations_for_node("ingest_customer") if m.asset_key.path[0] == "crm"]
    assert any("Sunset: Wed, 01 Jul 2027" in said for said in source.metadata["deprecations"].value.values())
    alert = next(a for a in alerts() if a["title"] == "CRM API deprecation")
    assert "team:sales-ops" in alert["owners"] and "/crm/objects/2026-03/contacts" in alert["text"]


def test_a_failed_run_alerts_and_a_dead_alert_receiver_breaks_nothing(sandbox, business_env,
                                                                      alert_receiver, monkeypatch):
    url, alerts = alert_receiver
    monkeypatch.setenv("INTEGRATIONS_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/nothing-listens-here")
    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", business_env["INTEGRATIONS_DATABASE_URL"] + ".dead")
    assert run().success  # alerts fire (DLQ growth) into a closed port; the sync still succeeds

    monkeypatch.setenv("INTEGRATIONS_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("CRM_TOKEN", "not-the-token")
    defs = build_definitions(load_landscape("definitions"))
    instance = dg.DagsterInstance.ephemeral()
    failed = defs.resolve_job_def(FLOW).execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    sensor = defs.get_repository_def().get_sensor_def("alert_on_run_failure")
    failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=failure, dagster_instance=instance,
        dagster_run=failed.dagster_run).for_run_failure()
    sensor(context)
    alert = next(a for a in alerts() if a["title"] == f"run of {FLOW} failed")
    assert "team:finance" in alert["owners"] and "team:sales-ops" in alert["owners"]


def test_a_known_bad_record_read_again_does_not_block_a_small_run(sandbox, business_env, monkeypatch):
    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", business_env["INTEGRATIONS_DATABASE_URL"] + ".small")
    assert run().success
    report = sandbox.seed_report("crm")["problems"]
    bad, good = report["inconsistent_country"][0], next(str(i) for i in range(101, 200) if str(i) not in
                                                 {x for p in report.values() for x in p})
    for contact in (bad, good):  # a real-time-sized batch: one parked record, one good one
        crm(sandbox).patch(f"/crm/v3/objects/contacts/{contact}",
                           json={"properties": {"phone": "+49 89 555"}}).raise_for_status()
    result = run()
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert result.success and checks["valid_share"] is True
    [hub] = [m for m in result.asset_materializations_for_node("ingest_customer") if m.asset_key.path[0] == "hub"]
    assert hub.metadata["rejected"].value >= 1 and hub.metadata["written"].value >= 1
