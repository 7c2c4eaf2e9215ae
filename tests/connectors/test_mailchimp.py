"""The Mailchimp connector against the sandbox marketing tool."""

from __future__ import annotations

import time

import httpx
import pytest

from integration_project.connectors import connect
from integration_project.model import Api
from integration_project.connectors.mailchimp import PAGE, subscriber_hash
from integration_project.errors import PermanentError
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


def test_the_data_centre_comes_from_the_api_key(env, landscape, monkeypatch):
    """`https://{dc}.api.mailchimp.com` declared: the key `...-us21` makes it us21 (no override set)."""
    monkeypatch.delenv("MARKETING_BASE_URL")
    monkeypatch.setenv("MARKETING_API_KEY", "0123456789abcdef0123456789abcdef-us21")
    mailchimp = connect(landscape.systems["marketing"])
    try:
        assert str(mailchimp.http.base.join(mailchimp.prefix)) == "https://us21.api.mailchimp.com/3.0"
    finally:
        mailchimp.close()
    monkeypatch.setenv("MARKETING_API_KEY", "0123456789abcdef")
    with pytest.raises(PermanentError, match="MARKETING_API_KEY: a Mailchimp API key ends in -<data centre>"):
        connect(landscape.systems["marketing"])


def test_the_sandbox_override_still_wins(connector, env):
    assert str(connector("marketing").http.base).rstrip("/") == env["MARKETING_BASE_URL"].rstrip("/")


def test_the_sandbox_refuses_unknown_merge_fields_as_mailchimp_does(env):
    email = "nobody.unknown@example.com"
    with httpx.Client(base_url=env["MARKETING_BASE_URL"], auth=("any", env["MARKETING_API_KEY"])) as client:
        answer = client.put(f"/3.0/{MEMBERS}/{subscriber_hash(email)}",
                            json={"email_address": email, "status_if_new": "pending", "merge_fields": {"NOPE": "x"}})
        fields = client.get("/3.0/lists/a1b2c3d4e5/merge-fields", params={"count": 1000})
    assert answer.status_code == 400
    body = answer.json()
    assert (body["title"], body["status"], body["detail"]) == ("Invalid Resource", 400, "Your merge fields were invalid.")
    assert body["errors"] == [{"field": "NOPE", "message": "Merge field \"NOPE\" does not exist in this audience"}]
    assert fields.status_code == 200 and "NOPE" not in {f["tag"] for f in fields.json()["merge_fields"]}


def test_missing_merge_fields_are_created_before_the_first_load(connector, env):
    mailchimp = connector("marketing")
    email = "merge.fields.first@example.com"
    member = mailchimp.upsert(MEMBERS, None, {"email_address": email, "merge_fields": {"SEGMENT7": "gold"}})
    with httpx.Client(base_url=env["MARKETING_BASE_URL"], auth=("any", env["MARKETING_API_KEY"])) as client:
        fields = {f["tag"]: f for f in client.get("/3.0/lists/a1b2c3d4e5/merge-fields",
                                                  params={"count": 1000}).json()["merge_fields"]}
        stored = client.get(f"/3.0/{MEMBERS}/{member}").json()
    assert fields["SEGMENT7"]["type"] == "text" and stored["merge_fields"]["SEGMENT7"] == "gold"


def test_a_changed_email_updates_the_member_instead_of_making_a_second_one(connector):
    mailchimp = connector("marketing")
    old, new = "ada.before@example.com", "Ada.After@Example.com"
    first = mailchimp.upsert(MEMBERS, None, {"email_address": old, "merge_fields": {"CRM_ID": "7007"}})
    again = mailchimp.upsert(MEMBERS, first, {"email_address": new, "merge_fields": {"CRM_ID": "7007"}})
    assert again == subscriber_hash(new) != first
    mine = [m for m in drain(mailchimp, MEMBERS, None)[0] if m["merge_fields"].get("CRM_ID") == "7007"]
    assert [(m["id"], m["email_address"]) for m in mine] == [(subscriber_hash(new), new)]


