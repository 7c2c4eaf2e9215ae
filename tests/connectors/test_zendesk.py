"""Zendesk tickets out through the incremental cursor export; users indexed by cursor pagination."""

from __future__ import annotations

import base64

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
    with httpx.Client(base_url=sandbox.url("support"), auth=("agent@example.com/token", sandbox.token("support"))) as api:
        api.put(f"/api/v2/tickets/{tickets[0]['id']}.json", json={"ticket": {"status": "solved"}}).raise_for_status()
    changed, _ = drain(zendesk, "tickets", cursor)
    assert [(t["id"], t["status"]) for t in changed] == [(tickets[0]["id"], "solved")]


def test_an_api_token_goes_as_basic_email_token_and_the_declaration_names_the_email(connector, env, landscape):
    auth = landscape.systems["support"].api.auth
    assert auth.type == "basic" and auth.username_env and auth.password_env
    zendesk = connector("support")
    assert zendesk.http.credentials == {}  # no Bearer header beside it
    assert zendesk.http.auth is not None
    sent = next(zendesk.http.auth.auth_flow(httpx.Request("GET", env["SUPPORT_BASE_URL"]))).headers["Authorization"]
    user, _, token = base64.b64decode(sent.removeprefix("Basic ")).decode().partition(":")
    assert (user, token) == (f"{env[auth.username_env]}/token", env[auth.password_env])
    assert zendesk.index("users", "external_id") is not None  # the desk takes it


def test_the_users_index_pages_by_cursor_past_the_offset_cap(connector, sandbox):
    """The session's desk refuses offset pages past 20 records (Zendesk: 10,000); 40 are seeded."""
    zendesk = connector("support")
    ours = {f"zd-cap-{i}": zendesk.upsert("users", None, {"name": f"Cap {i}", "email": f"cap{i}@example.com",
                                                         "external_id": f"zd-cap-{i}"}) for i in range(3)}
    index = zendesk.index("users", "external_id")
    assert {k: index[k] for k in ours} == ours
