"""The sandbox CRM behaves like HubSpot: auth, cursor pagination, search, updates, seed problems."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from integration_sandbox import Sandbox, SystemConfig
from integration_sandbox._fake import COUNTRIES
from integration_sandbox._store import Store
from integration_sandbox.crm import DEFAULT_PROPERTIES, build_app
from integration_sandbox.testing import crm_contact, crm_params


def _auth(sandbox: Sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.token('crm')}"}


def _all_pages(client: httpx.Client, path: str, limit: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params = crm_params(path.rsplit("/", 1)[-1], limit=limit, **({"after": after} if after else {}))
        body = client.get(path, params=params).raise_for_status().json()
        results += body["results"]
        if "paging" not in body:
            return results
        after = body["paging"]["next"]["after"]


@pytest.mark.server
def test_auth_is_required(sandbox: Sandbox) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": sandbox.token("crm")}):
        response = httpx.get(sandbox.url("crm") + "/crm/v3/objects/contacts", headers=headers)
        assert response.status_code == 401
        assert response.json()["category"] == "INVALID_AUTHENTICATION"
        assert response.json()["status"] == "error"


@pytest.mark.server
def test_cursor_pagination_reads_every_seeded_contact_once_in_id_order(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url("crm"), headers=_auth(sandbox)) as client:
        contacts = _all_pages(client, "/crm/v3/objects/contacts", limit=7)
    ids = [int(c["id"]) for c in contacts]
    assert ids[:50] == list(range(101, 151))  # later tests may add contacts after the seeded 50
    first = contacts[0]
    assert set(first["properties"]) >= {"email", "firstname", "lastname", "company", "country", "phone",
                                          "lastmodifieddate", "createdate"}
    assert first["properties"]["lastmodifieddate"].endswith("Z") and first["archived"] is False


@pytest.mark.server
def test_the_legacy_api_returns_only_the_properties_asked_for_else_hubspots_defaults(sandbox: Sandbox) -> None:
    """As HubSpot's v3 object API: its default properties unless `properties` names others, empty
    ones left out, a deal's contact only as an association; the same on lists, reads and searches."""
    with httpx.Client(base_url=sandbox.url("crm"), headers=_auth(sandbox)) as client:
        listed = client.get("/crm/v3/objects/contacts", params={"limit": 5}).json()["results"]
        one = client.get(f"/crm/v3/objects/contacts/{listed[0]['id']}").json()
        found = client.post("/crm/v3/objects/contacts/search", json={"limit": 5}).json()["results"]
        asked = client.get("/crm/v3/objects/contacts", params={"limit": 5, "properties": "phone,country"}).json()
        deals = client.get("/crm/v3/objects/deals", params={"limit": 5, "properties": "dealname,contact_id"}).json()
        linked = client.get("/crm/v3/objects/deals", params=crm_params("deals", limit=5)).json()
    for record in [*listed, one, *found]:
        assert set(record["properties"]) <= set(DEFAULT_PROPERTIES["contacts"]), record["properties"]
        assert "phone" not in record["properties"] and "hs_object_id" in record["properties"]
    assert all(set(c["properties"]) == {"phone", "country"} for c in asked["results"])
    assert all(set(d["properties"]) == {"dealname"} for d in deals["results"])  # contact_id is no property
    assert all(crm_contact(d) for d in linked["results"]) and all(crm_contact(d) is None for d in deals["results"])


@pytest.mark.server
def test_last_page_has_no_paging_and_link_is_followable(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url("crm"), headers=_auth(sandbox)) as client:
        page = client.get("/crm/v3/objects/companies", params={"limit": 2}).json()
        follow = client.get(page["paging"]["next"]["link"]).json()
        assert follow["results"][0]["id"] == "103"
        last = client.get("/crm/v3/objects/companies", params={"limit": 100}).json()
    assert "paging" not in last and len(last["results"]) == 5


@pytest.mark.server
@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"after": "not-a-cursor"}],
)
def test_bad_list_parameters_get_400(sandbox: Sandbox, params: dict[str, str]) -> None:
    response = httpx.get(sandbox.url("crm") + "/crm/v3/objects/contacts", params=params, headers=_auth(sandbox))
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


