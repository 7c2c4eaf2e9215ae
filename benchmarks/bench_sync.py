"""Benchmark: the customer sync (CRM -> hub -> billing) beside bare httpx loops and dlt over the same API.

    .venv/bin/python benchmarks/bench_sync.py [--sizes 10000 100000 1000000] [--load 1000]

Side by side, in one run, against the sandbox CRM and localstripe on loopback:
- pull, at each size in `--sizes` (one sandbox CRM per size, read by every contender in turn):
  a bare httpx loop reading the pages (the wire limit); the framework's extract + validate +
  commit to the hub (the `ingest_customer` step, its peak RSS too); dlt's `rest_api` source
  extracting the same contacts (bearer token, cursor `paging.next.after`) into duckdb, with its
  defaults and with each loader file format uncompressed (`DLT_CONFIGS`). Each framework and dlt
  run is a fresh process timed from its first request; dlt writes only under a temp dir, telemetry off;
- connector read: the hand-written HubSpot connector and the declarative one (`connector: rest`, the
  same contacts listing declared: cursor `paging.next.after`, `data_selector: results`) reading the
  same pull in this process, alternately, best of REPEATS each: the declarative cost per record
  against the hand-written one (goal: within 1.2x);
- load: the whole flow (pull + idempotent per-record creates in billing) vs a bare httpx loop
  reading the pages and POSTing each record, on a second, identical sandbox; both at the pace the
  billing declaration keeps to Stripe's limit (`requests_per_second`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from _report import load_average, machine, now, publish
from integration_project.connectors import Declared, HubSpot
from integration_sandbox.landscape import sandbox_env
from integration_project.model import Api, Auth, load_landscape
from integration_sandbox.testing import crm_params, free_port_sandbox

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
DLT_CHILD = """
import json, os, resource, sys, time
import dlt
from dlt.sources.rest_api import rest_api_source
url, token, file_format, workdir, properties = sys.argv[1:]
source = rest_api_source({
    "client": {"base_url": url, "auth": {"type": "bearer", "token": token},
               "paginator": {"type": "cursor", "cursor_path": "paging.next.after", "cursor_param": "after"}},
    "resources": [{"name": "contacts", "endpoint": {
        "path": "/crm/v3/objects/contacts", "params": {"limit": 100, "properties": properties},
        "data_selector": "results"}}],
})
pipeline = dlt.pipeline(pipeline_name="bench", pipelines_dir=os.path.join(workdir, "pipelines"), dataset_name="crm",
                        destination=dlt.destinations.duckdb(os.path.join(workdir, "bench.duckdb")))
started = time.perf_counter()
pipeline.run(source, **({"loader_file_format": file_format} if file_format else {}))
seconds = time.perf_counter() - started
with pipeline.sql_client() as sql:
    rows = sql.execute_sql("select count(*) from contacts")[0][0]