def test_a_member_page_slower_than_the_old_fixed_timeout_is_waited_for(landscape, env, tmp_path, monkeypatch):
    """Mailchimp's large member pages are slow. Time runs 4x fast here: the audience answers 600 ms
    per 100 members, and each timeout is a quarter of its own. The connector's 500-member page
    (3 s) takes longer than the old fixed 10 s timeout (2.5 s) and is read, every member, without a
    retry, within its own (Mailchimp.timeout's 120 s: 30 s); the old connector, 1,000 members a page
    against the fixed timeout, gives up on its first page."""
    from integration_project.connectors import http
    from integration_project.connectors.mailchimp import Mailchimp
    from integration_project.errors import TransientError
    from integration_sandbox.testing import free_port_sandbox

    scale, old_timeout = 0.25, http.TIMEOUT.read
    with free_port_sandbox(tmp_path, ["marketing"], seed=3, size=600,
                           options={"marketing": {"page_delay_ms": 600}}) as sb:
        api = landscape.systems["marketing"].api.model_copy(update={"base_url": sb.url("marketing"), "base_url_env": None})

        def read(timeout: float) -> tuple[list[dict], float, int]:
            monkeypatch.setattr(Mailchimp, "timeout", httpx.Timeout(timeout * scale, connect=5.0))
            mailchimp = Mailchimp(api)
            try:
                pages, started = mailchimp.pages(MEMBERS, None), time.monotonic()
                first = next(pages).records
                slowest = time.monotonic() - started
                return first + [m for p in pages for m in p.records], slowest, mailchimp.retries()
            finally:
                mailchimp.close()

        assert PAGE * 0.6 / 100 > old_timeout * scale  # the connector's own page outlasts the old timeout
        members, slowest, retries = read(Mailchimp.timeout.read)
        assert slowest > old_timeout * scale and retries == 0
        assert len({m["id"] for m in members[:PAGE]}) == PAGE and len({m["id"] for m in members}) == 600
        monkeypatch.setattr("integration_project.connectors.mailchimp.PAGE", 1000)
        monkeypatch.setattr(http, "ATTEMPTS", 1)  # the old timeout fails each attempt alike: one shows it
        with pytest.raises(TransientError, match="ReadTimeout"):
            read(old_timeout)

def test_at_most_ten_requests_are_in_flight_as_mailchimp_allows_from_every_thread(landscape, env, tmp_path):
    """Mailchimp allows 10 simultaneous connections per user and answers the 11th 429 (no
    Retry-After, no rate-limit headers), as the sandbox does. The connector holds its requests to
    10 in flight, whatever the threads: 12 slow pages at once are all read with no 429 met; a
    declaration allowing 20 meets Mailchimp's 429."""
    from concurrent.futures import ThreadPoolExecutor

    from integration_project.connectors.mailchimp import Mailchimp
    from integration_sandbox.testing import free_port_sandbox

    with free_port_sandbox(tmp_path, ["marketing"], seed=3, size=100,
                           options={"marketing": {"page_delay_ms": 1500}}) as sb:
        url = f"{sb.url('marketing')}/3.0/{MEMBERS}"

        def page(http: httpx.Client) -> httpx.Response:
            return http.get(url, params={"count": 100})

        with httpx.Client(auth=("any", sb.token("marketing")), timeout=30) as http, ThreadPoolExecutor(11) as pool:
            answers = list(pool.map(lambda _: page(http), range(11)))
        refused = [a for a in answers if a.status_code == 429]
        assert sorted(a.status_code for a in answers) == [200] * 10 + [429]
        assert refused[0].json()["title"] == "Too Many Requests" and "10 simultaneous" in refused[0].json()["detail"]
        assert "retry-after" not in refused[0].headers

        api = landscape.systems["marketing"].api.model_copy(update={"base_url": sb.url("marketing"), "base_url_env": None})

        def read_at_once(declared: Api) -> tuple[list[int], int]:
            mailchimp = Mailchimp(declared)
            try:
                with ThreadPoolExecutor(12) as pool:
                    replies = list(pool.map(lambda _: mailchimp.http.request("GET", f"/3.0/{MEMBERS}",
                                                                             params={"count": 100}), range(12)))
                return [len(r.body["members"]) for r in replies], mailchimp.retries()
            finally:
                mailchimp.close()

        sizes, retries = read_at_once(api)
        assert sizes == [100] * 12 and retries == 0
        sizes, retries = read_at_once(api.model_copy(update={"max_in_flight": 20}))
        assert sizes == [100] * 12 and retries > 0  # the 429s met, waited out
