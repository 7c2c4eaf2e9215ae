"""Zendesk tickets out through the incremental cursor export; users indexed by cursor pagination."""

from __future__ import annotations

import base64

import httpx

from tests.connectors.conftest import drain
from tests.sandbox.sandbox_clients import client

USERS_EXPORT = "GET /api/v2/incremental/users/cursor.json"
TICKETS_EXPORT = "GET /api/v2/incremental/tickets/cursor.json"
SHOW_MANY = "GET /api/v2/users/show_many.json"


def _asked(desk: httpx.Client) -> list[str]:
    """What each request the sandbox desk received asked for (method and path), in arrival order."""
    return desk.get("/_sandbox/requests").json()["asked"]


def _user_ids(desk: httpx.Client) -> list[int]:
    """Every user's id on the desk in its list order, read by cursor pages."""
    ids: list[int] = []
    url: str | None = "/api/v2/users.json?page%5Bsize%5D=100"
    while url:
        body = desk.get(url).raise_for_status().json()
        ids += [u["id"] for u in body["users"]]
        url = body["links"]["next"]
    return ids


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


def test_requesters_are_looked_up_by_id_never_by_exporting_every_user(connector, sandbox, monkeypatch):
    """Zendesk allows the incremental users export 10 requests a minute: a ticket read, counted at
    the desk, asks it nothing and looks each page's requesters up by id, one users/show_many a page."""
    monkeypatch.setattr("integration_project.connectors.zendesk.PAGE", 9)
    zendesk = connector("support")
    with client(sandbox, "support") as desk:
        before = len(_asked(desk))
        pages = list(zendesk.pages("tickets", None))
        asked = _asked(desk)[before:]
    assert asked.count(USERS_EXPORT) == 0
    assert asked.count(TICKETS_EXPORT) == len(pages) > 1
    assert asked.count(SHOW_MANY) == sum(1 for p in pages if any(t["requester_id"] for t in p.records))
    assert len(asked) == asked.count(TICKETS_EXPORT) + asked.count(SHOW_MANY)  # nothing else
    tickets = [t for p in pages for t in p.records]
    assert all(t["requester"]["id"] == t["requester_id"] for t in tickets if t["requester_id"])


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
    with client(sandbox, "support") as desk:  # ours lie where no offset page may reach
        rank = _user_ids(desk).index(min(int(i) for i in ours.values()))
        reaching = desk.get("/api/v2/users.json", params={"page": rank // 10 + 1, "per_page": 10})
    assert reaching.status_code == 400 and "Offset pagination is limited" in reaching.json()["description"]


def test_the_account_rate_limit_is_paced_on_zendesks_headers_never_hit(landscape, env, tmp_path, monkeypatch):
    """The desk limits the account as Zendesk does (here 10 requests in a 2 s window); a ticket scan
    of some 30 calls reads every ticket, pausing when `X-Rate-Limit-Remaining` says 0 until
    `ratelimit-reset`, and is never answered 429; a client that does not wait gets Zendesk's 429."""
    from integration_project.connectors.zendesk import Zendesk
    from integration_sandbox.testing import free_port_sandbox

    monkeypatch.setattr("integration_project.connectors.zendesk.PAGE", 5)
    options = {"support": {"rate_limit_per_minute": 10, "rate_limit_window_seconds": 2}}
    with free_port_sandbox(tmp_path, ["support"], seed=3, size=75, options=options) as sb:
        api = landscape.systems["support"].api.model_copy(update={"base_url": sb.url("support"), "base_url_env": None})
        zendesk = Zendesk(api)
        try:
            pages = list(zendesk.pages("tickets", None))
            assert zendesk.retries() == 0  # no 429 was answered, so none was retried
        finally:
            zendesk.close()
        assert 2 * len(pages) > 2 * 10  # an export page and a requester lookup each: more than two windows allow
        assert sum(len(p.records) for p in pages) == sb.seed_report("support")["counts"]["tickets"]
        with httpx.Client(base_url=sb.url("support"), auth=("agent@example.com/token", sb.token("support"))) as api_:
            answers = [api_.get("/api/v2/users.json", params={"page[size]": 1})]
            while answers[-1].status_code != 429 and len(answers) < 30:  # 10 a window: a 429 within 11 calls
                answers.append(api_.get("/api/v2/users.json", params={"page[size]": 1}))
        refused = answers[-1]
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 2
        assert refused.text == "Number of allowed API requests per minute exceeded"
        assert refused.headers["x-rate-limit-remaining"] == "0" and answers[0].headers["x-rate-limit"] == "10"
        assert answers[0].headers["ratelimit-reset"] in {"1", "2"}