print(json.dumps({"seconds": seconds, "rows": rows,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
# dlt configurations: name -> (loader file format, None for the destination's default; extra environment)
UNCOMPRESSED = {"NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION": "true"}
DLT_CONFIGS: dict[str, tuple[str | None, dict[str, str]]] = {
    "defaults": (None, {}),
    "jsonl, uncompressed": ("jsonl", UNCOMPRESSED),
    "parquet, uncompressed": ("parquet", UNCOMPRESSED),
}


def bare_pull(url: str, token: str) -> tuple[int, float]:
    """Read every contact page as fast as httpx goes: (records, seconds)."""
    started, count, after = time.perf_counter(), 0, None
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        while True:
            page = http.get("/crm/v3/objects/contacts", params=crm_params("contacts", limit=100, **(
                {"after": after} if after else {}))).json()
            count += len(page["results"])
            after = page.get("paging", {}).get("next", {}).get("after")
            if not after:
                return count, time.perf_counter() - started


def bare_load(sb) -> tuple[int, float]:
    """Read every contact and POST each to billing, no validation, at the pace the billing
    declaration keeps to Stripe's limit (its `requests_per_second`, as the flow is held to): (records,
    seconds). The sandbox's own limit is off for both."""
    per_second = load_landscape("definitions").systems["billing"].api.requests_per_second
    interval = 1 / per_second if per_second else 0.0
    started, count, after = time.perf_counter(), 0, None
    slot = started
    crm = httpx.Client(base_url=sb.url("crm"), headers={"Authorization": f"Bearer {sb.token('crm')}"})
    billing = httpx.Client(base_url=sb.url("billing"), headers={"Authorization": f"Bearer {sb.token('billing')}"})
    while True:
        page = crm.get("/crm/v3/objects/contacts",
                       params=crm_params("contacts", limit=100, **({"after": after} if after else {}))).json()
        for r in page["results"]:
            p = r["properties"]
            slot = max(slot, time.perf_counter()) + interval
            time.sleep(max(0.0, slot - interval - time.perf_counter()))
            billing.post("/v1/customers", data={k: v for k, v in {
                "email": p.get("email"), "name": f"{p.get('firstname')} {p.get('lastname')}",
                "phone": p.get("phone"), "metadata[crm_contact_id]": r["id"]}.items() if v}).raise_for_status()
            count += 1
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            return count, time.perf_counter() - started


def framework(sb, mode: str, hub_url: str) -> dict:
    """Run the flow (or only its ingest) in a fresh process against a sandbox, the hub store at
    `hub_url`: seconds, success, peak RSS."""
    env = {**os.environ, **sandbox_env(load_landscape("definitions"), sb), "INTEGRATIONS_DATABASE_URL": hub_url}
    done = subprocess.run([sys.executable, "-c", CHILD, mode], env=env, capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def dlt_pull(url: str, token: str, file_format: str | None, env: dict[str, str], workdir: Path) -> dict:
    """Run dlt's rest_api source over the contacts into duckdb in a fresh process: seconds, rows, RSS."""
    workdir.mkdir()
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "DLT_DATA_DIR": str(workdir / "data"), **env}
    done = subprocess.run([sys.executable, "-c", DLT_CHILD, url, token, file_format or "", str(workdir),
                           crm_params("contacts")["properties"]],
                          env=env, capture_output=True, text=True, cwd=workdir)
    if done.returncode:
        raise RuntimeError(f"dlt failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


REPEATS = 3
# as the hand-written one reads: pages by `after`, the newest change seen kept as the cursor
CONTACTS = {"path": "/crm/v3/objects/contacts", "data_selector": "results",
            "params": {"properties": crm_params("contacts")["properties"]},
            "paginator": {"type": "cursor", "cursor_path": "paging.next.after", "cursor_param": "after", "limit": 100},
            "incremental": {"start_param": "updated_after", "cursor_path": "updatedAt"}}


def connector_reads(url: str, token: str) -> dict[str, float]:
    """Seconds per record of a full read of the contacts by each connector, best of REPEATS, alternating."""
    os.environ["CRM_BENCH_TOKEN"] = token
    auth = Auth(type="bearer", token_env="CRM_BENCH_TOKEN")
    apis = {"hand-written": Api(connector="hubspot", base_url=url, version="2026-03", auth=auth,
                                allow_private_network=True),  # the dated routes it speaks
            "declarative": Api(connector="rest", base_url=url, version="v3", auth=auth, allow_private_network=True,
                               resources={"contacts": CONTACTS})}
    best = {"hand-written": float("inf"), "declarative": float("inf")}
    for _ in range(REPEATS):
        for name, cls in (("hand-written", HubSpot), ("declarative", Declared)):
            connector = cls(apis[name])
            started, count = time.perf_counter(), 0
            for page in connector.pages("contacts", None):
                count += len(page.records)
            best[name] = min(best[name], (time.perf_counter() - started) / count)
            connector.close()
    return best


def projected_rss_mb(previous: dict | None, name: str, size: int) -> float | None:
    """A dlt configuration's peak RSS at `size`, scaled linearly from the previous size; None if unmeasured."""
    if previous is None or previous["dlt_peak_rss_mb"].get(name) is None:
        return None
    return previous["dlt_peak_rss_mb"][name] * size / previous["records"]


# The vendors' limits (HubSpot: 190 requests in 10 s, 100k contacts >= 53 s; 5 searches a second;
# the daily quota; Stripe: 25 a second) would bound every contender alike: off, to measure the
# clients (bench_scale too)
UNLIMITED = {"crm": {"rate_limit_per_10s": 0, "rate_limit_search_per_second": 0, "rate_limit_daily": 0},
             "billing": {"rate_limit_per_second": 0}}


def pull(root: Path, size: int, previous: dict | None) -> dict:
    """The pull comparison at one size: records/s of each contender and the ratios of the same run.

    A dlt configuration whose memory, scaled from the previous size, would pass 3/4 of the machine's
    RAM is skipped and said so (dlt's default insert_values load holds the whole load in memory)."""
    ram_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    with free_port_sandbox(root / f"pull-{size}", ["crm"], seed=42, size=size, options=UNLIMITED) as sb:
        url, token = sb.url("crm"), sb.token("crm")
        n, bare = bare_pull(url, token)
        print(f"pull {n:,}: bare httpx {n / bare:,.0f} rec/s", flush=True)
        ours = framework(sb, "ingest", f"sqlite:///{root / f'pull-{size}.sqlite'}")
        print(f"pull {n:,}: framework extract + validate + commit {n / ours['seconds']:,.0f} rec/s "
              f"({bare / ours['seconds']:.2f} × bare), peak RSS {ours['peak_rss_mb']:,.0f} MB", flush=True)
        reads = connector_reads(url, token)
        print(f"pull {n:,}: connector read, hand-written {1 / reads['hand-written']:,.0f} rec/s, declarative "
              f"{1 / reads['declarative']:,.0f} rec/s ({reads['declarative'] / reads['hand-written']:.2f} × the "
              "hand-written cost per record)", flush=True)
        dlt_rps: dict[str, float | None] = {}
        dlt_rss: dict[str, float | None] = {}
        for i, (name, (file_format, env)) in enumerate(DLT_CONFIGS.items()):
            if (projected := projected_rss_mb(previous, name, size)) and projected > 0.75 * ram_mb:
                dlt_rps[name] = dlt_rss[name] = None
                print(f"pull {size:,}: dlt ({name}) skipped: ~{projected / 1024:,.0f} GB peak RSS projected "
                      f"from {previous['records']:,} records, {ram_mb / 1024:,.0f} GB RAM", flush=True)
                continue
            peer = dlt_pull(url, token, file_format, env, root / f"dlt-{size}-{i}")
            if peer["rows"] != n:
                raise RuntimeError(f"dlt ({name}) loaded {peer['rows']} of {n} contacts")
            dlt_rps[name], dlt_rss[name] = n / peer["seconds"], peer["peak_rss_mb"]
            print(f"pull {n:,}: dlt rest_api -> duckdb ({name}) {dlt_rps[name]:,.0f} rec/s, "
                  f"peak RSS {peer['peak_rss_mb']:,.0f} MB", flush=True)
    ours_rps = n / ours["seconds"]
    fastest = max((k for k, v in dlt_rps.items() if v), key=lambda k: dlt_rps[k])
    defaults = dlt_rps["defaults"]
    return {"records": n, "bare_httpx_rps": n / bare, "framework_rps": ours_rps, "dlt_rps": dlt_rps,
            "dlt_peak_rss_mb": dlt_rss, "dlt_fastest": fastest, "ratio_to_bare": ours_rps / (n / bare),
            "ratio_to_dlt_fastest": ours_rps / dlt_rps[fastest],
            "ratio_to_dlt_defaults": ours_rps / defaults if defaults else None,
            "framework_peak_rss_mb": ours["peak_rss_mb"],
            "connector_read_rps": {name: 1 / cost for name, cost in reads.items()},
            "declarative_cost_ratio": reads["declarative"] / reads["hand-written"]}


def tables(results: dict) -> str:
    """The Markdown tables of one run."""
    pulls, load = results["pull"], results["load"]
    lines = ["Pull: records/s (ratios of the framework, same run). Goals: ≥ 0.35 × bare httpx, ≥ 3 × dlt's fastest.",
             "", "| contacts | bare httpx | framework | × bare | "
             + " | ".join(f"dlt {name}" for name in DLT_CONFIGS)
             + " | × dlt fastest | × dlt defaults | ingest peak RSS (MB) |",
             "|---:|---:|---:|---:|" + "---:|" * len(DLT_CONFIGS) + "---:|---:|---:|"]
    for p in pulls:
        dlt = " | ".join("skipped (memory)" if p["dlt_rps"][name] is None else f"{p['dlt_rps'][name]:,.0f}"
                         for name in DLT_CONFIGS)
        to_defaults = "–" if p["ratio_to_dlt_defaults"] is None else f"{p['ratio_to_dlt_defaults']:.2f}"
        lines.append(f"| {p['records']:,} | {p['bare_httpx_rps']:,.0f} | {p['framework_rps']:,.0f} | "
                     f"{p['ratio_to_bare']:.2f} | {dlt} | {p['ratio_to_dlt_fastest']:.2f} ({p['dlt_fastest']}) | "
                     f"{to_defaults} | {p['framework_peak_rss_mb']:,.0f} |")
    lines += ["", "Connector read: the same pull by the hand-written HubSpot connector and the declarative one "
              f"(best of {REPEATS}). Goal: declarative cost per record ≤ 1.2 × hand-written.", "",
              "| contacts | hand-written (records/s) | declarative (records/s) | declarative cost × hand-written |",
              "|---:|---:|---:|---:|"]
    lines += [f"| {p['records']:,} | {p['connector_read_rps']['hand-written']:,.0f} | "
              f"{p['connector_read_rps']['declarative']:,.0f} | {p['declarative_cost_ratio']:.2f} |" for p in pulls]
    lines += ["", "Load: the whole flow vs a bare loop that reads the pages and POSTs every contact to "
              "localstripe, both at the billing declaration's pace (Stripe's limit). Goal: ≥ 0.8 × bare.", "",
              "| contacts | bare httpx pull + POST (records/s) | whole flow (records/s) | × bare |",
              "|---:|---:|---:|---:|",
              f"| {load['records']:,} | {load['bare_httpx_rps']:,.0f} | {load['framework_rps']:,.0f} | "
              f"{load['ratio']:.2f} |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="contacts for the pull comparison, one sandbox each")
    parser.add_argument("--load", type=int, default=1_000, help="contacts for the whole-flow comparison")
    args = parser.parse_args()
    print(f"machine: {machine()}; {now()}; load average {load_average()}")
    results: dict = {"pull": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for size in sorted(args.sizes):  # ascending: memory projections scale up from a measured size
            results["pull"].append(pull(root, size, results["pull"][-1] if results["pull"] else None))
        for i, system_set in enumerate(("bare", "framework")):
            with free_port_sandbox(root / f"load-{i}", ["crm", "billing"], seed=42, size=args.load,
                                   options=UNLIMITED) as sb:
                if system_set == "bare":
                    n, bare = bare_load(sb)
                else:
                    ours = framework(sb, "flow", f"sqlite:///{root / 'load.sqlite'}")
        results["load"] = {"records": n, "bare_httpx_rps": n / bare, "framework_rps": n / ours["seconds"],
                           "ratio": bare / ours["seconds"]}
        print(f"load {n:,}: bare httpx pull+POST {n / bare:,.0f} rec/s; whole flow {n / ours['seconds']:,.0f} "
              f"rec/s; ratio {bare / ours['seconds']:.2f}")
    publish("sync", results, tables(results))


if __name__ == "__main__":
    main()
