"""A binding's value map: our values sent as the system's (null or unlisted: not sent), a source's
read backwards; a map on a field the object lacks or the binding does not map, from a value the
object cannot hold, or ambiguous backwards, is one clear line naming file, declaration and field."""

from __future__ import annotations

import re

import pytest

from integration_project import DeclarationError, load_landscape
from integration_project.model.mapping import canonical_mapper, to_canonical, to_system
from tests.model.conftest import BILLING, CRM, OBJECTS

STATUS = {"received": None, "picked": None, "shipped": "in_transit", "delivered": "delivered"}
TIERED = OBJECTS.replace("from pydantic import BaseModel", "from typing import Literal\nfrom pydantic import BaseModel") \
    .replace("    email: str\n", "    email: str\n    tier: Literal['gold', 'silver'] = 'silver'\n", 1)


def problems(package: str) -> list[str]:
    with pytest.raises(DeclarationError) as info:
        load_landscape(package)
    return [str(p) for p in info.value.problems]


def test_a_consumer_sends_the_systems_value_and_leaves_out_what_the_map_does_not_list():
    mapping, values = {"id": "id", "status": "shipment_status"}, {"status": STATUS}
    assert to_system({"id": "1", "status": "shipped"}, mapping, {}, values) == {"id": "1", "shipment_status": "in_transit"}
    assert to_system({"id": "1", "status": "received"}, mapping, {}, values) == {"id": "1"}  # null: not sent
    assert to_system({"id": "1", "status": "lost"}, mapping, {}, values) == {"id": "1"}  # not listed: not sent
    # composed fields are templates over our values, untranslated
    assert to_system({"id": "1", "status": "shipped"}, mapping, {"note": "{status}"}, values)["note"] == "shipped"


def test_a_source_reads_the_map_backwards_and_keeps_a_value_it_does_not_list():
    mapping, values = {"id": "id", "status": "state"}, {"status": {"open": "OPEN", "won": "CLOSED_WON"}}
    for read in (lambda raw: to_canonical(raw, mapping, values), canonical_mapper(mapping, values)):
        assert read({"id": 1, "state": "CLOSED_WON"}) == {"id": 1, "status": "won"}
        assert read({"id": 1, "state": "ARCHIVED"}) == {"id": 1, "status": "ARCHIVED"}  # the model judges it
        assert read({"id": 1}) == {"id": 1, "status": None}
    # a value two of ours map onto (a consumer's map may) says nothing backwards: kept as read
    assert to_canonical({"state": "in_transit"}, {"status": "state"}, {"status": STATUS | {"picked": "in_transit"}}) \
        == {"status": "in_transit"}


def test_a_value_map_on_a_field_the_object_lacks_or_the_binding_does_not_map_is_refused(landscape_package):
    crm = CRM.replace('mapping={"id": "id", "email": "properties.email"})',
                      'mapping={"id": "id", "email": "properties.email"},\n'
                      '                values={"mail": {"a": "b"}})')
    billing = BILLING.replace("      mapping: {id: metadata.crm_id}\n",
                              "      mapping: {id: metadata.crm_id}\n      values:\n        email: {a@b.c: x@y.z}\n")
    found = problems(landscape_package(crm_py=crm, billing__defs_yaml=billing))
    assert any(re.fullmatch(r".*/systems/crm\.py:11: system crm: bindings\[0\]\.values\.mail: "
                            r"Customer has no field 'mail'", p) for p in found), found
    assert any(re.fullmatch(r".*/systems/billing/defs\.yaml:22: system billing: bindings\[1\]\.values\.email: "
                            r"'email' is not mapped: a value map translates the values of a field the binding's "
                            r"mapping sends to the system \(add mapping\.email\)", p) for p in found), found


def test_a_value_the_object_cannot_hold_or_an_ambiguous_source_map_is_refused(landscape_package):
    crm = CRM.replace('mapping={"id": "id", "email": "properties.email"})',
                      'mapping={"id": "id", "email": "properties.email", "tier": "properties.tier"},\n'
                      '                values={"tier": {"gold": "A", "silver": "A", "bronze": "C"}})')
    found = problems(landscape_package(objects=TIERED, crm_py=crm, billing__defs_yaml=BILLING))
    assert any(re.fullmatch(r".*/systems/crm\.py:11: system crm: bindings\[0\]\.values\.tier\.bronze: 'bronze' is "
                            r"not a value of Customer\.tier \(one of gold, silver\)", p) for p in found), found
    assert any(re.fullmatch(r".*/systems/crm\.py:11: system crm: bindings\[0\]\.values\.tier: the system's 'A' "
                            r"stands for 'gold' and 'silver': a source's value map is read backwards .*", p)
               for p in found), found
    fine = crm.replace('"silver": "A", "bronze": "C"', '"silver": "B"')
    assert load_landscape(landscape_package(objects=TIERED, crm_py=fine, billing__defs_yaml=BILLING))


SHOP = '''
from integration_project import Api, Binding, System

shop = System(
    name="shop", title="Shop", vendor="Shopify", kind="shopify", owners=["team:ops"],
    description="The shop.",
    api=Api(connector="shopify", base_url="http://127.0.0.1:1", version="2026-01"),
    bindings=[
        Binding(object="customer", role="consumer", purpose="Customers see a status.",
                resource="fulfillments", mode="realtime", mapping={"id": "order_id", "tier": "shipment_status"},
                values={"tier": {"gold": "in_transit", "silver": "on_its_way"}}),
    ],
)
'''


def test_a_value_the_vendor_refuses_is_one_line_at_check_and_at_load_not_a_dead_letter_later(landscape_package):
    """Shopify takes a shipment status only from its FulfillmentEventStatus enum: a value map sending
    another is caught by `integrations check` and when the Definitions load, before any delivery."""
    from click.testing import CliRunner

    from integration_project import build_definitions
    from integration_project.cli import main

    crm = CRM.replace('"email": "properties.email"}', '"email": "properties.email", "tier": "properties.tier"}')
    package = landscape_package(objects=TIERED, crm_py=crm, shop_py=SHOP, billing__defs_yaml=BILLING)
    checked = CliRunner().invoke(main, ["check", "--package", package])
    assert checked.exit_code == 1 and "Traceback" not in checked.output, checked.output
    line = checked.output.splitlines()[0]
    assert re.fullmatch(r".*/systems/shop\.py:\d+: system shop: bindings\[0\]\.values\.tier\.silver: 'on_its_way' is "
                        r"no Shopify FulfillmentEventStatus \(one of attempted_delivery, .*\)", line), line
    assert "gold" not in checked.output  # in_transit is Shopify's
    with pytest.raises(DeclarationError) as info:
        build_definitions(load_landscape(package))
    assert [str(p) for p in info.value.problems] == [line]
    fine = SHOP.replace('"on_its_way"', '"DELIVERED"')  # Shopify's enum spelling is taken too
    again = landscape_package(objects=TIERED, crm_py=crm, shop_py=fine, billing__defs_yaml=BILLING)
    assert CliRunner().invoke(main, ["check", "--package", again]).exit_code == 0
