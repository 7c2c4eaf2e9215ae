"""The HubSpot connector against the sandbox CRM: contact updates (the lead score), a lag-safe
incremental cursor, deals linked to contacts by association."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from integration_project.errors import PermanentError, StopRun
from integration_project.model.mapping import get_path
from integration_sandbox.testing import crm_contact, crm_records
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


def _crm(sandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.url("crm"), headers={"Authorization": f"Bearer {sandbox.token('crm')}"})


def indexed(crm: httpx.Client, contact: str, phone: str, timeout: float = 60.0) -> None:
    """Wait until the sandbox's search index shows the contact's new phone."""
    deadline = time.monotonic() + timeout
    body = {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": contact}]}],
            "sorts": ["hs_object_id"], "limit": 1, "after": "0", "properties": ["phone"]}
    while time.monotonic() < deadline:
        answer = crm.post("/crm/objects/2026-03/contacts/search", json=body)
        found = answer.json()["results"] if answer.status_code == 200 else []  # 429: HubSpot's 5 searches a second
        if found and found[0]["properties"].get("phone") == phone:
            return
        time.sleep(0.5)  # polling the index (well under the search limit): the condition is the record being searchable
    raise AssertionError(f"contact {contact} not searchable within {timeout} s")


def test_a_change_indexed_late_is_read_by_a_later_run(connector, sandbox):
    """A contact changed first but indexed last is not skipped by the cursor of a change made after it."""
    hubspot = connector("crm")
    contacts, cursor = drain(hubspot, "contacts", None)
    late, early = (c["id"] for c in contacts[5:7])
    with _crm(sandbox) as crm:
        try:
            crm.put("/_sandbox/search-delay", json={"ms": 10_000}).raise_for_status()
            crm.patch(f"/crm/v3/objects/contacts/{late}", json={"properties": {"phone": "+1 555 0100"}}).raise_for_status()
        finally:
            crm.put("/_sandbox/search-delay", json={"ms": 0}).raise_for_status()
        crm.patch(f"/crm/v3/objects/contacts/{early}", json={"properties": {"phone": "+1 555 0101"}}).raise_for_status()
        first, cursor = drain(hubspot, "contacts", cursor)
        assert early in {c["id"] for c in first} and late not in {c["id"] for c in first}  # the index lags
        indexed(crm, late, "+1 555 0100")
    second, _ = drain(hubspot, "contacts", cursor)
    assert [c["properties"]["phone"] for c in second if c["id"] == late] == ["+1 555 0100"]


def test_deals_name_their_contact_by_association(connector, sandbox):
    """HubSpot links a deal to its contact by an association, read with the list and with each search page."""
    hubspot = connector("crm")
    deals, cursor = drain(hubspot, "deals", None)
    with _crm(sandbox) as crm:
        linked = {d["id"]: crm_contact(d) for d in crm_records(crm, "deals")}
        crm.patch(f"/crm/v3/objects/deals/{deals[0]['id']}", json={"properties": {"amount": "99.00"}}).raise_for_status()
    changed, _ = drain(hubspot, "deals", cursor)
    assert deals and deals[0]["id"] in {d["id"] for d in changed}
    for read in (deals, changed):
        assert {d["id"]: get_path(d, "associations.contacts.results.0.id") for d in read} == {
            d["id"]: linked[d["id"]] for d in read}
        assert all("contact_id" not in d["properties"] for d in read)


def test_the_rolling_rate_limit_is_waited_out_never_hit(landscape, env, tmp_path):
    """The sandbox CRM limits its dated API as HubSpot does (here 5 requests in any 2 s); a scan of
    many pages reads every contact, pausing when HubSpot's remaining count says 0, and is never
    answered 429; a client that does not wait gets HubSpot's 429."""
    from integration_project.connectors.hubspot import HubSpot
    from integration_sandbox.testing import free_port_sandbox

    options = {"crm": {"rate_limit_per_10s": 5, "rate_limit_window_seconds": 2}}
    with free_port_sandbox(tmp_path, ["crm"], seed=3, size=700, options=options) as sb:
        api = landscape.systems["crm"].api.model_copy(update={"base_url": sb.url("crm"), "base_url_env": None})
        hubspot = HubSpot(api)
        try:
            contacts, _ = drain(hubspot, "contacts", None)
            assert hubspot.retries() == 0  # no 429 was answered, so none was retried
        finally:
            hubspot.close()
        assert len(contacts) == sb.seed_report("crm")["counts"]["contacts"] > 5 * 100  # more pages than the limit
        with _crm(sb) as crm:
            answers = [crm.get("/crm/objects/2026-03/contacts", params={"limit": 1}) for _ in range(6)]
        refused = answers[-1]
        assert [a.status_code for a in answers].count(429) >= 1 and refused.status_code == 429
        assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING" and "retry-after" not in refused.headers
        assert refused.headers["x-hubspot-ratelimit-remaining"] == "0"
        assert answers[0].headers["x-hubspot-ratelimit-interval-milliseconds"] == "2000"


