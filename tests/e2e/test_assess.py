"""`integrations assess` finds every quality problem the sandbox seeds, in every system, with its
count, through the bindings that read the field concerned, and writes nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from integration_project.cli import main
from integration_sandbox.landscape import sandbox_env
from integration_project.model import load_landscape
from integration_project.runtime import Store
from integration_project.runtime.store import hub_records
from integration_sandbox import Sandbox
from integration_sandbox.testing import free_port_sandbox

# (binding assessed, seeded problem as (system, kind) or (system, group, kind), where assess reports it)
EXPECTED = [
    ("crm/customer", ("crm", "invalid_email"), ("fields", "email", "invalid")),
    ("crm/customer", ("crm", "missing_email"), ("fields", "email", "missing")),
    ("crm/customer", ("crm", "inconsistent_country"), ("fields", "country", "invalid")),
    ("crm/customer", ("crm", "updated_twice"), ("changed_records",)),
    ("crm/customer", ("crm", "updated_twice"), ("fields", "phone", "changed")),
    ("shop/order", ("shop", "missing_email"), ("fields", "customer_email", "missing")),
    ("shop/order", ("shop", "invalid_email"), ("fields", "customer_email", "invalid")),
    ("shop/order", ("shop", "updated_twice"), ("changed_records",)),
    ("legacy_erp/product", ("legacy_erp", "missing_price"), ("fields", "price", "missing")),
    ("legacy_erp/product", ("legacy_erp", "lowercase_status"), ("fields", "active", "invalid")),
    ("legacy_erp/product", ("legacy_erp", "padded_text"), ("fields", "name", "padded")),
    ("legacy_erp/product", ("legacy_erp", "duplicate_text"), ("fields", "name", "repeated")),
    ("fulfilment/shipment", ("fulfilment", "missing_tracking"), ("rules", "Value error, a shipped parcel needs a tracking number")),
    ("inventory/stock_level", ("inventory", "negative_stock"), ("fields", "on_hand", "invalid")),
    ("inventory/product", ("inventory", "missing_name"), ("fields", "name", "missing")),
    ("marketing/customer", ("marketing", "missing_name"), ("fields", "first_name", "missing")),
    ("marketing/customer", ("marketing", "inconsistent_country"), ("fields", "country", "invalid")),
    ("support/customer", ("support", "users", "invalid_email"), ("fields", "email", "invalid")),
    ("support/ticket", ("support", "tickets", "missing_requester"), ("fields", "customer_email", "missing")),
]
# duplicates are groups of ids: every seeded duplicate must be in one (with its original)
DUPLICATES = [("crm/customer", ("crm", "duplicate"), "email"), ("support/customer", ("support", "users", "duplicate"), "email")]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, str]]:
    """Every system but billing (it seeds no problems) at 500 records; the environment pointed at it."""
    root = tmp_path_factory.mktemp("assess")
    systems = ["crm", "shop", "legacy_erp", "fulfilment", "inventory", "marketing", "support"]
    plus = {"shop": {"restore_rate": 1000, "bucket_size": 20_000}}  # a Shopify Plus shop's cost limits: reading 500 orders takes seconds, not a minute
    with free_port_sandbox(root / "sandbox", systems, seed=5, size=500, options=plus) as sb, \
            pytest.MonkeyPatch.context() as mp:
        hub = f"sqlite:///{root / 'hub.sqlite'}"
        for key, value in {**sandbox_env(load_landscape("definitions"), sb), "INTEGRATIONS_DATABASE_URL": hub,
                           "INTEGRATIONS_DATA_DIR": str(root / "data")}.items():
            mp.setenv(key, value)
        yield sb, hub


@pytest.fixture(scope="module")
def assessed(seeded) -> Callable[[str], dict[str, Any]]:
    """`assessed("crm/customer")`: the JSON report of `integrations assess`, run once per target."""
    reports: dict[str, dict[str, Any]] = {}

    def run(target: str) -> dict[str, Any]:
        if target not in reports:
            result = CliRunner().invoke(main, ["assess", target, "--json"], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            reports[target] = json.loads(result.output)
        return reports[target]

    return run


def seeded_ids(sb: Sandbox, problem: tuple[str, ...]) -> list[str]:
    found: Any = sb.seed_report(problem[0])["problems"]
    for part in problem[1:]:
        found = found[part]
    return found


@pytest.mark.parametrize(("target", "problem", "where"), EXPECTED, ids=[f"{t}:{p[-1]}" for t, p, _ in EXPECTED])
def test_every_seeded_problem_is_reported_with_its_count(seeded, assessed, target, problem, where):
    sb, _ = seeded
    report: Any = assessed(target)
    for part in where:
        report = report[part]
    assert report == len(seeded_ids(sb, problem)) > 0


@pytest.mark.parametrize(("target", "problem", "key"), DUPLICATES, ids=[t for t, _, _ in DUPLICATES])
def test_every_seeded_duplicate_is_grouped(seeded, assessed, target, problem, key):
    sb, _ = seeded
    grouped = {i for group in assessed(target)["duplicates"][key] for i in group}
    assert set(seeded_ids(sb, problem)) <= grouped and seeded_ids(sb, problem)


def test_assessing_wrote_nothing_to_the_hub_and_kept_each_report(seeded, assessed):
    _, hub = seeded
    for target in {t for t, _, _ in EXPECTED}:
        assessed(target)
    assert Store(hub).rows(hub_records) == []
    kept = {p.name for p in Path(os.environ["INTEGRATIONS_DATA_DIR"]).glob("assessments/*.json")}
    assert kept == {f"{t.replace('/', '.')}.json" for t, _, _ in EXPECTED}