@pytest.mark.server
def test_incremental_search_by_lastmodifieddate_sees_updates(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url("crm"), headers=_auth(sandbox)) as client:

        def search_since(ms: int) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            after = None
            while True:
                body = client.post("/crm/v3/objects/contacts/search", json={
                    "properties": ["lastmodifieddate", "phone"], "filterGroups": [{"filters": [
                        {"propertyName": "lastmodifieddate", "operator": "GT", "value": str(ms)}]}],
                    "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                    "limit": 9, **({"after": after} if after else {})}).raise_for_status().json()
                out += body["results"]
                if "paging" not in body:
                    return out
                after = body["paging"]["next"]["after"]

        everything = search_since(0)
        stamps = [(c["properties"]["lastmodifieddate"], int(c["id"])) for c in everything]
        assert stamps == sorted(stamps) and len(everything) >= 50
        last_ms = max(_ms(c["properties"]["lastmodifieddate"]) for c in everything)
        assert search_since(last_ms) == []
        updated = client.patch("/crm/v3/objects/contacts/105", json={"properties": {"phone": "+49 1"}}).json()
        assert _ms(updated["updatedAt"]) > last_ms
        changed = search_since(last_ms)
    assert [c["id"] for c in changed] == ["105"] and changed[0]["properties"]["phone"] == "+49 1"


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _to_contact(contact_id: str) -> dict[str, Any]:
    """A create's association of a deal with a contact, as HubSpot's API takes it."""
    return {"to": {"id": contact_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}


@pytest.mark.server
@pytest.mark.parametrize("api", ["/crm/v3/objects", "/crm/objects/2026-03"])
def test_a_write_naming_a_property_the_object_lacks_is_refused_as_hubspot_does(sandbox: Sandbox, api: str) -> None:
    """HubSpot refuses a property that does not exist on the object (400, VALIDATION_ERROR, each
    such property a PROPERTY_DOESNT_EXIST); a deal's contact is an association, never a property."""
    with httpx.Client(base_url=sandbox.url("crm"), headers=_auth(sandbox)) as client:
        writes = {
            "contacts": client.post(f"{api}/contacts", json={"properties": {"email": "x.y@example.com", "shoe": "9"},
                                                             "associations": []}),
            "companies": client.patch(f"{api}/companies/101", json={"properties": {"shoe": "9"}}),
            "deals": client.post(f"{api}/deals", json={"properties": {"dealname": "D", "contact_id": "101"},
                                                       "associations": []}),
        }
        for type_, answer in writes.items():
            body = answer.json()
            assert (answer.status_code, body["status"], body["category"]) == (400, "error", "VALIDATION_ERROR"), type_
            prefix, invalid = body["message"].split(": ", 1)
            name = "contact_id" if type_ == "deals" else "shoe"
            assert (prefix, json.loads(invalid)) == ("Property values were not valid", [{
                "isValid": False, "message": f'Property "{name}" does not exist', "error": "PROPERTY_DOESNT_EXIST",
                "name": name}]), type_
        assert client.get(f"{api}/companies/101", params={"properties": "shoe"}).json()["properties"] == {}
        linked = client.post(f"{api}/deals", json={"properties": {"dealname": "D"},
                                                   "associations": [_to_contact("101")]})
        assert linked.status_code == 201 and "contact_id" not in linked.json()["properties"]
        deal = linked.json()["id"]
        read = client.get(f"{api}/deals/{deal}", params={
            "associations": "contacts", "propertiesWithHistory": "contact_id"}).json()
        assert crm_contact(read) == "101" and not read["propertiesWithHistory"].get("contact_id")
        by_id = {"propertyName": "hs_object_id", "operator": "EQ", "value": deal}
        by_link = {"propertyName": "contact_id", "operator": "EQ", "value": "101"}
        assert [client.post(f"{api}/deals/search", json={"filterGroups": [{"filters": filters}], "after": "0",
                                                         "properties": ["dealname"]}).json()["total"]
                for filters in ([by_id], [by_id, by_link])] == [1, 0]  # the link is no property to search by
        to_company = {**_to_contact("101"),
                      "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}
        refused = [client.post(f"{api}/deals", json={"properties": {}, "associations": [association]})
                   for association in (_to_contact("999999"), _to_contact("9" * 30), to_company)]
        assert [r.status_code for r in refused] == [400] * 3


@pytest.mark.server
def test_deal_stage_change_and_validation(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url("crm"), headers=_auth(sandbox)) as client:
        contact = client.post("/crm/v3/objects/contacts", json={"properties": {
            "email": "new.person@example.com", "firstname": "New", "lastname": "Person"}})
        assert contact.status_code == 201
        deal = client.post("/crm/v3/objects/deals", json={"properties": {"dealname": "Big one", "amount": "1200.50"},
                                                          "associations": [_to_contact(contact.json()["id"])]}).json()
        assert deal["properties"]["dealstage"] == "appointmentscheduled"
        won = client.patch(f"/crm/v3/objects/deals/{deal['id']}", json={"properties": {"dealstage": "closedwon"}})
        assert won.json()["properties"]["dealstage"] == "closedwon"
        read = client.get(f"/crm/v3/objects/deals/{deal['id']}", params=crm_params("deals")).json()
        assert read["properties"]["dealstage"] == "closedwon" and crm_contact(read) == contact.json()["id"]
        bad = [
            client.patch(f"/crm/v3/objects/deals/{deal['id']}", json={"properties": {"dealstage": "bogus"}}),
            client.post("/crm/v3/objects/contacts", json={"properties": {"email": "not-an-email"}}),
            client.post("/crm/v3/objects/contacts", content=b"{not json"),
            client.post("/crm/v3/objects/contacts", json={"properties": ["a"]}),
            client.post("/crm/v3/objects/contacts/search", json={"limit": 0}),
            client.post("/crm/v3/objects/contacts/search", json={"after": "x"}),
            client.post("/crm/v3/objects/contacts/search", json={"filterGroups": [{"filters": [
                {"propertyName": "lastmodifieddate", "operator": "GT", "value": "yesterday"}]}]}),
        ]
        assert [r.status_code for r in bad] == [400] * len(bad)
        missing = [client.get("/crm/v3/objects/deals/999999"), client.get("/crm/v3/objects/deals/abc"),
                   client.get("/crm/v3/objects/widgets"), client.patch("/crm/v3/objects/contacts/999999",
                                                                       json={"properties": {}})]
        assert [r.status_code for r in missing] == [404] * 4


@pytest.mark.server
def test_a_batch_update_is_checked_whole_before_any_input_is_written(sandbox: Sandbox) -> None:
    """HubSpot's batch update: an invalid input refuses the batch (400, naming it) and nothing of it
    is written; inputs not found are one error of a 207, the others written, each result with its
    input's objectWriteTraceId."""
    path = "/crm/objects/2026-03/contacts/batch/update"
    with httpx.Client(base_url=sandbox.url("crm"), headers=_auth(sandbox)) as client:
        a, b = (client.post("/crm/v3/objects/contacts", json={"properties": {"email": f"batch.{n}@example.com"}}
                            ).json()["id"] for n in "ab")
        refused = client.post(path, json={"inputs": [
            {"id": a, "properties": {"hs_lead_score": "5"}},
            {"id": b, "properties": {"email": "not an email"}}]})
        assert refused.status_code == 400 and refused.json()["category"] == "VALIDATION_ERROR"
        assert refused.json()["context"] == {"ids": [b]}
        assert "hs_lead_score" not in client.get(f"/crm/v3/objects/contacts/{a}").json()["properties"]
        mixed = client.post(path, json={"inputs": [
            {"id": a, "properties": {"hs_lead_score": "5"}, "objectWriteTraceId": "t1"},
            {"id": "nobody@example.org", "idProperty": "email", "properties": {"hs_lead_score": "1"}},
            {"id": "999999", "properties": {"hs_lead_score": "1"}},
            {"id": "batch.b@example.com", "idProperty": "email", "properties": {"hs_lead_score": "2"},
             "objectWriteTraceId": "t2"}]})
        assert mixed.status_code == 207
        body = mixed.json()
        assert sorted((r["id"], r["objectWriteTraceId"]) for r in body["results"]) == sorted([(a, "t1"), (b, "t2")])
        (error,) = body["errors"]
        assert body["numErrors"] == 2 and error["category"] == "OBJECT_NOT_FOUND"
        assert error["context"] == {"ids": ["nobody@example.org", "999999"]}
        twice = client.post(path, json={"inputs": [{"id": a, "properties": {}}, {"id": a, "properties": {}}]})
        assert twice.status_code == 400 and "Duplicate IDs" in twice.json()["message"]


def test_property_history_shows_seeded_and_api_edits_newest_first(tmp_path: Path) -> None:
    config = SystemConfig(system="crm", data_dir=tmp_path, seed=7, size=200)
    with TestClient(build_app(config)) as client:
        client.headers["Authorization"] = f"Bearer {config.token}"
        edited = json.loads(config.seed_report.read_text())["problems"]["updated_twice"]
        page = client.get("/crm/v3/objects/contacts", params={"limit": 50, "propertiesWithHistory": "phone,email"})
        shown = {c["id"]: c["propertiesWithHistory"] for c in page.json()["results"]}
        assert len(shown) == 50
        for cid, past in shown.items():
            assert len(past["phone"]) == (2 if cid in edited else 1)
            assert past["phone"][0]["value"] == client.get(f"/crm/v3/objects/contacts/{cid}",
                                                           params={"properties": "phone"}).json()["properties"]["phone"]
        cid = next(iter(shown))
        before = shown[cid]["email"]
        client.patch(f"/crm/v3/objects/contacts/{cid}", json={"properties": {"email": "moved@example.com"}})
        client.patch(f"/crm/v3/objects/contacts/{cid}", json={"properties": {"email": "moved@example.com"}})
        after = client.get(f"/crm/v3/objects/contacts/{cid}", params={"propertiesWithHistory": "email"}).json()
        assert [v["value"] for v in after["propertiesWithHistory"]["email"]] == [
            "moved@example.com", *(v["value"] for v in before)]  # an unchanged write adds nothing
        stamps = [v["timestamp"] for v in after["propertiesWithHistory"]["email"]]
        assert stamps == sorted(stamps, reverse=True)
        too_many = client.get("/crm/v3/objects/contacts", params={"limit": 51, "propertiesWithHistory": "email"})
        assert too_many.status_code == 400


def _report(tmp_path: Path, seed: int, size: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    config = SystemConfig(system="crm", data_dir=tmp_path, seed=seed, size=size)
    with TestClient(build_app(config)) as client:
        client.headers["Authorization"] = f"Bearer {config.token}"
        contacts = client.get("/crm/v3/objects/contacts", params=crm_params("contacts", limit=100)).json()["results"]
        contacts += client.get("/crm/v3/objects/contacts",
                               params=crm_params("contacts", limit=100, after="MjAw")).json()["results"]
    return json.loads(config.seed_report.read_text()), contacts


def test_seed_is_reproducible_and_the_report_names_each_problem(tmp_path: Path) -> None:
    report, contacts = _report(tmp_path / "a", seed=7, size=200)
    again, contacts_again = _report(tmp_path / "b", seed=7, size=200)
    other, _ = _report(tmp_path / "c", seed=8, size=200)
    assert report == again and contacts == contacts_again
    assert report["problems"] != other["problems"]
    by_id = {c["id"]: c["properties"] for c in contacts}
    assert len(by_id) == 200
    problems = report["problems"]
    assert {k: len(v) for k, v in problems.items()} == {
        "invalid_email": 8, "missing_email": 6, "duplicate": 8, "inconsistent_country": 10, "updated_twice": 6}
    for cid in problems["invalid_email"]:
        email = by_id[cid]["email"]
        assert email and not (email.count("@") == 1 and "." in email.split("@")[1] and " " not in email)
    assert all("email" not in by_id[cid] for cid in problems["missing_email"])  # an empty property is left out
    for dup, original in report["duplicate_of"].items():
        assert by_id[dup]["email"].lower() == by_id[original]["email"].lower() and dup != original
    assert all(by_id[cid]["country"] not in COUNTRIES for cid in problems["inconsistent_country"])
    flagged = {cid for ids in problems.values() for cid in ids}
    clean = [p for cid, p in by_id.items() if cid not in flagged]
    assert all(p["email"] and p["country"] in COUNTRIES for p in clean)
    assert len({p["email"] for p in clean}) == len(clean)


def test_without_a_receiver_no_events_pile_up(tmp_path: Path) -> None:
    config = SystemConfig(system="crm", data_dir=tmp_path, size=5)
    with TestClient(build_app(config)) as client:
        client.headers["Authorization"] = f"Bearer {config.token}"
        assert client.post("/crm/v3/objects/contacts", json={"properties": {"email": "a@example.com"}}).status_code == 201
    store = Store(config.database)
    assert store.due(now=float("inf")) == []
    store.close()
