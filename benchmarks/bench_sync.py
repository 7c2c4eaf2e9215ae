"""Benchmark: the customer sync (CRM -> hub -> billing) beside bare httpx loops over the same API.

    .venv/bin/python benchmarks/bench_sync.py [--pull 100000] [--memory 100000 1000000] [--load 1000]

Side by side, in one run, against the sandbox CRM and localstripe on loopback:
- pull: the framework's extract + validate + commit to the hub (the `ingest_customer` step) vs a
  bare httpx loop reading the same pages (the wire limit);
- load: the whole flow (pull + idempotent per-record creates in billing) vs a bare httpx loop
  reading the pages and POSTing each record, on a second, identical sandbox;
- memory: peak RSS of the ingest at each size in `--memory` (each in its own process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from integration_project.launcher import sandbox_env
from integration_project.model import load_landscape
from integration_project.sandbox.testing import free_port_sandbox

FLOW = "customer_crm_to_billing"
CHILD = """
import json, resource, sys, time
import dagster as dg
from definitions.definitions import defs
selection = None if sys.argv[1] == "flow" else [dg.AssetKey(["crm", "customer"]), dg.AssetKey(["hub", "customer"])]
started = time.perf_counter()
result = defs.resolve_job_def(%r).execute_in_process(instance=dg.DagsterInstance.ephemeral(), asset_selection=selection)
print(json.dumps({"seconds": time.perf_counter() - started, "success": result.success,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""" % FLOW


def bare_pull(url: str, token: str) -> tuple[int, float]:
    """Read every contact page as fast as httpx goes: (records, seconds)."""
    started, count, after = time.perf_counter(), 0, None
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        while True:
            params = {"limit": 100, **({"after": after} if after else {})}
            page = http.get("/crm/v3/objects/contacts", params=params).json()
            count += len(page["results"])
            after = page.get("paging", {}).get("next", {}).get("after")
            if not after:
                return count, time.perf_counter() - started


def bare_load(sb) -> tuple[int, float]:
    """Read every contact and POST each to billing, no validation: (records, seconds)."""
    started, count, after = time.perf_counter(), 0, None
    crm = httpx.Client(base_url=sb.url("crm"), headers={"Authorization": f"Bearer {sb.token('crm')}"})
    billing = httpx.Client(base_url=sb.url("billing"), headers={"Authorization": f"Bearer {sb.token('billing')}"})
    while True:
        page = crm.get("/crm/v3/objects/contacts", params={"limit": 100, **({"after": after} if after else {})}).json()
        for r in page["results"]:
            p = r["properties"]
            billing.post("/v1/customers", data={k: v for k, v in {
                "email": p.get("email"), "name": f"{p.get('firstname')} {p.get('lastname')}",
                "phone": p.get("phone"), "metadata[crm_contact_id]": r["id"]}.items() if v}).raise_for_status()
            count += 1
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            return count, time.perf_counter() - started


def framework(sb, mode: str, hub: Path) -> dict:
    """Run the flow (or only its ingest) in a fresh process against a sandbox: seconds, peak RSS."""
    env = {**os.environ, **sandbox_env(load_landscape("definitions"), sb),
           "INTEGRATIONS_DATABASE_URL": f"sqlite:///{hub}"}
    done = subprocess.run([sys.executable, "-c", CHILD, mode], env=env, capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pull", type=int, default=100_000, help="contacts for the pull comparison")
    parser.add_argument("--load", type=int, default=1_000, help="contacts for the whole-flow comparison")
    parser.add_argument("--memory", type=int, nargs="*", default=[100_000, 1_000_000])
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with free_port_sandbox(root / "pull", ["crm"], seed=42, size=args.pull) as sb:
            n, bare = bare_pull(sb.url("crm"), sb.token("crm"))
            ours = framework(sb, "ingest", root / "pull.sqlite")
            results["pull"] = {"records": n, "bare_httpx_rps": n / bare, "framework_rps": n / ours["seconds"],
                               "ratio": bare / ours["seconds"], "framework_peak_rss_mb": ours["peak_rss_mb"]}
        print(f"pull {n:,}: bare httpx {n / bare:,.0f} rec/s; extract+validate+commit "
              f"{n / ours['seconds']:,.0f} rec/s; ratio {bare / ours['seconds']:.2f}")
        for i, system_set in enumerate(("bare", "framework")):
            with free_port_sandbox(root / f"load-{i}", ["crm", "billing"], seed=42, size=args.load) as sb:
                if system_set == "bare":
                    n, bare = bare_load(sb)
                else:
                    ours = framework(sb, "flow", root / "load.sqlite")
        results["load"] = {"records": n, "bare_httpx_rps": n / bare, "framework_rps": n / ours["seconds"],
                           "ratio": bare / ours["seconds"]}
        print(f"load {n:,}: bare httpx pull+POST {n / bare:,.0f} rec/s; whole flow {n / ours['seconds']:,.0f} "
              f"rec/s; ratio {bare / ours['seconds']:.2f}")
        results["memory"] = {}
        for size in args.memory:
            with free_port_sandbox(root / f"mem-{size}", ["crm"], seed=42, size=size) as sb:
                ours = framework(sb, "ingest", root / f"mem-{size}.sqlite")
            results["memory"][size] = ours["peak_rss_mb"]
            print(f"memory: ingest of {size:,} contacts peaks at {ours['peak_rss_mb']:,.0f} MB "
                  f"({size / ours['seconds']:,.0f} rec/s)")
        if len(args.memory) > 1:
            first, last = args.memory[0], args.memory[-1]
            print(f"memory ratio {last:,} / {first:,}: {results['memory'][last] / results['memory'][first]:.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
