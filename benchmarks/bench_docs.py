"""Benchmark: definitions load and docs generation on generated landscapes of 10, 100 and 1,000 systems.

    .venv/bin/python benchmarks/bench_docs.py [--sizes 10 100 1000] [--live-every 4] [--format html]
                                              [--large 640] [--repeat 3]

Each size runs in a fresh child process, so its peak RSS (ru_maxrss) is that build's alone. A
landscape of n systems has 2n objects, each consumed by 1-3 other systems (source -> hub ->
consumers); every `--live-every`-th object is live (an executable multi-asset, a check, and a job
with a schedule or sensor per flow), the rest are planned external assets. Stages timed: building
the Definitions (Dagster's own cost, not docs_gen's), reading them into the graph, and writing the
site (pages, diagrams laid out by Graphviz, search index, graph JSON). Prints a Markdown table.

Load time: the wall time of a fresh `python -c` that imports Dagster and the fixture, builds the
landscape's Definitions and resolves its repository (the asset graph, what a code location does
first), beside `python -c "import dagster"` in the same run (the median of `--repeat` runs each);
for each size and for `--large` systems (>= 5,000 assets). Figures go to
docs/performance.{json,md} ("docs").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _report import load_average, machine, publish

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "docs_gen"  # the fixture module that generates landscapes
LOAD = """
import time, sys
t0 = time.perf_counter()
import dagster
sys.path.insert(0, {fixtures!r})
import docs_landscapes
t1 = time.perf_counter()
defs = docs_landscapes.generated({n}, live_every={live_every})
repository = defs.get_repository_def()
t2 = time.perf_counter()
print(len(repository.asset_graph.get_all_asset_keys()), t1 - t0, t2 - t1)
"""


def child(n: int, live_every: int, fmt: str) -> None:
    """Build the docs of one generated landscape; print one JSON line of figures."""
    sys.path.insert(0, str(FIXTURES))
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


def timed(code: str) -> tuple[float, str]:
    """Wall seconds of a fresh `python -c code` (interpreter start included) and its last output line."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return time.perf_counter() - started, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def load_times(sizes: list[int], live_every: int, repeat: int) -> dict[str, Any]:
    """Median load wall time per landscape size, and of `import dagster`, in fresh processes of this run."""
    baseline = sorted(timed("import dagster")[0] for _ in range(repeat))[repeat // 2]
    figures: dict[str, Any] = {"import_dagster_s": baseline, "sizes": {}}
    for n in sizes:
        runs = sorted(timed(LOAD.format(fixtures=str(FIXTURES), n=n, live_every=live_every)) for _ in range(repeat))
        wall, output = runs[len(runs) // 2]  # the median run (the upper one of an even count)
        assets, imports, build = output.split()
        figures["sizes"][n] = {"assets": int(assets), "load_s": wall, "imports_s": float(imports),
                               "definitions_s": float(build)}
    return figures


def load_table(figures: dict[str, Any]) -> str:
    """The load times as a Markdown table, with the ratio to `import dagster`."""
    base = figures["import_dagster_s"]
    rows = [f"Load: fresh `python -c`, median of {figures['repeat']} runs; `python -c \"import dagster\"` took "
            f"{base:.2f} s in the same run.\n",
            "| systems | assets | load, wall (s) | ratio to import dagster | load minus import dagster (s) "
            "| of which: imports (s) | Definitions + repository (s) |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for n, f in figures["sizes"].items():
        rows.append(f"| {n} | {f['assets']:,} | {f['load_s']:.2f} | {f['load_s'] / base:.1f} "
                    f"| {f['load_s'] - base:.2f} | {f['imports_s']:.2f} | {f['definitions_s']:.2f} |")
    return "\n".join(rows)


def docs_row(n: int, live_every: int, fmt: str) -> tuple[str, dict[str, Any]]:
    """Build one size's docs in a child process; its table row and figures."""
    done = subprocess.run([sys.executable, __file__, "--child", str(n), "--live-every", str(live_every),
                           "--format", fmt], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode:
        return f"| {n} | failed: {done.stderr.strip().splitlines()[-1]} |", {"failed": True}
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return (f"| {n} | {r['asset']} | {r['flow']} | {r['job']} | {r['definitions_s']:.1f} | {r['graph_s']:.1f} "
            f"| {r['site_s']:.1f} | {r['docs_s']:.1f} | {r['pages']} | {r['diagrams']} | {r['layout_s']:.1f} "
            f"| {r['slowest'][0]} {r['slowest'][1]:.3f} s | {r['site_mb']:.0f} | {r['peak_rss_mb']:.0f} |"), r


def main() -> None:
    """Time the loads, build each size's docs in its own process, print and publish the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--live-every", type=int, default=4)
    parser.add_argument("--format", choices=["html", "markdown"], default="html")
    parser.add_argument("--large", type=int, default=640, help="systems of the >= 5,000-asset load (0: skip)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per load figure (median)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.live_every, args.format)
        return
    print(f"machine: {machine()}; load average before: {load_average()}\n")
    loads = load_times(args.sizes + ([args.large] if args.large else []), args.live_every, args.repeat)
    loads["repeat"] = args.repeat
    print(load_table(loads) + "\n", flush=True)
    header = ("| systems | assets | flows | jobs | Definitions (s) | graph (s) | site (s) | docs total (s) | pages "
              "| diagrams | layout, summed (s) | slowest layout | site (MB) | peak RSS (MB) |\n"
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    print(header)
    rows, builds = [], {}
    for n in args.sizes:
        row, builds[n] = docs_row(n, args.live_every, args.format)
        rows.append(row)
        print(row, flush=True)
    publish("docs", {"load": loads, "docs_build": builds},
            load_table(loads) + f"\n\nDocs build, one process per size:\n\n{header}\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