def _hubspot(landscape, sb):
    from integration_project.connectors.hubspot import HubSpot

    return HubSpot(landscape.systems["crm"].api.model_copy(update={"base_url": sb.url("crm"), "base_url_env": None}))


def test_searches_are_paced_under_hubspots_five_a_second_never_refused(landscape, env, tmp_path):
    """HubSpot's search endpoints take 5 requests a second and say nothing in their headers; three
    incremental reads at once (many search pages, association reads besides) are paced together
    and get every record without a single 429."""
    from integration_sandbox.testing import free_port_sandbox

    with free_port_sandbox(tmp_path, ["crm"], seed=5, size=1200) as sb:
        counts = sb.seed_report("crm")["counts"]
        readers = {resource: _hubspot(landscape, sb) for resource in ("contacts", "deals", "companies")}
        readers["deals"].select("deals", ["associations.contacts.results.0.id"])
        try:
            with ThreadPoolExecutor(len(readers)) as pool:
                read = dict(zip(readers, pool.map(lambda r: drain(readers[r], r, "0")[0], readers)))
            assert {r: len({x["id"] for x in records}) for r, records in read.items()} == counts
            assert sum(h.retries() for h in readers.values()) == 0  # no 429 answered, none retried
        finally:
            for h in readers.values():
                h.close()


def test_a_search_refused_for_its_second_is_waited_out_not_lost_nor_hammered(landscape, env, tmp_path):
    """Another app of the account searching too leaves fewer than 5 a second (here 2): a search
    answered HubSpot's SECONDLY 429 waits the second out and is sent again, one 429 per refusal."""
    from integration_sandbox.testing import free_port_sandbox

    with free_port_sandbox(tmp_path, ["crm"], seed=5, size=1200,
                           options={"crm": {"rate_limit_search_per_second": 2}}) as sb:
        hubspot = _hubspot(landscape, sb)
        try:
            pages = list(hubspot.pages("contacts", "0"))
            assert len({r["id"] for p in pages for r in p.records}) == sb.seed_report("crm")["counts"]["contacts"]
            assert 1 <= hubspot.retries() <= len(pages) // 2 + 1  # 2 pass, the 3rd waits a second: no hammering
        finally:
            hubspot.close()
        with _crm(sb) as crm:
            body = {"filterGroups": [], "sorts": ["hs_object_id"], "limit": 1, "after": "0", "properties": ["email"]}
            answers = [crm.post("/crm/objects/2026-03/contacts/search", json=body) for _ in range(3)]
        assert answers[-1].status_code == 429 and answers[-1].json()["policyName"] == "SECONDLY"
        assert not [h for a in answers for h in a.headers if h.lower().startswith("x-hubspot-ratelimit")]


def test_a_spent_daily_quota_stops_the_read_at_once_with_a_clear_error(landscape, env, tmp_path):
    """HubSpot's daily quota resets at midnight in the account's time zone: its 429 (DAILY) stops
    the step with a message saying so, after no retry; the answers before it count it down."""
    from integration_sandbox.testing import free_port_sandbox

    with free_port_sandbox(tmp_path, ["crm"], seed=5, size=700, options={"crm": {"rate_limit_daily": 3}}) as sb:
        hubspot = _hubspot(landscape, sb)
        try:
            started = time.monotonic()
            with pytest.raises(StopRun, match=r"daily request limit .*\(3 a day\).* midnight"):
                drain(hubspot, "contacts", None)
            assert hubspot.retries() == 0 and time.monotonic() - started < 10
        finally:
            hubspot.close()
        with _crm(sb) as crm:
            refused = crm.get("/crm/objects/2026-03/contacts", params={"limit": 1})
        assert refused.status_code == 429 and refused.json()["policyName"] == "DAILY"
        assert refused.headers["x-hubspot-ratelimit-daily"] == "3"
        assert refused.headers["x-hubspot-ratelimit-daily-remaining"] == "0"
