"""The warehouse's check-then-move of one SKU stays whole across processes that share the hub's
PostgreSQL (as two Celery workers on two machines do), against the real sandbox warehouse."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from integration_project.connectors.http import ALLOW_PRIVATE_ENV
from integration_project.connectors.locks import KeyLocks, lock_key
from integration_sandbox import Faults, Sandbox
from integration_sandbox.testing import free_port_sandbox
from tests.webhooks.conftest import postgres_schema_url

PAIRS = 8
# Each process opens the warehouse connector, says it is ready, waits for "go" on stdin, then sends
# one order per pair of SKUs (one unit of each), four at once; it prints how many were served.
ORDERS = """
import sys
from concurrent.futures import ThreadPoolExecutor
from integration_project.connectors import Declared
from integration_project.errors import PermanentError
from integration_project.model import load_landscape
# the warehouse as declared (definitions/systems/inventory/defs.yaml), at the sandbox's URL
rest = Declared(load_landscape("definitions").systems["inventory"].api.model_copy(update={"base_url": sys.argv[1]}))

def send(pair):
    lines = [{"sku": f"SKU-1000{pair:02d}", "quantity": 1}, {"sku": f"SKU-2000{pair:02d}", "quantity": 1}]
    try:
        rest.upsert("stock/adjustments", None, {"reference": f"{sys.argv[2]}-{pair}", "lines": lines})
        return True
    except PermanentError:
        return False

print("ready", flush=True)
sys.stdin.readline()
with ThreadPoolExecutor(4) as pool:
    print(sum(pool.map(send, range(int(sys.argv[3])))), flush=True)
"""


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Sandbox]:
    """The sandbox warehouse alone, each request 20 ms slow (wide windows for an interleaving)."""
    with free_port_sandbox(tmp_path / "sandbox", ["inventory"], seed=5, size=20,
                           faults={"inventory": Faults(latency_ms=20)}) as sb:
        yield sb


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL hub store URL (skipped without PostgreSQL, failed on CI)."""
    yield from postgres_schema_url()


def test_orders_from_three_processes_sharing_skus_never_half_move(warehouse: Sandbox, postgres_url: str,
                                                                  tmp_path: Path):
    """Three processes of four threads each send at once one order per pair of SKUs, one unit of
    each, where the first SKU holds 2 units and the second 1: one order per pair is served, and
    the others move nothing (a check and the moves of another process's order never interleave;
    without a lock across processes, two pass the check and the second moves only its first SKU)."""
    url, token = warehouse.url("inventory"), warehouse.token("inventory")
    headers = {"Authorization": f"Bearer {token}"}
    stock = {**{f"SKU-1000{p:02d}": 2 for p in range(PAIRS)}, **{f"SKU-2000{p:02d}": 1 for p in range(PAIRS)}}
    for sku, count in stock.items():
        httpx.put(f"{url}/v1/stock/{sku}", json={"on_hand": count}, headers=headers).raise_for_status()
    env = {"PATH": "/usr/bin:/bin", "INVENTORY_API_KEY": token, "INTEGRATIONS_DATABASE_URL": postgres_url,
           ALLOW_PRIVATE_ENV: "1"}  # the sandbox warehouse is on loopback
    senders = [subprocess.Popen([sys.executable, "-c", ORDERS, url, f"p{i}", str(PAIRS)], text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env={**env, "INTEGRATIONS_DATA_DIR": str(tmp_path / str(i))})
               for i in range(3)]
    try:
        assert [s.stdout.readline().strip() for s in senders] == ["ready"] * 3  # type: ignore[union-attr]
        for s in senders:  # all at once
            s.stdin.write("go\n")  # type: ignore[union-attr]
            s.stdin.flush()  # type: ignore[union-attr]
        served = [int(s.stdout.readline()) for s in senders]  # type: ignore[union-attr]
        assert [s.wait(timeout=60) for s in senders] == [0, 0, 0]
    finally:
        for s in senders:
            if s.poll() is None:
                s.kill()
    after = {s["sku"]: s["on_hand"] for s in httpx.get(f"{url}/v1/stock", params={"limit": 500},
                                                          headers=headers).json()["data"]}
    assert sum(served) == PAIRS
    assert {sku: after[sku] for sku in stock} == {sku: count - 1 for sku, count in stock.items()}


def test_key_locks_are_held_in_postgres_and_freed_when_the_block_ends(postgres_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch):
    """Held locks are PostgreSQL's (another session cannot take them) and are freed when the block
    ends, also by an exception."""
    import sqlalchemy as sa

    monkeypatch.setenv("INTEGRATIONS_DATABASE_URL", postgres_url)
    skus = KeyLocks("http://127.0.0.1:1/v1")
    assert skus.engine is not None
    other = sa.create_engine(postgres_url)
    keys = [lock_key(skus.scope, sku) for sku in ("B", "A")]
    try_lock = sa.text("SELECT pg_try_advisory_lock(:key)")

    def free(key: int) -> bool:
        with other.connect() as connection:
            taken = connection.execute(try_lock, {"key": key}).scalar()
            if taken:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            return bool(taken)

    with pytest.raises(RuntimeError), skus.held(["B", "A", "B"]):
        assert [free(k) for k in keys] == [False, False]
        raise RuntimeError("the order failed")
    assert [free(k) for k in keys] == [True, True]
    other.dispose()
