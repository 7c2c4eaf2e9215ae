"""The JSON API connector against the sandbox warehouse and 3PL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from integration_project.errors import PermanentError
from tests.connectors.conftest import drain


def set_stock(sandbox, on_hand: dict[str, int]) -> tuple[str, dict[str, str]]:
    """Put these SKUs' stock in the warehouse directly; its stock URL and auth headers."""
    headers = {"Authorization": f"Bearer {sandbox.token('inventory')}"}
    url = sandbox.url("inventory") + "/v1/stock"
    for sku, count in on_hand.items():
        httpx.put(f"{url}/{sku}", json={"on_hand": count}, headers=headers).raise_for_status()
    return url, headers


def test_stock_extracts_to_the_end_and_resumes_with_only_changes(connector, sandbox):
    rest = connector("inventory")
    stock, cursor = drain(rest, "stock", None)
    assert len(stock) == sandbox.seed_report("inventory")["counts"]["stock"]
    assert cursor and cursor.startswith("t:")
    again, _ = drain(rest, "stock", cursor)
    assert len(again) < len(stock)  # only the boundary second is read again
    rest.upsert("stock", None, {"sku": "SKU-000002", "name": "Renamed Widget"})
    changed, _ = drain(rest, "stock", cursor)
    assert "SKU-000002" in {s["sku"] for s in changed}


def test_stock_items_upsert_by_sku_and_the_index_finds_them(connector):
    rest = connector("inventory")
    assert rest.upsert("stock", None, {"sku": "SKU-900001", "name": "New Gear"}) == "SKU-900001"
    assert rest.upsert("stock", "SKU-900001", {"sku": "SKU-900001", "name": "New Gear 2"}) == "SKU-900001"
    items = [s for s in drain(rest, "stock", None)[0] if s["sku"] == "SKU-900001"]
    assert [s["name"] for s in items] == ["New Gear 2"]
    assert rest.index("stock", "sku")["SKU-900001"] == "SKU-900001"


def test_an_order_moves_stock_once_however_often_it_is_sent(connector):
    rest = connector("inventory")
    before = {s["sku"]: s["on_hand"] for s in drain(rest, "stock", None)[0]}
    sku = next(k for k, v in sorted(before.items()) if v >= 10)
    order = {"reference": "7001", "lines": [{"sku": sku, "quantity": 3, "price": "1.00"}]}
    assert rest.upsert("stock/adjustments", None, order) == "7001"
    assert rest.upsert("stock/adjustments", None, order) == "7001"  # a retry after a lost answer
    assert rest.upsert("stock/adjustments", "7001", order) == "7001"  # a later version of the order
    after = {s["sku"]: s["on_hand"] for s in drain(rest, "stock", None)[0]}
    assert after[sku] == before[sku] - 3


def test_an_order_the_stock_cannot_serve_in_full_moves_nothing(connector):
    rest = connector("inventory")
    before = {s["sku"]: s["on_hand"] for s in drain(rest, "stock", None)[0]}
    lines = [{"sku": "SKU-000005", "quantity": 1}, {"sku": "SKU-000001", "quantity": 10_000}]
    with pytest.raises(PermanentError, match="insufficient stock of SKU-000001"):
        rest.upsert("stock/adjustments", None, {"reference": "7002", "lines": lines})
    assert {s["sku"]: s["on_hand"] for s in drain(rest, "stock", None)[0]} == before


def test_an_order_interrupted_between_its_lines_completes_without_a_second_move(connector, sandbox):
    rest = connector("inventory")
    url, stock = set_stock(sandbox, {"SKU-000002": 4, "SKU-000003": 50})
    lines = [{"sku": "SKU-000002", "quantity": 3}, {"sku": "SKU-000003", "quantity": 5}]
    # the first attempt moved the first line, then died: 1 left, so the line now looks short
    httpx.post(f"{url}/SKU-000002/adjustments", json={"delta": -3, "reason": "order", "reference": "7003"},
               headers={**stock, "Idempotency-Key": "order-7003-SKU-000002"}).raise_for_status()
    assert rest.upsert("stock/adjustments", None, {"reference": "7003", "lines": lines}) == "7003"
    after = {s["sku"]: s["on_hand"] for s in drain(rest, "stock", None)[0]}
    assert (after["SKU-000002"], after["SKU-000003"]) == (1, 45)


def test_shipments_extract_and_resume(connector, sandbox):
    rest = connector("fulfilment")
    shipments, cursor = drain(rest, "shipments", None)
    assert len(shipments) == sandbox.seed_report("fulfilment")["counts"]["shipments"]
    assert len(drain(rest, "shipments", cursor)[0]) < len(shipments)


def test_an_instruction_is_created_once_and_an_existing_one_adopted(connector, sandbox):
    rest = connector("fulfilment")
    order = {"order_id": "8001", "lines": [{"sku": "SKU-000003", "quantity": 2, "price": "9.90"}]}
    created = rest.upsert("shipments", None, order)
    assert rest.upsert("shipments", None, order) == created  # 409 names the existing one: adopted
    assert rest.upsert("shipments", created, order) == created
    assert rest.index("shipments", "order_id")["8001"] == created
    held = [s for s in drain(rest, "shipments", None)[0] if s["order_id"] == "8001"]
    assert [(s["id"], s["lines"]) for s in held] == [(created, [{"sku": "SKU-000003", "quantity": 2}])]


def test_credentials_come_from_the_declared_variables(connector, monkeypatch):
    monkeypatch.setenv("FULFILMENT_CLIENT_SECRET", "wrong-secret")
    with pytest.raises(PermanentError, match=r"token request to /oauth/token: HTTP 401 \(invalid_client\)") as err:
        drain(connector("fulfilment"), "shipments", None)
    assert "wrong-secret" not in str(err.value)


def test_oauth2_token_is_reused_and_fetched_again_when_revoked(connector, sandbox):
    rest = connector("fulfilment")
    drain(rest, "shipments", None)
    first = rest.http.auth._token
    assert first and drain(rest, "shipments", None)[0] and rest.http.auth._token == first  # one token, reused
    admin = {"Authorization": f"Bearer {sandbox.token('fulfilment')}"}
    assert httpx.delete(sandbox.url("fulfilment") + "/_sandbox/tokens", headers=admin).status_code == 204
    old = httpx.get(sandbox.url("fulfilment") + "/v1/shipments", headers={"Authorization": f"Bearer {first}"})
    assert old.status_code == 401
    assert drain(rest, "shipments", None)[0]  # 401, a new token, the same request again
    assert rest.http.auth._token not in (None, first)


def test_concurrent_orders_sharing_skus_never_half_move_an_order(connector, sandbox):
    """Orders sent at once from eight threads: each moves all of its lines or none, and the stock
    serves exactly as many orders as it holds (the check and the moves of one SKU never interleave)."""
    rest = connector("inventory")
    set_stock(sandbox, {"SKU-000007": 10, "SKU-000008": 6})
    lines = [{"sku": "SKU-000007", "quantity": 1}, {"sku": "SKU-000008", "quantity": 1}]

    def send(reference: int) -> bool:
        try:
            rest.upsert("stock/adjustments", None, {"reference": str(reference), "lines": lines})
            return True
        except PermanentError:
            return False

    with ThreadPoolExecutor(8) as pool:
        served = sum(pool.map(send, range(7100, 7124)))
    after = {s["sku"]: s["on_hand"] for s in drain(rest, "stock", None)[0]}
    assert served == 6
    assert (after["SKU-000007"], after["SKU-000008"]) == (4, 0)
