"""The example landscape's Definitions carry what the UI and the docs need, on every asset."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import dagster as dg
import pytest
import yaml

from integration_project import build_definitions, contract, load_landscape
from integration_project.orchestration.instance import PROFILES, ensure_instance


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return build_definitions(load_landscape("definitions"))


def test_every_asset_has_owners_kinds_group_description_and_contract_keys(defs):
    specs = defs.resolve_all_asset_specs()
    assert len(specs) == 36  # 11 sources + 11 hub objects + 14 consumers
    for spec in specs:
        name = spec.key.to_user_string()
        assert spec.owners, name
        assert spec.kinds, name
        assert spec.group_name, name
        assert spec.description, name
        missing = [k for k in contract.REQUIRED if k not in spec.metadata]
        assert not missing, (name, missing)
        assert spec.metadata[contract.ROLE] in contract.ROLES
        assert isinstance(spec.metadata["dagster/column_schema"], dg.TableSchema)
        assert spec.metadata["dagster/code_references"].code_references[0].file_path.endswith(
            (".py", ".yaml")), name
        role, system = spec.metadata[contract.ROLE], spec.key.path[0]
        expected_group = {"hub": "hub", "source": f"{system}_source"}.get(role, system)
        assert spec.group_name == expected_group


def test_every_object_has_exactly_one_source_of_truth(defs):
    specs = defs.resolve_all_asset_specs()
    sources = Counter(s.metadata[contract.OBJECT] for s in specs if s.metadata[contract.ROLE] == "source")
    objects = {s.metadata[contract.OBJECT] for s in specs}
    assert len(objects) == 11
    assert all(sources[o] == 1 for o in objects), sources
    for spec in specs:  # every layer names the same source of truth as the object's source asset
        sot = next(s for s in specs if s.metadata[contract.ROLE] == "source"
                   and s.metadata[contract.OBJECT] == spec.metadata[contract.OBJECT])
        assert spec.metadata[contract.SOURCE_OF_TRUTH] == sot.key.path[0]


def test_lineage_runs_source_to_hub_to_consumers(defs):
    graph = defs.resolve_asset_graph()
    hub = dg.AssetKey(["hub", "customer"])
    assert graph.get(hub).parent_keys == {dg.AssetKey(["crm", "customer"])}
    assert graph.get(hub).child_keys == {dg.AssetKey([s, "customer"]) for s in ("billing", "support", "marketing", "projects")}


def test_only_flows_with_a_runtime_are_executable_the_rest_are_planned(defs):
    graph = defs.resolve_asset_graph()
    statuses = {}
    for spec in defs.resolve_all_asset_specs():
        name = spec.key.to_user_string()
        statuses[name] = spec.metadata[contract.STATUS]
        assert graph.get(spec.key).is_executable == (statuses[name] == "live"), name
    assert {statuses[k] for k in ("crm/customer", "hub/customer", "billing/customer")} == {"live"}
    jobs = {j.name for j in defs.get_repository_def().get_all_jobs()}
    for spec in defs.resolve_all_asset_specs():  # every live consumer has its flow's job
        if spec.metadata[contract.ROLE] == "consumer" and statuses[spec.key.to_user_string()] == "live":
            assert spec.metadata[contract.FLOWS].records[0].data["name"] in jobs


def test_the_customer_flow_has_a_job_a_schedule_and_its_source_a_realtime_job_and_sensor(defs):
    repo = defs.get_repository_def()
    job = repo.get_job("customer_crm_to_billing")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "crm/customer", "hub/customer", "billing/customer"}
    schedule = repo.get_schedule_def("customer_crm_to_billing_schedule")
    assert (schedule.job_name, schedule.cron_schedule) == ("customer_crm_to_billing", "*/15 * * * *")
    # a CRM change is one run: read once into the hub, delivered to every realtime consumer
    realtime = [f for f in load_landscape("definitions").flows()
                if f.object.name == "customer" and f.mode == "realtime" and f.name in repo.job_names]
    assert len(realtime) >= 2
    job = repo.get_job("customer_crm_realtime")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "crm/customer", "hub/customer", *(f"{f.consumer.name}/customer" for f in realtime)}
    assert set(job.tags[contract.TAG_FLOW].split(",")) == {f.name for f in realtime}
    sensor = repo.get_sensor_def("customer_crm_realtime_sensor")
    assert sensor.job_name == "customer_crm_realtime" and sensor.minimum_interval_seconds <= 4
    assert not [s for s in repo.sensor_defs if s.name.startswith("customer_crm_to_")]  # no run per flow


def test_one_run_of_a_lane_at_a_time_every_flow_in_one_lane(defs, tmp_path):
    """Two runs delivering to one consumer at once would send the same records and interleave its
    check-then-act writes: both profiles queue a lane's second run behind its first (the local one
    loaded by Dagster here, the production one by tests/scale on PostgreSQL). A flow's lane holds its
    own runs and, for a realtime flow, its source's realtime runs, which deliver to it too."""
    instance = dg.DagsterInstance.from_config(str(ensure_instance(tmp_path, "local")))
    for key in (contract.TAG_LANE, contract.TAG_MAINTENANCE):
        limit = {"key": key, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        assert limit in instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        for profile in PROFILES.values():
            assert limit in yaml.safe_load(profile)["concurrency"]["runs"]["tag_concurrency_limits"]
    jobs = [j for j in defs.get_repository_def().get_all_jobs() if not j.name.startswith("__")]
    # every job runs flows in a lane, or keeps the framework's own state (the inbox purge): one run at a time
    assert jobs and all(j.tags.get(contract.TAG_LANE) or j.tags.get(contract.TAG_MAINTENANCE) for j in jobs)
    assert sum(bool(j.tags.get(contract.TAG_MAINTENANCE)) for j in jobs) == 1
    lanes: dict[str, set[str]] = {}  # flow -> the lanes of the jobs that deliver to its consumer
    for job in jobs:
        for flow in filter(None, job.tags.get(contract.TAG_FLOW, "").split(",")):
            lanes.setdefault(flow, set()).add(job.tags[contract.TAG_LANE])
    assert lanes["customer_crm_to_billing"] == {"customer_crm_realtime"}  # its job, its reconciliation, the realtime job
    assert all(len(held) == 1 for held in lanes.values()), lanes


def test_an_instance_written_before_lanes_is_brought_up_to_date_an_edited_one_kept(tmp_path):
    old = PROFILES["local"].replace(contract.TAG_LANE, contract.TAG_FLOW)
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "dagster.yaml").write_text(old)
    assert (ensure_instance(tmp_path / "ours") / "dagster.yaml").read_text() == PROFILES["local"]
    (tmp_path / "edited").mkdir()
    (tmp_path / "edited" / "dagster.yaml").write_text(old + "# ours now\n")
    assert (ensure_instance(tmp_path / "edited") / "dagster.yaml").read_text() == old + "# ours now\n"


