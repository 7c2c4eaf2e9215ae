"""Zendesk tickets out through the incremental cursor export."""

from __future__ import annotations

import httpx

from tests.connectors.conftest import drain


def test_tickets_come_with_their_requester_and_resume_with_only_changes(connector, sandbox, monkeypatch):
    monkeypatch.setattr("integration_project.connectors.zendesk.PAGE", 9)
    zendesk = connector("support")
    pages = list(zendesk.pages("tickets", None))
    assert len(pages) >= 4 and all(p.cursor for p in pages)
    tickets = [t for p in pages for t in p.records]
    report = sandbox.seed_report("support")
    assert len(tickets) == report["counts"]["tickets"]
    no_requester = set(report["problems"]["tickets"]["missing_requester"])
    assert {str(t["id"]) for t in tickets if t["requester"] is None} == no_requester
    assert all("@" in t["requester"]["email"] or t["requester"]["email"] for t in tickets if t["requester"])
    cursor = pages[-1].cursor
    assert drain(zendesk, "tickets", cursor)[0] == []
    auth = {"Authorization": f"Bearer {sandbox.token('support')}"}
    with httpx.Client(base_url=sandbox.url("support"), headers=auth) as api:
        api.put(f"/api/v2/tickets/{tickets[0]['id']}.json", json={"ticket": {"status": "solved"}}).raise_for_status()
    changed, _ = drain(zendesk, "tickets", cursor)
    assert [(t["id"], t["status"]) for t in changed] == [(tickets[0]["id"], "solved")]
