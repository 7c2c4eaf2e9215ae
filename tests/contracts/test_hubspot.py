"""The CRM connector's requests and the sandbox CRM's answers against HubSpot's published OpenAPI
documents for the pinned date-based version (tests/contracts/specs/hubspot)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import httpx
import pytest

from integration_project.connectors import HttpConnector, Upsert
from integration_project.errors import PermanentError
from tests.connectors.conftest import drain
from tests.contracts.openapi import Contract
from tests.contracts.recording import Exchange, Recording

SPECS = Path(__file__).parent / "specs" / "hubspot"
HUBSPOT = Contract(sorted(SPECS.glob("*.json")))
if not HUBSPOT.documents:  # the folder may be removed for HubSpot's licence (see its README)
    pytestmark = pytest.mark.skipif(os.environ.get("CI") != "true", reason=f"no HubSpot specs in {SPECS}: make specs")


def exercise(hubspot: HttpConnector) -> None:
    """Every operation the connector offers: scans, incremental reads, history, index, updates, and
    the archived records (one archived here first, as a user deleting it in HubSpot would)."""
    email = f"contract.{uuid.uuid4().hex[:8]}@example.com"
    made = hubspot.http.request("POST", "/crm/objects/2026-03/contacts",
                                json={"properties": {"email": email}, "associations": []})
    hubspot.http.request("DELETE", f"/crm/objects/2026-03/contacts/{made.body['id']}", empty_ok=True)
    assert made.body["id"] in {r["id"] for r in hubspot.deleted("contacts")}
    for resource in sorted(hubspot.extracts):
        records, cursor = drain(hubspot, resource, None)
        assert records, resource
        drain(hubspot, resource, cursor)
        list(hubspot.deleted(resource))
    list(hubspot.versions("contacts", ["properties.phone", "properties.email"]))
    index = hubspot.index("contacts", "properties.email")
    (email, crm_id), (other, other_id), (third, _) = sorted(index.items())[:3]
    hubspot.upsert("contacts", None, {"properties": {"email": email, "hs_lead_score": "3"}})
    hubspot.upsert("contacts", crm_id, {"properties": {"email": email, "hs_lead_score": "4"}})
    # batches of several inputs: by id and by email, one not found (207 with its error), and one
    # invalid input refusing its whole batch (400), the rest sent again
    mixed = hubspot.upsert_many("contacts", [
        Upsert(crm_id, {"properties": {"hs_lead_score": "5"}}), Upsert(None, {"properties": {"email": other}}),
        Upsert(None, {"properties": {"email": f"nobody.{uuid.uuid4().hex[:8]}@example.org"}}),
        Upsert(other_id, {"properties": {"email": "not an email"}}), Upsert(None, {"properties": {"email": third}})])
    assert [isinstance(o, PermanentError) for o in mixed] == [False, False, True, True, False]


@pytest.fixture
def exchanges(recorded) -> list[Exchange]:
    hubspot, recording = recorded("crm")
    exercise(hubspot)
    assert recording.exchanges
    return recording.exchanges


def test_every_request_the_crm_connector_sends_is_in_hubspots_spec(exchanges):
    problems = [p for e in exchanges if (p := HUBSPOT.request_problem(e.request))]
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_every_answer_the_sandbox_crm_gives_is_in_hubspots_spec(exchanges):
    problems = [p for e in exchanges if (p := HUBSPOT.response_problem(e))]
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_the_batches_checked_hold_several_inputs_and_each_kind_of_answer(exchanges):
    """The spec checks above cover multi-input batch updates and each answer they get: 200, 207
    with per-input errors, and the 400 refusing a batch."""
    updates = [e for e in exchanges if e.request.url.path.endswith("/contacts/batch/update")]
    assert max(len(json.loads(e.request.content)["inputs"]) for e in updates) == 5
    assert {e.response.status_code for e in updates} == {200, 207, 400}
    (mixed,) = [e.response.json() for e in updates if e.response.status_code == 207]
    assert mixed["numErrors"] == 1 and len(mixed["results"]) == 3
    (refusal,) = [e for e in updates if e.response.status_code == 400]  # its body is checked, not passed as bytes
    bare = httpx.Response(400, json={"message": "refused"}, request=refusal.request)
    assert "'category' is a required property" in (HUBSPOT.response_problem(Exchange(refusal.request, bare)) or "")


def _changed(request: httpx.Request, **body: object) -> httpx.Request:
    sent = json.loads(request.content)
    return httpx.Request(request.method, request.url, headers={k: v for k, v in request.headers.items()
                                                              if k.lower() != "content-length"},
                         json={**sent, **body})


def test_the_check_fails_when_a_request_or_an_answer_is_changed_against_the_spec(env, recorded):
    """A search the spec accepts, then the same search changed against it, and its answer too."""
    recording = Recording()
    with httpx.Client(base_url=env["CRM_BASE_URL"], transport=recording,
                      headers={"Authorization": f"Bearer {env['CRM_TOKEN']}"}) as client:
        client.post("/crm/objects/2026-03/contacts/search",
                    json={"filterGroups": [], "sorts": ["hs_object_id"], "limit": 2, "after": "0",
                          "properties": ["email"]})
    search = recording.exchanges[-1]
    assert HUBSPOT.request_problem(search.request) is None
    assert "is not of type 'string'" in (HUBSPOT.request_problem(
        _changed(search.request, sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}])) or "")
    without = json.loads(search.request.content)
    del without["properties"]
    assert "'properties' is a required property" in (HUBSPOT.request_problem(
        httpx.Request("POST", search.request.url, headers={"Authorization": "Bearer t"}, json=without)) or "")
    assert "no such operation" in (HUBSPOT.request_problem(
        httpx.Request("GET", search.request.url.copy_with(path="/crm/v3/objects/contacts"))) or "")
    assert "credentials" in (HUBSPOT.request_problem(
        httpx.Request("POST", search.request.url, json=json.loads(search.request.content))) or "")
    assert search.response.status_code == 200 and HUBSPOT.response_problem(search) is None
    answer = search.response.json()
    wrong = httpx.Response(200, json={**answer, "total": str(answer["total"])}, request=search.request)
    assert "is not of type 'integer'" in (HUBSPOT.response_problem(Exchange(search.request, wrong)) or "")
    missing = httpx.Response(200, json={"total": 0}, request=search.request)
    assert "'results' is a required property" in (HUBSPOT.response_problem(Exchange(search.request, missing)) or "")


def _searches(exchanges: list[Exchange], resource: str) -> list[dict]:
    return [json.loads(e.request.content) for e in exchanges
            if e.request.url.path.endswith("/search") and f"/{resource}/" in e.request.url.path]


MAPPED = {"email", "firstname", "lastname", "company", "country", "phone"}  # the example's customer mapping


def test_list_and_search_ask_for_the_properties_the_mappings_read(recorded):
    """HubSpot returns only its default properties unless `properties` names others."""
    hubspot, recording = recorded("crm")
    _, cursor = drain(hubspot, "contacts", None)
    drain(hubspot, "contacts", cursor)
    lists = [e.request for e in recording.exchanges if e.request.method == "GET"]
    assert lists and all(MAPPED <= set(r.url.params.get("properties", "").split(",")) for r in lists)
    searches = _searches(recording.exchanges, "contacts")
    assert searches and all(MAPPED <= set(s.get("properties", [])) for s in searches)


def test_deals_and_companies_are_read_by_hs_lastmodifieddate(recorded):
    hubspot, recording = recorded("crm")
    for resource in ("deals", "companies"):
        _, cursor = drain(hubspot, resource, None)
        drain(hubspot, resource, cursor)
        list(hubspot.deleted(resource))
    names = {f["propertyName"] for resource in ("0-3", "deals", "companies")
             for s in _searches(recording.exchanges, resource) for g in s["filterGroups"] for f in g["filters"]}
    assert names == {"hs_lastmodifieddate"}


def test_the_sandbox_refuses_a_property_the_object_lacks_with_an_answer_in_hubspots_spec(env):
    """A deal's contact is an association: a `contact_id` property is refused as HubSpot refuses a
    property that does not exist (400, VALIDATION_ERROR, PROPERTY_DOESNT_EXIST), in its Error shape."""
    recording = Recording()
    with httpx.Client(base_url=env["CRM_BASE_URL"], transport=recording,
                      headers={"Authorization": f"Bearer {env['CRM_TOKEN']}"}) as client:
        client.post("/crm/objects/2026-03/0-3", json={"properties": {"dealname": "D", "contact_id": "101"},
                                                      "associations": []})
    (create,) = recording.exchanges
    assert HUBSPOT.request_problem(create.request) is None  # the spec cannot tell which properties exist
    body = create.response.json()
    assert create.response.status_code == 400 and body["category"] == "VALIDATION_ERROR"
    assert '"error":"PROPERTY_DOESNT_EXIST","name":"contact_id"' in body["message"]
    assert HUBSPOT.response_problem(create) is None
    untyped = httpx.Response(400, json={**body, "correlationId": 5}, request=create.request)
    assert "is not of type 'string'" in (HUBSPOT.response_problem(Exchange(create.request, untyped)) or "")
