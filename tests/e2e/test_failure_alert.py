"""A failed run of a source -> hub leg alerts the source system's owners and the object's steward."""

from __future__ import annotations

import dagster as dg

from integration_project import build_definitions, load_landscape

LEG = "ticket_support_to_hub"  # tickets reach the hub though no system consumes them yet


def test_a_failed_hub_only_leg_alerts_its_owners(alert_receiver, monkeypatch, tmp_path) -> None:
    url, alerts = alert_receiver
    monkeypatch.setenv("INTEGRATIONS_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.sqlite'}")
    monkeypatch.setenv("INTEGRATIONS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SUPPORT_TOKEN", raising=False)  # the run fails at once, before any request
    landscape = load_landscape("definitions")
    defs = build_definitions(landscape)
    instance = dg.DagsterInstance.ephemeral()
    failed = defs.resolve_job_def(LEG).execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    sensor = defs.get_repository_def().get_sensor_def("alert_on_run_failure")
    failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    sensor(dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_event=failure,
                                              dagster_instance=instance,
                                              dagster_run=failed.dagster_run).for_run_failure())
    [alert] = [a for a in alerts() if a["title"] == f"run of {LEG} failed"]
    support, ticket = landscape.systems["support"], landscape.objects["ticket"]
    assert alert["owners"] == list(dict.fromkeys([*support.owners, ticket.owner])) != []
    assert "nobody" not in alert["text"]


def test_a_consumer_failing_in_a_realtime_run_alerts_its_flows_owners_and_holds_up_no_other(
        sandbox, business_env, alert_receiver, monkeypatch) -> None:
    """One run carries a CRM change to every realtime consumer: billing failing there (its key is
    missing) leaves the other consumers' deliveries done and alerts billing's flow alone."""
    url, alerts = alert_receiver
    monkeypatch.setenv("INTEGRATIONS_ALERT_WEBHOOK_URL", url)
    monkeypatch.delenv("BILLING_API_KEY")
    landscape = load_landscape("definitions")
    defs = build_definitions(landscape)
    instance = dg.DagsterInstance.ephemeral()
    failed = defs.resolve_job_def("customer_crm_realtime").execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    steps = {e.step_key: e.event_type for e in failed.all_events
             if e.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)}
    others = [k for k in steps if k.startswith("deliver_") and k != "deliver_customer_crm_to_billing"]
    assert steps["deliver_customer_crm_to_billing"] == dg.DagsterEventType.STEP_FAILURE
    assert others and all(steps[k] == dg.DagsterEventType.STEP_SUCCESS for k in others)
    sensor = defs.get_repository_def().get_sensor_def("alert_on_run_failure")
    failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    sensor(dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_event=failure,
                                              dagster_instance=instance,
                                              dagster_run=failed.dagster_run).for_run_failure())
    [alert] = [a for a in alerts() if "customer_crm" in a["title"]]
    [billing] = [f for f in landscape.flows() if f.name == "customer_crm_to_billing"]
    assert alert["title"] == "run of customer_crm_to_billing failed" and alert["owners"] == billing.owners