def test_metadata_names_credentials_never_their_values(monkeypatch):
    monkeypatch.setenv("CRM_TOKEN", "pat-na1-very-secret-value")
    monkeypatch.setenv("BILLING_API_KEY", "sk_test_very_secret_value")
    specs = build_definitions(load_landscape("definitions")).resolve_all_asset_specs()
    dumped = json.dumps([{k: str(v) for k, v in s.metadata.items()} for s in specs])
    assert "very-secret" not in dumped and "very_secret" not in dumped
    crm = next(s for s in specs if s.key.to_user_string() == "crm/customer")
    api = {r.data["field"]: r.data["value"] for r in crm.metadata[contract.API].records}
    assert api["credentials_env"] == "CRM_TOKEN"


def test_api_metadata_carries_the_pinned_versions_published_support_window():
    """From model/lifecycle.toml, by connector and version: HubSpot's 2026-03 ends 18 months after GA."""
    specs = build_definitions(load_landscape("definitions")).resolve_all_asset_specs()
    crm = next(s for s in specs if s.key.to_user_string() == "crm/customer")
    api = {r.data["field"]: r.data["value"] for r in crm.metadata[contract.API].records}
    assert {k: api[k] for k in ("version", "released", "support_ends", "support_source", "support_warning_days")} == {
        "version": "2026-03", "released": "2026-03-30", "support_ends": "2027-09-30",
        "support_source": "https://developers.hubspot.com/docs/developer-tooling/platform/versioning",
        "support_warning_days": 90}


def test_a_fresh_instance_has_its_storage_before_any_process_opens_it(tmp_path):
    """`up` starts the UI, its daemon and `docs serve` together on a fresh DAGSTER_HOME: if each
    created the SQLite tables itself, one would fail ("table alembic_version already exists", seen
    under stress-ng). ensure_instance creates them once; processes then open the home all at once."""
    home = ensure_instance(tmp_path / "home")
    assert (home / "history" / "runs.db").exists() and (home / "schedules" / "schedules.db").exists()
    opener = "import dagster as dg, sys\nwith dg.DagsterInstance.from_config(sys.argv[1]) as i: i.get_runs(limit=1)"
    processes = [subprocess.Popen([sys.executable, "-c", opener, str(home)], stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
    assert [(p.wait(), p.stderr.read()[-300:]) for p in processes] == [(0, "")] * 4
