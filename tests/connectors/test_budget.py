"""A vendor's declared request budget holds across processes: two runs share it, not double it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.e2e.conftest import serving

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


def _two_runs(url: str, per_second: float, calls: int, data_dir: Path) -> float:
    env = {"INTEGRATIONS_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    started = time.perf_counter()
    runs = [subprocess.Popen([sys.executable, "-c", CALLS, url, str(per_second), str(calls)], env=env)
            for _ in range(2)]
    assert [r.wait(timeout=60) for r in runs] == [0, 0]
    return time.perf_counter() - started


def test_two_processes_share_one_budget(tmp_path: Path):
    hits: list[float] = []

    async def ping(_):
        hits.append(time.monotonic())
        return JSONResponse({"ok": True})

    with serving(Starlette(routes=[Route("/ping", ping)])) as url:
        _two_runs(url, 0, 20, tmp_path)  # no budget: as fast as they can
        free = sorted(hits)
        hits.clear()
        _two_runs(url, 20, 20, tmp_path)
        kept = sorted(hits)
    assert len(free) == len(kept) == 40
    # 40 requests at 20 a second, wherever they come from: the first and last are >= 1.95 s apart,
    # and no one-second window holds more than 21 of them (without the budget, one does)
    assert kept[-1] - kept[0] >= 39 / 20 - 0.01
    assert _busiest_second(kept) <= 21 < _busiest_second(free)


def _busiest_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1) for start in times)
