"""The marketing connector's requests and the sandbox marketing's answers against Mailchimp's
operations as its generated SDK (mailchimp-marketing 3.0.80) sends them, and the answers' shapes
from its API reference (tests/contracts/specs/mailchimp)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from integration_project.connectors import HttpConnector
from integration_project.connectors.mailchimp import subscriber_hash
from tests.connectors.conftest import drain
from tests.contracts.operations import Operations
from tests.contracts.recording import Exchange, Recording

MAILCHIMP = Operations(Path(__file__).parent / "specs" / "mailchimp", "/3.0")
MEMBERS = "lists/a1b2c3d4e5/members"


def exercise(mailchimp: HttpConnector) -> None:
    """Every operation the connector offers: a scan, an incremental read, the index, a create
    (merge fields checked and one created), an update, a changed email, an archive and an erasure."""
    records, cursor = drain(mailchimp, MEMBERS, None)
    assert records
    drain(mailchimp, MEMBERS, cursor)
    mailchimp.index(MEMBERS, "merge_fields.CRM_ID")
    run = uuid.uuid4().hex[:8]
    one, two = f"contract.one.{run}@example.com", f"contract.two.{run}@example.com"
    tag = f"C{run[:6].upper()}"  # a merge field the audience lacks: created first
    first = mailchimp.upsert(MEMBERS, None, {"email_address": one, "merge_fields": {"CRM_ID": "31", tag: "x"}})
    mailchimp.upsert(MEMBERS, first, {"email_address": one, "merge_fields": {"FNAME": "D"}})
    moved = mailchimp.upsert(MEMBERS, first, {"email_address": two, "merge_fields": {"CRM_ID": "31"}})
    mailchimp.remove(MEMBERS, moved, "archive")
    [member] = [m for page in mailchimp.pages(MEMBERS, None) for m in page.records if m["id"] == moved]
    assert member["status"] == "archived"
    mailchimp.remove(MEMBERS, moved, "delete")
    mailchimp.remove(MEMBERS, moved, "delete")  # erased already: done
    assert moved not in mailchimp.index(MEMBERS, "merge_fields.CRM_ID").values()


@pytest.fixture
def exchanges(recorded) -> list[Exchange]:
    mailchimp, recording = recorded("marketing")
    exercise(mailchimp)
    return recording.exchanges


def test_the_connector_calls_every_operation_kept(exchanges):
    called = {MAILCHIMP.operation(e.request) for e in exchanges}
    assert called == set(MAILCHIMP.operations)


def test_every_request_the_marketing_connector_sends_is_in_mailchimps_operations(exchanges):
    problems = [p for e in exchanges if (p := MAILCHIMP.request_problem(e.request))]
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_every_answer_the_sandbox_marketing_gives_is_mailchimps_shape(exchanges):
    problems = [p for e in exchanges if (p := MAILCHIMP.response_problem(e))]
    assert not problems, "\n".join(dict.fromkeys(problems))


def _sent(env: dict[str, str], method: str, path: str, **kwargs: object) -> Exchange:
    recording = Recording()
    with httpx.Client(base_url=env["MARKETING_BASE_URL"], transport=recording,
                      auth=("any", env["MARKETING_API_KEY"])) as client:
        client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return recording.exchanges[-1]


def _answer(exchange: Exchange, body: object, status: int = 200) -> Exchange:
    return Exchange(exchange.request, httpx.Response(status, json=body, request=exchange.request))


def test_the_check_fails_when_a_request_or_an_answer_is_changed_against_mailchimps(env):
    listing = _sent(env, "GET", f"/3.0/{MEMBERS}", params={"count": 2})
    assert MAILCHIMP.request_problem(listing.request) is None and MAILCHIMP.response_problem(listing) is None
    paged = listing.request.url.copy_merge_params({"page": "2"})
    assert MAILCHIMP.request_problem(httpx.Request("GET", paged, headers=listing.request.headers)) == (
        f"GET /3.0/{MEMBERS}: get_list_members_info has no query parameter page")
    assert MAILCHIMP.request_problem(httpx.Request("DELETE", listing.request.url.copy_with(
        path="/3.0/lists/a1b2c3d4e5/merge-fields"), headers=listing.request.headers)) == (
        "DELETE /3.0/lists/a1b2c3d4e5/merge-fields: no such operation")
    assert "no credentials" in (MAILCHIMP.request_problem(httpx.Request("GET", listing.request.url)) or "")
    body = listing.response.json()
    assert MAILCHIMP.response_problem(_answer(listing, {k: v for k, v in body.items() if k != "total_items"})) == (
        f"GET /3.0/{MEMBERS} -> 200: 'total_items' is a required property at the top")
    forged = {**body, "members": [{**body["members"][0], "id": subscriber_hash("someone.else@example.com")}]}
    assert "is not the MD5 of its lower-cased email" in (MAILCHIMP.response_problem(_answer(listing, forged)) or "")
    assert "'instance' is a required property" in (MAILCHIMP.response_problem(
        _answer(listing, {"title": "Invalid Resource", "status": 400, "detail": "x", "type": "t"}, 400)) or "")
    email = "contract.put@example.com"
    put = _sent(env, "PUT", f"/3.0/{MEMBERS}/{subscriber_hash(email)}", content=b"")
    assert MAILCHIMP.request_problem(put.request) == f"PUT /3.0/{MEMBERS}/{subscriber_hash(email)}: set_list_member needs a body"
    refused = _sent(env, "PUT", f"/3.0/{MEMBERS}/{subscriber_hash(email)}",
                    json={"email_address": email, "merge_fields": {"NOPE": "x"}})
    assert refused.response.status_code == 400 and MAILCHIMP.response_problem(refused) is None
    assert json.loads(refused.response.content)["errors"][0]["field"] == "NOPE"
