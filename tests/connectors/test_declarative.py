"""The declarative connector against a small real vendor on loopback: every paginator, the record
selector, incremental reads, parent/child, per-resource overrides, API keys in a header or the
query, JSON and form writes, conflicts adopted, lookups before a resend, and the error rules."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integration_project.connectors import Declared
from integration_project.connectors.http import ALLOW_PRIVATE_ENV
from integration_project.errors import PermanentError, StopRun
from integration_project.model import Api
from tests.connectors.conftest import drain
from tests.e2e.conftest import serving

RECORDS = [{"id": str(i), "name": f"r{i}", "updated_at": f"2026-01-0{i}T00:00:00Z"} for i in range(1, 8)]


class Vendor:
    """A vendor whose API speaks every listing style; it records what it was sent."""

    def __init__(self) -> None:
        self.seen: list[Request] = []
        self.bodies: list[Any] = []
        self.tickets: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(100)
        self.refusing = 0  # answer 403 to the next n calls
        self.lose_next_create = False

    def app(self) -> Starlette:
        async def note(request: Request) -> None:
            self.seen.append(request)
            if request.method in ("POST", "PUT"):
                form = "form" in request.headers.get("content-type", "")
                self.bodies.append(dict(parse_qsl((await request.body()).decode())) if form else await request.json())

        def since(request: Request) -> list[dict[str, Any]]:
            start = request.query_params.get("since", "")
            return [r for r in RECORDS if r["updated_at"] > start]

        async def json_link(request: Request) -> Response:
            await note(request)
            page, rows = int(request.query_params.get("page", 1)), since(request)
            nxt = str(request.url.include_query_params(page=page + 1)) if page * 3 < len(rows) else None
            return JSONResponse({"items": rows[(page - 1) * 3:page * 3], "links": {"next": nxt}})

        async def header_link(request: Request) -> Response:
            await note(request)
            page = int(request.query_params.get("page", 1))
            headers = {"Link": f'<{request.url.include_query_params(page=page + 1)}>; rel="next"'} if page < 3 else {}
            return JSONResponse(RECORDS[(page - 1) * 3:page * 3], headers=headers)

        async def offset(request: Request) -> Response:
            await note(request)
            start, limit = int(request.query_params["offset"]), int(request.query_params["limit"])
            return JSONResponse({"results": RECORDS[start:start + limit], "total": len(RECORDS)})

        async def numbered(request: Request) -> Response:
            await note(request)
            page, size = int(request.query_params["p"]), int(request.query_params["per_page"])
            return JSONResponse({"data": RECORDS[page * size:(page + 1) * size]})

        async def lines(request: Request) -> Response:
            await note(request)
            oid = request.path_params["id"]
            return JSONResponse({"data": [{"sku": f"S-{oid}-{n}"} for n in range(int(oid) % 3)]})

        async def tickets(request: Request) -> Response:
            await note(request)
            if self.refusing:
                self.refusing -= 1
                return JSONResponse({"error": "forbidden"}, 403)
            if request.method == "GET":
                return JSONResponse({"tickets": list(self.tickets.values())},
                                    headers={"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1"})
            body = self.bodies[-1]
            for t in self.tickets.values():
                if t["ref"] == body["ref"]:
                    return JSONResponse({"error": "duplicate", "existing": {"id": t["id"]}}, 409)
            ticket = {**body, "id": str(next(self.ids))}
            self.tickets[ticket["id"]] = ticket
            if self.lose_next_create:
                self.lose_next_create = False
                return Response(status_code=502)  # acted, answer lost
            return JSONResponse(ticket, 201)

        async def ticket(request: Request) -> Response:
            await note(request)
            self.tickets[request.path_params["id"]].update(self.bodies[-1])
            return JSONResponse(self.tickets[request.path_params["id"]])

        async def spent(request: Request) -> Response:
            await note(request)
            return JSONResponse([], headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2"})

        async def refused(request: Request) -> Response:
            await note(request)
            return JSONResponse({"error": "bad token"}, 401)

        return Starlette(routes=[
            Route("/json_link", json_link), Route("/header_link", header_link), Route("/offset", offset),
            Route("/numbered", numbered), Route("/orders/{id}/lines", lines),
            Route("/tickets", tickets, methods=["GET", "POST"]), Route("/tickets/{id}", ticket, methods=["PUT"]),
            Route("/refused", refused), Route("/spent", spent)])


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Vendor, str]]:
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    monkeypatch.setenv("VENDOR_KEY", "k-123")
    v = Vendor()
    with serving(v.app()) as url:
        yield v, url


def declared(url: str, **fields: Any) -> Declared:
    return Declared(Api.model_validate({"connector": "rest", "base_url": url, "version": "1",
                                        "auth": {"type": "api_key", "token_env": "VENDOR_KEY", "header": "X-Api-Key"},
                                        **fields}))


def test_json_link_pages_with_incremental_resume(vendor):
    v, url = vendor
    api = declared(url, resources={"things": {
        "path": "/json_link", "data_selector": "items", "paginator": {"type": "json_link", "next_url_path": "links.next"},
        "incremental": {"start_param": "since", "cursor_path": "updated_at", "initial_value": "2026-01-02"}}})
    pages = list(api.pages("things", None))
    assert [len(p.records) for p in pages] == [3, 3]  # r1 is before the initial value
    assert pages[0].cursor.startswith("c:") and pages[-1].cursor == "t:2026-01-07T00:00:00Z"
    assert v.seen[0].query_params["since"] == "2026-01-02" and v.seen[0].headers["X-Api-Key"] == "k-123"
    assert drain(api, "things", pages[-1].cursor)[0] == []
    resumed = drain(api, "things", pages[0].cursor)[0]  # a run that stopped after the first page
    assert [r["id"] for r in resumed] == ["5", "6", "7"]


def test_header_link_follows_rel_next(vendor):
    _, url = vendor
    api = declared(url, defaults={"paginator": {"type": "header_link"}}, resources={"things": {"path": "/header_link"}})
    assert [r["id"] for r in drain(api, "things", None)[0]] == [r["id"] for r in RECORDS]


def test_offset_stops_at_the_total_and_page_number_on_a_short_page(vendor):
    v, url = vendor
    api = declared(url, resources={
        "by_offset": {"path": "/offset", "data_selector": "results",
                      "paginator": {"type": "offset", "limit": 3, "total_path": "total", "stop_on_short_page": False}},
        "by_page": {"path": "/numbered", "data_selector": "data",
                    "paginator": {"type": "page_number", "page_param": "p", "base_page": 0, "limit": 3,
                                  "limit_param": "per_page"}}})
    assert len(drain(api, "by_offset", None)[0]) == 7
    assert [r.query_params["offset"] for r in v.seen] == ["0", "3", "6"]  # the total ends it: no empty page
    v.seen.clear()
    assert len(drain(api, "by_page", None)[0]) == 7
    assert [r.query_params["p"] for r in v.seen] == ["0", "1", "2"]  # the short page is the last


def test_a_child_resource_is_read_per_parent_record(vendor):
    _, url = vendor
    api = declared(url, resources={
        "orders": {"path": "/header_link", "paginator": {"type": "header_link"}},
        "order_lines": {"path": "/orders/{order_id}/lines", "data_selector": "data",
                        "parent": {"resource": "orders", "resolve": {"order_id": "id"}, "include_from_parent": ["id"]}}})
    lines = drain(api, "order_lines", None)[0]
    assert {(line["sku"], line["_orders_id"]) for line in lines} == {
        (f"S-{i}-{n}", str(i)) for i in range(1, 8) for n in range(i % 3)}


TICKETS = {"path": "/tickets", "data_selector": "tickets", "write": {
    "create": {"path": "/tickets", "body": {"ref": "{ref}", "subject": "{title}", "meta.source": "hub"}},
    "update": {"method": "PUT", "path": "/tickets/{external_id}", "encoding": "form",
               "body": {"subject": "{title}"}},
    "lookup": {"id_path": "id"}}}


def test_writes_fill_templates_json_and_form_and_update_by_the_vendor_id(vendor):
    v, url = vendor
    api = declared(url, resources={"tickets": TICKETS})
    created = api.upsert("tickets", None, {"ref": "T-1", "title": "Printer on fire"})
    assert v.bodies[-1] == {"ref": "T-1", "subject": "Printer on fire", "meta": {"source": "hub"}}
    assert api.upsert("tickets", created, {"ref": "T-1", "title": "Printer out"}) == created
    assert v.bodies[-1] == {"subject": "Printer out"}  # form-encoded, as declared
    assert "form" in v.seen[-1].headers["content-type"]
    assert api.index("tickets", "ref") == {"T-1": created}


def test_a_conflict_adopts_the_existing_id(vendor):
    v, url = vendor
    resource = {**TICKETS, "write": {**TICKETS["write"], "conflict": {"status": 409, "id_path": "existing.id"}}}
    api = declared(url, resources={"tickets": resource})
    first = api.upsert("tickets", None, {"ref": "T-2", "title": "A"})
    assert api.upsert("tickets", None, {"ref": "T-2", "title": "A"}) == first
    assert len(v.tickets) == 1


def test_a_create_whose_answer_was_lost_is_looked_up_not_resent(vendor):
    from integration_project.connectors import Ours

    v, url = vendor
    api = declared(url, resources={"tickets": TICKETS})
    v.lose_next_create = True
    found = api.upsert("tickets", None, {"ref": "T-3", "title": "Lost"}, Ours("ref", "T-3"))
    assert list(v.tickets) == [found] and v.tickets[found]["subject"] == "Lost"
    assert [r.method for r in v.seen] == ["POST", "GET", "PUT"]  # looked up, then updated, never re-created


def test_a_401_stops_the_run_and_repeated_403s_do_too(vendor):
    v, url = vendor
    api = declared(url, resources={"refused": {"path": "/refused"}, "tickets": TICKETS},
                   errors={"stop_when_repeated": [403], "repeats": 3})
    with pytest.raises(StopRun, match="HTTP 401"):
        drain(api, "refused", None)
    v.refusing = 2
    for _ in range(2):  # a 403 refuses one record: dead-lettered, the run goes on
        with pytest.raises(PermanentError, match="HTTP 403"):
            api.upsert("tickets", None, {"ref": "T-4", "title": "x"})
    assert api.index("tickets", "ref") == {}  # an answer between: the count starts again
    v.refusing = 3
    for _ in range(2):
        with pytest.raises(PermanentError):
            api.upsert("tickets", None, {"ref": "T-4", "title": "x"})
    with pytest.raises(StopRun, match="403 on 3 calls in a row"):
        api.upsert("tickets", None, {"ref": "T-4", "title": "x"})


def test_declared_statuses_and_an_api_key_in_the_query(vendor):
    v, url = vendor
    api = Declared(Api.model_validate({
        "connector": "rest", "base_url": url, "version": "1", "errors": {"permanent": [502], "stop": []},
        "auth": {"type": "api_key", "token_env": "VENDOR_KEY", "location": "query", "param": "key"},
        "resources": {"tickets": TICKETS}}))
    v.lose_next_create = True  # a 502, declared permanent: sent once, refused
    with pytest.raises(PermanentError, match="HTTP 502"):
        api.upsert("tickets", None, {"ref": "T-5", "title": "x"})
    assert [r.method for r in v.seen] == ["POST"] and v.seen[0].query_params["key"] == "k-123"
    assert "X-Api-Key" not in v.seen[0].headers


def test_a_spent_rate_limit_waits_for_its_reset(vendor, monkeypatch):
    v, url = vendor
    api = declared(url, resources={"tickets": TICKETS, "spent": {"path": "/spent"}}, errors={"rate_limit": {}})
    slept: list[float] = []
    monkeypatch.setattr("integration_project.connectors.http.time.sleep", slept.append)
    api.index("tickets", "ref")
    drain(api, "spent", None)
    assert slept == []  # 5 left, then 0 left: nothing to wait for yet
    api.index("tickets", "ref")
    assert len(slept) == 1 and 1.5 < slept[0] <= 2.0  # the next request waits for the reset
