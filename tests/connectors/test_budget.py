"""A vendor's declared request budget holds across processes: several runs share it, not multiply it.

On one machine the budget is a locked file; with the hub store on PostgreSQL it is held there, so
processes that share no folder (as on two machines) share it too.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.e2e.conftest import serving
from tests.webhooks.conftest import postgres_schema_url

CALLS = """
import sys
from integration_project.connectors.http import VendorClient
from integration_project.model import Api
api = Api(connector="rest", base_url=sys.argv[1], version="1", requests_per_second=float(sys.argv[2]) or None,
          allow_private_network=True)
with VendorClient(api) as c:
    for _ in range(int(sys.argv[3])):
        c.request("GET", "/ping")
"""
JITTER = 0.1  # seconds a request may arrive late on a busy 2-core machine


def _runs(url: str, per_second: float, calls: int, envs: list[dict[str, str]]) -> None:
    """One process per environment, each making `calls` requests at once with the others."""
    runs = [subprocess.Popen([sys.executable, "-c", CALLS, url, str(per_second), str(calls)],
                             env={"PATH": "/usr/bin:/bin", **env}) for env in envs]
    assert [r.wait(timeout=120) for r in runs] == [0] * len(runs)


@pytest.fixture
def hits() -> Iterator[tuple[str, list[float]]]:
    """A real HTTP server on loopback and the arrival time of every request it answered."""
    arrived: list[float] = []

    async def ping(_):
        arrived.append(time.monotonic())
        return JSONResponse({"ok": True})

    with serving(Starlette(routes=[Route("/ping", ping)])) as url:
        yield url, arrived


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL hub store URL (skipped without PostgreSQL, failed on CI)."""
    yield from postgres_schema_url()


def test_two_processes_share_one_budget(tmp_path: Path, hits: tuple[str, list[float]]):
    url, arrived = hits
    one_folder = [{"INTEGRATIONS_DATA_DIR": str(tmp_path)}] * 2
    _runs(url, 0, 20, one_folder)  # no budget: as fast as they can
    free = sorted(arrived)
    arrived.clear()
    _runs(url, 20, 20, one_folder)
    kept = sorted(arrived)
    assert len(free) == len(kept) == 40
    # 40 requests at 20 a second, wherever they come from: the first and last are >= 1.95 s apart
    # (less a slot or two of arrival jitter on a busy machine), and no one-second window holds
    # more than 21 of them (without the budget, one does)
    assert kept[-1] - kept[0] >= 39 / 20 - JITTER
    assert _busiest_second(kept) <= 21 < _busiest_second(free)


def test_processes_sharing_no_folder_share_the_budget_through_postgres(
        tmp_path: Path, hits: tuple[str, list[float]], postgres_url: str):
    """Three processes with a data folder each (as on three machines), 15 requests each at 20 a
    second: through the hub's PostgreSQL they keep to 20 a second together; by their files alone,
    each keeps to 20 on its own."""
    url, arrived = hits
    folders = [{"INTEGRATIONS_DATA_DIR": str(tmp_path / str(i))} for i in range(3)]
    _runs(url, 20, 15, folders)
    apart = sorted(arrived)
    arrived.clear()
    _runs(url, 20, 15, [{**env, "INTEGRATIONS_DATABASE_URL": postgres_url} for env in folders])
    shared = sorted(arrived)
    assert len(apart) == len(shared) == 45
    assert shared[-1] - shared[0] >= 44 / 20 - JITTER
    assert _busiest_second(shared) <= 21 < _busiest_second(apart)
    print(f"45 requests through PostgreSQL at 20/s: {44 / (shared[-1] - shared[0]):.1f} a second, "
          f"busiest second {_busiest_second(shared)}")


def _busiest_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1) for start in times)
