"""The support connector's requests and the sandbox desk's answers against Zendesk's contract.

Zendesk's OpenAPI document is not public in a repository or package (specs/zendesk/README.md), so
the answers are checked against the record schemas airbyte-source-zendesk-support recorded from the
real API (kept in specs/zendesk/schemas; they list every field Zendesk sends, so the check forbids
others), and the requests against the forms Zendesk's API reference documents for the operations
called, written down here: the credentials' form, each operation's parameters and page sizes.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from integration_project.connectors import HttpConnector
from tests.connectors.conftest import drain
from tests.contracts.recording import Exchange, Recording

SCHEMAS = Path(__file__).parent / "specs" / "zendesk" / "schemas"
PREFIX = "/api/v2"

# Zendesk's documented query parameters per operation called, with their limits.
# https://developer.zendesk.com/api-reference/ticketing/users/users/ (list: cursor `page[size]` <= 100,
# `page[after]`; show_many: `ids`, at most 100), .../ticket-management/incremental_exports/ (cursor
# export: `start_time` or `cursor`, `per_page` <= 1000), .../custom-objects/custom_object_records/.
OPERATIONS: dict[tuple[str, str], dict[str, int | None]] = {
    ("GET", "/users.json"): {"page[size]": 100, "page[after]": None},
    ("GET", "/users/show_many.json"): {"ids": 100},
    ("GET", "/incremental/tickets/cursor.json"): {"start_time": None, "cursor": None, "per_page": 1000},
    ("GET", "/incremental/users/cursor.json"): {"start_time": None, "cursor": None, "per_page": 1000},
    ("POST", "/users/create_or_update.json"): {},
    ("DELETE", "/users/{id}.json"): {},  # .../users/users/#delete-user
    ("GET", "/custom_objects/order/records"): {"page[size]": 100, "page[after]": None},
    ("PATCH", "/custom_objects/order/records"): {"external_id": None},
}


def _schema(name: str) -> Draft7Validator:
    """A record schema with unknown fields forbidden, its shared parts resolved beside it (the
    top-level tickets.json only points at shared/tickets.json)."""
    shared = SCHEMAS / "shared"
    root = json.loads(((shared if (shared / f"{name}.json").exists() else SCHEMAS) / f"{name}.json").read_text())
    parts = [(f"{shared.as_uri()}/{f.name}", Resource.from_contents(json.loads(f.read_text()), DRAFT7))
             for f in shared.glob("*.json")]
    strict = {**root, "additionalProperties": False, "$id": f"{shared.as_uri()}/{name}.json"}
    return Draft7Validator(strict, registry=Registry().with_resources(parts))


RECORDS = {"users": _schema("users"), "tickets": _schema("tickets")}


def request_problem(request: httpx.Request) -> str | None:
    """Why Zendesk would refuse this request (operation, parameters, credentials' form), or None."""
    where = f"{request.method} {request.url.path}"
    path = request.url.path.removeprefix(PREFIX)
    allowed = next((params for (method, template), params in OPERATIONS.items() if method == request.method
                    and re.fullmatch(template.replace("{id}", r"\d+"), path)), None)
    if not request.url.path.startswith(PREFIX) or allowed is None:
        return f"{where}: not an operation the connector may call"
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Basic":
        user, _, token = base64.b64decode(value).decode().partition(":")
        if not (user.endswith("/token") and "@" in user and token):
            return f"{where}: Basic credentials are not {{email}}/token:{{api_token}}"
    elif scheme != "Bearer":  # an OAuth access token: its form cannot be told from an API token's
        return f"{where}: no credentials"
    for name, value in request.url.params.multi_items():
        if name not in allowed:
            return f"{where}: parameter {name!r} is not one Zendesk documents here"
        limit = allowed[name]
        if limit is not None and (len(value.split(",")) if name == "ids" else int(value)) > limit:
            return f"{where}: {name}={value} is more than Zendesk allows ({limit})"
    return None


def response_problem(exchange: Exchange) -> str | None:
    """Why Zendesk would not answer so: each user or ticket record against its recorded schema."""
    where = f"{exchange.request.method} {exchange.request.url.path} -> {exchange.response.status_code}"
    body = exchange.response.json()
    problems = []
    for kind, validator in RECORDS.items():
        one = {"users": "user", "tickets": "ticket"}[kind]
        records = body.get(kind) or ([body[one]] if isinstance(body.get(one), dict) else [])
        for record in records:
            problems += [f"{where}: {kind[:-1]} {record.get('id')}: {e.message}" for e in validator.iter_errors(record)]
    return "; ".join(problems) or None


def exercise(zendesk: HttpConnector) -> None:
    """Every operation the connector offers: both exports, requesters, both indexes, upserts and a delete."""
    for resource in sorted(zendesk.extracts):
        records, cursor = drain(zendesk, resource, None)
        assert records, resource
        drain(zendesk, resource, cursor)
    user = zendesk.upsert("users", None, {"name": "Contract Case", "email": "contract@example.com",
                                          "external_id": "zd-c1"})
    zendesk.upsert("orders", None, {"name": "Order zd-o1", "external_id": "zd-o1",
                                    "custom_object_fields": {"status": "paid"}})
    assert "zd-c1" in zendesk.index("users", "external_id")
    assert "zd-o1" in zendesk.index("orders", "external_id")
    zendesk.remove("users", user, "delete")
    zendesk.remove("users", user, "delete")  # deleted already: done
    assert "zd-c1" not in zendesk.index("users", "external_id")


@pytest.fixture
def exchanges(recorded) -> list[Exchange]:
    zendesk, recording = recorded("support")
    exercise(zendesk)
    assert recording.exchanges
    return recording.exchanges


def test_every_request_the_support_connector_sends_is_in_zendesks_contract(exchanges):
    problems = [p for e in exchanges if (p := request_problem(e.request))]
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_every_record_the_sandbox_desk_serves_has_zendesks_shape(exchanges):
    served = [e for e in exchanges if e.response.status_code < 300]
    assert {e.request.url.path.removeprefix(PREFIX) for e in served} >= {"/users.json", "/users/show_many.json"}
    problems = [p for e in served if (p := response_problem(e))]
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_the_requester_lookup_reads_only_the_pages_requesters(recorded, monkeypatch):
    """Not every user again through the export (10 requests a minute at Zendesk) but show_many."""
    monkeypatch.setattr("integration_project.connectors.zendesk.PAGE", 9)
    zendesk, recording = recorded("support")
    tickets = drain(zendesk, "tickets", None)[0]
    paths = [e.request.url.path.removeprefix(PREFIX) for e in recording.exchanges]
    assert "/incremental/users/cursor.json" not in paths
    lookups = [e.request.url.params["ids"].split(",") for e in recording.exchanges
               if e.request.url.path.endswith("/users/show_many.json")]
    assert lookups and all(len(ids) <= 100 for ids in lookups)
    asked = {int(i) for ids in lookups for i in ids}
    assert asked == {t["requester_id"] for t in tickets if t.get("requester_id")}


def test_the_check_fails_when_a_request_or_an_answer_is_changed_against_the_contract(env):
    """A list the contract accepts, then changed against it (offset paging, Bearer with the API
    token, a page too large), and its answer too (an unknown field, a wrong type)."""
    recording = Recording()
    with httpx.Client(base_url=env["SUPPORT_BASE_URL"], transport=recording,
                      auth=("agent@example.com/token", env["SUPPORT_TOKEN"])) as client:
        client.get("/api/v2/users.json", params={"page[size]": 5})
    listed = recording.exchanges[-1]
    assert listed.response.status_code == 200
    assert request_problem(listed.request) is None and response_problem(listed) is None

    def changed(params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> httpx.Request:
        return httpx.Request("GET", listed.request.url.copy_with(params=params) if params is not None
                             else listed.request.url, headers=dict(listed.request.headers) if headers is None else headers)

    assert "'page' is not one" in (request_problem(changed({"page": 2, "per_page": 100})) or "")
    assert "more than Zendesk allows" in (request_problem(changed({"page[size]": 1000})) or "")
    basic_no_token = {"Authorization": "Basic " + base64.b64encode(f"agent@example.com:{env['SUPPORT_TOKEN']}".encode()).decode()}
    assert "{email}/token" in (request_problem(changed(headers=basic_no_token)) or "")
    assert "no credentials" in (request_problem(changed(headers={})) or "")
    assert "not an operation" in (request_problem(httpx.Request("GET", listed.request.url.copy_with(path="/api/v2/search.json"))) or "")
    user = listed.response.json()["users"][0]
    for mutated, complaint in (({**user, "organization": "Acme"}, "Additional properties"),
                               ({**user, "id": str(user["id"])}, "is not of type")):
        answer = httpx.Response(200, json={**listed.response.json(), "users": [mutated]}, request=listed.request)
        assert complaint in (response_problem(Exchange(listed.request, answer)) or "")


def test_the_desk_refuses_what_zendesk_refuses(env):
    """Bearer with an API token (401), offset pages past the cap (400, Zendesk's error shape)."""
    base, token = env["SUPPORT_BASE_URL"], env["SUPPORT_TOKEN"]
    bearer = httpx.get(f"{base}/api/v2/users.json", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 401 and bearer.json() == {"error": "Couldn't authenticate you"}
    no_token_suffix = httpx.get(f"{base}/api/v2/users.json", auth=("agent@example.com", token))
    assert no_token_suffix.status_code == 401
    basic = ("agent@example.com/token", token)
    past = httpx.get(f"{base}/api/v2/users.json", params={"page": 2, "per_page": 20}, auth=basic)
    assert past.status_code == 400 and set(past.json()) == {"error", "description"}
    assert httpx.get(f"{base}/api/v2/users.json", params={"page": 1, "per_page": 20}, auth=basic).status_code == 200
    too_many = ",".join(str(i) for i in range(1, 102))
    assert httpx.get(f"{base}/api/v2/users/show_many.json", params={"ids": too_many}, auth=basic).status_code == 400
