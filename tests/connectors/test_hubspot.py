"""HubSpot contact updates (the lead score) against the sandbox CRM."""

from __future__ import annotations

import pytest

from integration_project.errors import PermanentError
from tests.connectors.conftest import drain


def test_a_contact_is_found_by_email_and_updated_never_created(connector):
    hubspot = connector("crm")
    contacts, cursor = drain(hubspot, "contacts", None)
    target = next(c for c in contacts if "@" in c["properties"].get("email", "")
                  and c["properties"]["email"].endswith(".com"))
    email = target["properties"]["email"]
    payload = {"properties": {"email": email, "hs_lead_score": 4}}
    assert hubspot.upsert("contacts", None, payload) == target["id"]
    assert hubspot.upsert("contacts", target["id"], payload) == target["id"]
    after, _ = drain(hubspot, "contacts", cursor)
    assert target["id"] in {c["id"] for c in after}
    assert next(c for c in after if c["id"] == target["id"])["properties"]["hs_lead_score"] == "4"
    assert len(drain(hubspot, "contacts", None)[0]) == len(contacts)
    assert hubspot.index("contacts", "properties.email")[email] == min(
        (c["id"] for c in contacts if c["properties"].get("email") == email), key=int)
    with pytest.raises(PermanentError, match="no contacts record"):
        hubspot.upsert("contacts", None, {"properties": {"email": "nobody@example.org", "hs_lead_score": 1}})


def test_deals_extract_and_resume(connector, sandbox):
    hubspot = connector("crm")
    deals, cursor = drain(hubspot, "deals", None)
    assert len(deals) == sandbox.seed_report("crm")["counts"]["deals"]
    assert len(drain(hubspot, "deals", cursor)[0]) < len(deals)
