"""Impact analysis of a system, one of its objects, or one field."""

import json

import networkx as nx
import pytest
from click.testing import CliRunner
from docs_fixtures import good_graph  # noqa: F401 (pytest fixtures)

from docs_gen.cli import impact as impact_command
from docs_gen.errors import DocsError
from docs_gen.impact import impact


def test_system_that_owns_objects_affects_every_consumer(good_graph: nx.MultiDiGraph) -> None:
    """If crm changes: its objects, their flows, every consumer, triggers and owners to tell."""
    r = impact(good_graph, "crm")
    assert r["objects"] == ["customer", "deal"]
    assert r["flows"] == ["customer_crm_to_billing", "customer_crm_to_shop", "deal_crm_to_billing"]
    assert r["consumers"] == ["billing", "shop"]
    assert "sensor customer_crm_to_billing_events" in r["triggers"] and "hub/deal:no_dead_letters" in r["checks"]
    assert {"team:sales-ops", "team:finance", "team:ecommerce", "team:integration"} <= set(r["owners"])


def test_consumer_binding_affects_only_itself(good_graph: nx.MultiDiGraph) -> None:
    """If billing's view of customer changes, only billing's asset and flow are affected."""
    r = impact(good_graph, "billing.customer")
    assert (r["flows"], r["assets"], r["consumers"]) == (["customer_crm_to_billing"], ["billing/customer"], [])


def test_field_by_canonical_or_system_name(good_graph: nx.MultiDiGraph) -> None:
    """A field is found by its canonical name or the system's own; unmapped consumers are spared."""
    assert impact(good_graph, "billing.customer.billing_email")["fields"] == {"customer": ["email"]}
    vat = impact(good_graph, "crm.customer.vat_number")
    assert vat["flows"] == [] and vat["consumers"] == []  # nobody maps vat_number
    email = impact(good_graph, "crm.customer.email")
    assert email["consumers"] == ["billing", "shop"] and email["kind"] == "field"


@pytest.mark.parametrize("target,message", [("nope", "unknown system"), ("crm.nope", "no asset for object"),
                                             ("crm.customer.zzz", "unknown field"), ("a.b.c.d", "bad target")])
def test_bad_targets_say_why(good_graph: nx.MultiDiGraph, target: str, message: str) -> None:
    """Unknown names are refused with one line naming what exists."""
    with pytest.raises(DocsError, match=message):
        impact(good_graph, target)


def test_impact_command() -> None:
    """`integrations impact` prints text or JSON; a bad target exits 2 without a traceback."""
    runner = CliRunner()
    out = runner.invoke(impact_command, ["erp", "-m", "docs_landscapes:defs", "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["consumers"] == ["shop"]
    text = runner.invoke(impact_command, ["erp.product", "-m", "docs_landscapes:defs"])
    assert text.exit_code == 0 and "flows: product_erp_to_shop" in text.output
    bad = runner.invoke(impact_command, ["nope", "-m", "docs_landscapes:defs"])
    assert bad.exit_code == 2 and "unknown system 'nope'" in bad.output and "Traceback" not in bad.output
