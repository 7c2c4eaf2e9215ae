"""The Mailchimp connector against the sandbox marketing tool."""

from __future__ import annotations

import time

from integration_project.connectors.mailchimp import subscriber_hash
from tests.connectors.conftest import drain

MEMBERS = "lists/a1b2c3d4e5/members"


def test_members_extract_to_the_end_and_resume_with_only_changes(connector, sandbox, monkeypatch):
    monkeypatch.setattr("integration_project.connectors.mailchimp.PAGE", 15)
    mailchimp = connector("marketing")
    pages = list(mailchimp.pages(MEMBERS, None))
    assert len(pages) >= 3 and all(p.cursor is None for p in pages[:-1]) and pages[-1].cursor
    members = [m for p in pages for m in p.records]
    assert len({m["id"] for m in members}) == len(members) >= sandbox.seed_report("marketing")["counts"]["members"]
    cursor = pages[-1].cursor
    time.sleep(1.1)  # Mailchimp's times have second resolution
    mailchimp.upsert(MEMBERS, None, {"email_address": members[0]["email_address"], "merge_fields": {"COUNTRY": "NL"}})
    changed, _ = drain(mailchimp, MEMBERS, cursor)
    assert members[0]["id"] in {m["id"] for m in changed}
    assert len(changed) <= 2  # the change, and at most the member changed in the cursor's second


def test_members_upsert_by_subscriber_hash_keep_consent_and_are_indexed(connector):
    mailchimp = connector("marketing")
    email = "Grace.Hopper.1@Example.com"
    payload = {"email_address": email, "merge_fields": {"CRM_ID": "9001", "FNAME": "Grace", "LNAME": "Hopper"}}
    member = mailchimp.upsert(MEMBERS, None, payload)
    assert member == subscriber_hash(email)
    renamed = {**payload, "merge_fields": {**payload["merge_fields"], "LNAME": "H."}}
    assert mailchimp.upsert(MEMBERS, member, renamed) == member
    mine = [m for m in drain(mailchimp, MEMBERS, None)[0] if m["id"] == member]
    assert len(mine) == 1
    assert mine[0]["status"] == "pending" and mine[0]["merge_fields"]["LNAME"] == "H."
    assert mailchimp.index(MEMBERS, "merge_fields.CRM_ID")["9001"] == member
