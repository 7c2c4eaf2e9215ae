"""Benchmark: docs generation on generated landscapes of 10, 100 and 1,000 systems.

    .venv/bin/python benchmarks/bench_docs.py [--sizes 10 100 1000] [--live-every 4] [--format html]

Each size runs in a fresh child process, so its peak RSS (ru_maxrss) is that build's alone. A
landscape of n systems has 2n objects, each consumed by 1-3 other systems (source -> hub ->
consumers); every `--live-every`-th object is live (an executable multi-asset, a check, and a job
with a schedule or sensor per flow), the rest are planned external assets. Stages timed: building
the Definitions (Dagster's own cost, not docs_gen's), reading them into the graph, and writing the
site (pages, diagrams laid out by Graphviz, search index, graph JSON). Prints a Markdown table.
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

ROOT = Path(__file__).resolve().parents[1]


def child(n: int, live_every: int, fmt: str) -> None:
    """Build the docs of one generated landscape; print one JSON line of figures."""
    sys.path.insert(0, str(ROOT / "tests" / "docs_gen"))  # the fixture module that generates landscapes
    import docs_landscapes

    from docs_gen.graph import build_graph
    from docs_gen.site import build

    t0 = time.perf_counter()
    defs = docs_landscapes.generated(n, live_every=live_every)
    t1 = time.perf_counter()
    g = build_graph(defs, "generated")
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = build(g, Path(tmp) / "site", fmt)
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    t3 = time.perf_counter()
    kinds = {k: sum(1 for _, a in g.nodes(data=True) if a["kind"] == k) for k in ("asset", "flow", "check", "job")}
    print(json.dumps({
        "systems": n, **kinds, "definitions_s": t1 - t0, "graph_s": t2 - t1, "site_s": t3 - t2,
        "docs_s": t3 - t1, "pages": result.pages, "diagrams": result.diagrams,
        "layout_s": result.layout_seconds, "slowest": result.slowest_layout, "layout_errors": len(result.layout_errors),
        "site_mb": size / 1e6, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def main() -> None:
    """Run each size in its own process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--live-every", type=int, default=4)
    parser.add_argument("--format", choices=["html", "markdown"], default="html")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.live_every, args.format)
        return
    print(f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
          f"Python {platform.python_version()} · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| systems | assets | flows | jobs | Definitions (s) | graph (s) | site (s) | docs total (s) | pages "
          "| diagrams | layout, summed (s) | slowest layout | site (MB) | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for n in args.sizes:
        done = subprocess.run([sys.executable, __file__, "--child", str(n), "--live-every", str(args.live_every),
                               "--format", args.format], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if done.returncode:
            print(f"| {n} | failed: {done.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {n} | {r['asset']} | {r['flow']} | {r['job']} | {r['definitions_s']:.1f} | {r['graph_s']:.1f} "
              f"| {r['site_s']:.1f} | {r['docs_s']:.1f} | {r['pages']} | {r['diagrams']} | {r['layout_s']:.1f} "
              f"| {r['slowest'][0]} {r['slowest'][1]:.3f} s | {r['site_mb']:.0f} | {r['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
