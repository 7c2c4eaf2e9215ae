"""Each sandbox system on loopback keeps its vendor's habits: auth, pagination to the end, errors."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import time

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from integration_sandbox import Sandbox, SystemConfig
from integration_sandbox._systems import build_app
from integration_sandbox.support import build_app as support_app

from sandbox_clients import LIST_PATHS, SHOP_GRAPHQL, client, read_all, shop_graphql

# What each vendor answers without credentials.
UNAUTHORIZED = {
    "crm": lambda b: b["category"] == "INVALID_AUTHENTICATION",
    "support": lambda b: b == {"error": "Couldn't authenticate you"},
    "shop": lambda b: b["errors"].startswith("[API] Invalid API key"),
    "inventory": lambda b: b["error"]["code"] == "unauthorized",
    "fulfilment": lambda b: b["error"]["code"] == "unauthorized",
    "marketing": lambda b: b["title"] == "API Key Invalid" and b["status"] == 401,
    "billing": lambda b: "error" in b,
    "projects": lambda b: b["error"] == "unauthorized",
}
ID_KEY = {"crm": "id", "support": "id", "shop": "id", "inventory": "sku", "fulfilment": "id", "marketing": "email_address",
          "projects": "id"}


@pytest.mark.server
@pytest.mark.parametrize("system", sorted(UNAUTHORIZED))
def test_requests_without_or_with_wrong_credentials_get_401(sandbox: Sandbox, system: str) -> None:
    url = sandbox.url(system) + LIST_PATHS[system]
    for headers in ({}, {"Authorization": "Bearer sk_wrong"}):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401
        assert UNAUTHORIZED[system](response.json())


@pytest.mark.server
@pytest.mark.parametrize("system", sorted(ID_KEY))
def test_pagination_reaches_the_end_with_every_seeded_record_once(sandbox: Sandbox, system: str) -> None:
    report = sandbox.seed_report(system)
    with client(sandbox, system) as http:
        records = read_all(http, system)
    keys = [str(r[ID_KEY[system]]) for r in records]
    assert len(keys) == len(set(keys)), "a record was served twice"
    main = {"crm": "contacts", "support": "users", "shop": "orders", "inventory": "stock",
            "fulfilment": "shipments", "marketing": "members", "projects": "projects"}[system]
    assert len(records) >= report["counts"][main]


@pytest.mark.server
@pytest.mark.parametrize("system", sorted(ID_KEY))
def test_seeded_data_reads_back_exactly_over_loopback(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory,
                                                      system: str) -> None:
    # The same seed built again, in-process and untouched, must serve identical records. Other tests
    # only add records (which sort last) except the CRM test that updates contact 105.
    config = SystemConfig(system=system, data_dir=tmp_path_factory.mktemp("fresh"), seed=42, size=50)
    with TestClient(build_app(config)) as fresh_client:
        fresh_client.headers.update(client(sandbox, system).headers)
        fresh_client.auth = client(sandbox, system).auth
        fresh = read_all(fresh_client, system)
    with client(sandbox, system) as http:
        served = read_all(http, system)[: len(fresh)]
    if system == "crm":
        fresh, served = ([r for r in records if r["id"] != "105"] for records in (fresh, served))
    assert served == fresh and len(fresh) >= 10


def test_support_rate_limit_answers_429_with_retry_after(tmp_path_factory: pytest.TempPathFactory) -> None:
    config = SystemConfig(system="support", data_dir=tmp_path_factory.mktemp("rl"), size=5,
                          options={"rate_limit_per_minute": 3})
    with TestClient(support_app(config)) as tc:
        tc.auth = ("agent@example.com/token", config.token)
        answers = [tc.get("/api/v2/tickets.json") for _ in range(5)]
        health = tc.get("/_sandbox/health")
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert 1 <= int(answers[3].headers["retry-after"]) <= 60
    assert answers[2].headers["x-rate-limit-remaining"] == "0" and answers[0].headers["x-rate-limit"] == "3"
    assert health.status_code == 200  # the admin face is not rate limited


@pytest.mark.server
def test_support_incremental_cursor_export_reaches_end_of_stream(sandbox: Sandbox) -> None:
    with client(sandbox, "support") as http:
        body = http.get("/api/v2/incremental/tickets/cursor.json", params={"start_time": 0, "per_page": 20}).json()
        tickets = body["tickets"]
        while not body["end_of_stream"]:
            body = http.get(body["after_url"]).json()
            tickets += body["tickets"]
        assert len({t["id"] for t in tickets}) == len(tickets) >= 50
        assert http.get("/api/v2/incremental/tickets/cursor.json").status_code == 400
        assert http.get("/api/v2/incremental/tickets/cursor.json", params={"cursor": "%%%"}).status_code == 400


@pytest.mark.server
def test_shop_graphql_habits(sandbox: Sandbox) -> None:
    """Cursor pages (`pageInfo`), `updated_at` search, UTC times, and Shopify's refusals: an unknown
    version, a page over 250, a bad cursor, a bad date in a search."""
    query = ("query($n: Int!, $after: String, $q: String) { orders(first: $n, after: $after, query: $q) "
             "{ nodes { id createdAt } pageInfo { hasNextPage endCursor } } }")
    with client(sandbox, "shop") as http:
        first = shop_graphql(http, query, n=5)["orders"]
        assert first["pageInfo"]["hasNextPage"] and len(first["nodes"]) == 5
        second = shop_graphql(http, query, n=5, after=first["pageInfo"]["endCursor"])["orders"]
        assert not {o["id"] for o in first["nodes"]} & {o["id"] for o in second["nodes"]}
        assert first["nodes"][0]["createdAt"].endswith("Z")  # DateTime in UTC
        later = shop_graphql(http, query, n=5, q="updated_at:>='2030-01-01T00:00:00Z'")["orders"]
        assert later == {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}

        def refused(**variables: object) -> str:
            body = http.post(SHOP_GRAPHQL, json={"query": query, "variables": variables}).json()
            return body["errors"][0]["message"]

        assert "between 0 and 250" in refused(n=251)
        assert "Invalid cursor" in refused(n=5, after="bm90IGEgY3Vyc29y")
        assert "Invalid date" in refused(n=5, q="updated_at:>=soon")
        assert http.post("/admin/api/1999-01/graphql.json", json={"query": "{ shop { name } }"}).status_code == 404


@pytest.mark.server
def test_marketing_hashes_batches_and_activity(sandbox: Sandbox) -> None:
    email = "New.Member@Example.com"
    digest = hashlib.md5(email.lower().encode()).hexdigest()
    with client(sandbox, "marketing") as http:
        put = http.put(f"/3.0/lists/a1b2c3d4e5/members/{digest}", json={"email_address": email, "status_if_new": "subscribed"})
        assert put.status_code == 200 and put.json()["id"] == digest
        assert http.put("/3.0/lists/a1b2c3d4e5/members/" + "0" * 32, json={"email_address": email}).status_code == 400
        batch = http.post("/3.0/lists/a1b2c3d4e5", json={"members": [
            {"email_address": "batch.one@example.com", "status": "subscribed"},
            {"email_address": "not-an-email", "status": "subscribed"},
            {"email_address": email, "status": "subscribed"}]}).json()
        assert (batch["total_created"], batch["error_count"]) == (1, 2)
        assert {e["error_code"] for e in batch["errors"]} == {"ERROR_GENERIC", "ERROR_CONTACT_EXISTS"}
        campaigns = http.get("/3.0/campaigns").json()
        assert campaigns["total_items"] == 5
        total = sum(http.get(f"/3.0/reports/{c['id']}/email-activity", params={"count": 1000}).json()["total_items"]
                    for c in campaigns["campaigns"])
        assert total == 50
        assert http.get("/3.0/lists/wrong/members").status_code == 404
        assert http.get("/3.0/lists/a1b2c3d4e5/members", params={"count": 1001}).status_code == 400


@pytest.mark.server
def test_inventory_adjustments_honour_idempotency_keys(sandbox: Sandbox) -> None:
    with client(sandbox, "inventory") as http:
        created = http.put("/v1/stock/SKU-900001", json={"on_hand": 10, "name": "Test item"})
        assert created.status_code == 201 and created.json()["available"] == 10
        key = {"Idempotency-Key": "order-1-line-1"}
        once = http.post("/v1/stock/SKU-900001/adjustments", json={"delta": -3, "reason": "order 1"}, headers=key)
        twice = http.post("/v1/stock/SKU-900001/adjustments", json={"delta": -3, "reason": "order 1"}, headers=key)
        assert once.json()["on_hand"] == twice.json()["on_hand"] == 7
        assert twice.headers["idempotent-replayed"] == "true"
        too_many = http.post("/v1/stock/SKU-900001/adjustments", json={"delta": -8, "reason": "order 2"})
        assert too_many.status_code == 409
        assert http.get("/v1/stock/not-a-sku").status_code == 404
        assert http.put("/v1/stock/SKU-900001", json={"on_hand": -1}).status_code == 400


@pytest.mark.server
def test_fulfilment_one_shipment_per_order_and_it_moves_on(sandbox: Sandbox) -> None:
    with client(sandbox, "fulfilment") as http:
        body = {"order_id": "T-1", "lines": [{"sku": "SKU-000001", "quantity": 2}]}
        created = http.post("/v1/shipments", json=body)
        assert created.status_code == 201 and created.json()["status"] == "received"
        again = http.post("/v1/shipments", json=body)
        assert again.status_code == 409 and again.json()["shipment_id"] == created.json()["id"]
        assert http.post("/v1/shipments", json={"order_id": "T-2", "lines": []}).status_code == 400
        shipment_id = created.json()["id"]
        status = created.json()["status"]
        for _ in range(100):
            status = http.get(f"/v1/shipments/{shipment_id}").json()["status"]
            if status == "delivered":
                break
            time.sleep(0.1)
        assert status == "delivered"
        assert http.get(f"/v1/shipments/{shipment_id}").json()["tracking_number"]
        assert http.post(f"/v1/shipments/{shipment_id}/cancel").status_code == 409


@pytest.mark.server
def test_legacy_erp_old_style_database_and_latin1_csv_export(sandbox: Sandbox) -> None:
    report = sandbox.seed_report("legacy_erp")
    engine = sa.create_engine(sandbox.erp_database_url())
    with engine.connect() as conn:
        columns = [c["name"] for c in sa.inspect(conn).get_columns("ITM_MST")]
        rows = conn.execute(sa.text('SELECT "ITM_NO", "UNIT_PRC", "STAT_CD", "ITM_TXT", "CHG_TS" FROM "ITM_MST"')).all()
    engine.dispose()
    assert all(c.isupper() for c in columns) and len(rows) == report["counts"]["ITM_MST"]
    by_no = {r[0]: r for r in rows}
    assert all(by_no[n][1] is None for n in report["problems"]["missing_price"])
    assert all(by_no[n][2].islower() for n in report["problems"]["lowercase_status"])
    assert all(by_no[n][3].endswith(" ") for n in report["problems"]["padded_text"])
    with client(sandbox, "legacy_erp") as http:
        exported = http.post("/_sandbox/export").json()
        assert http.get("/_sandbox/info").json()["drop_folder"] == str(sandbox.erp_drop_folder())
    raw = open(exported["file"], "rb").read()
    text = raw.decode("latin-1")
    lines = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert lines[0] == ["ITM_NO", "ITM_TXT", "GRP_CD", "UNIT_PRC", "CUR_CD", "UOM_CD", "STAT_CD", "CHG_TS"]
    assert len(lines) - 1 == exported["rows"] == len(rows)
    priced = [line for line in lines[1:] if line[3]]
    assert all("," in line[3] and "." not in line[3] for line in priced)  # decimal comma
    assert all(len(line[7]) == 19 and line[7][2] == "." for line in lines[1:])  # DD.MM.YYYY HH:MM:SS, local time


@pytest.mark.server
@pytest.mark.parametrize(
    ("system", "method", "path", "body"),
    [
        ("crm", "POST", "/crm/v3/objects/deals", b"[]"),
        ("crm", "PATCH", "/crm/v3/objects/contacts/101", b'{"properties": {"email": 5}}'),
        ("support", "POST", "/api/v2/tickets.json", b'{"ticket": {"status": "exploded"}}'),
        ("support", "PUT", "/api/v2/tickets/abc.json", b"{}"),
        ("support", "GET", "/api/v2/tickets.json?page=0", b""),
        ("shop", "POST", "/admin/api/2026-10/graphql.json", b'{"query": 5}'),
        ("shop", "POST", "/admin/api/2026-10/graphql.json", b'{"query": "{ shop { name } }", "variables": []}'),
        ("shop", "POST", "/admin/api/2026-10/graphql.json", b"\xff\xfe"),
        ("shop", "POST", "/admin/oauth/access_token", b'{"client_id": "sandbox", "client_secret": "no"}'),
        ("shop", "PUT", "/_sandbox/throttle", b'{"restoreRate": -1}'),
        ("shop", "PUT", "/_sandbox/api-version", b'{"served": "2027-02"}'),
        ("inventory", "GET", "/v1/stock?cursor=bad", b""),
        ("inventory", "POST", "/v1/stock/SKU-000001/adjustments", b'{"delta": "many"}'),
        ("fulfilment", "GET", "/v1/shipments?updated_since=yesterday", b""),
        ("marketing", "POST", "/3.0/lists/a1b2c3d4e5", b'{"members": "all"}'),
        ("marketing", "GET", "/3.0/reports/nope/email-activity", b""),
        ("legacy_erp", "PUT", "/_sandbox/faults", b'{"error_rate": 2}'),
        ("crm", "POST", "/crm/v3/objects/contacts/search",
         b'{"filterGroups": [{"filters": [{"propertyName": "x\')", "operator": "EQ", "value": "1"}]}]}'),
        ("crm", "POST", "/crm/v3/objects/contacts/search",
         b'{"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "' + b"9" * 30 + b'"}]}]}'),
        ("crm", "GET", "/crm/v3/objects/contacts?after=" + base64.b64encode(b"9" * 30).decode(), b""),
        ("support", "GET", "/api/v2/incremental/users/cursor.json?cursor=" + base64.b64encode(b"1:" + b"9" * 30).decode(), b""),
        ("inventory", "GET", "/v1/stock?cursor=" + base64.b64encode(b"[1, 1e400]").decode(), b""),
        ("fulfilment", "GET", "/v1/shipments?cursor=" + base64.b64encode(b"[" + b"9" * 30 + b", 1]").decode(), b""),
    ],
)
def test_bad_input_gets_a_4xx_never_a_500(sandbox: Sandbox, system: str, method: str, path: str, body: bytes) -> None:
    with client(sandbox, system) as http:
        response = http.request(method, path, content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
