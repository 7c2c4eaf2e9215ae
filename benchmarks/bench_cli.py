"""Benchmark: how long `integrations` takes to start, beside the interpreter and `import dagster`.

    .venv/bin/python benchmarks/bench_cli.py [--runs 7]

Each command runs `--runs` times, round-robin (so all of them see the same machine load), after one
warm-up run each; the figures are medians of the wall time and of the CPU time (user + system of
the child process). Goal (issue 15): `integrations --help` ≤ 0.25 × `python -c "import dagster"`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _report import ROOT, publish

BIN = Path(sys.executable).parent
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    'python -c "import dagster"': [sys.executable, "-c", "import dagster"],
    "integrations --help": [str(BIN / "integrations"), "--help"],
    "integrations check": [str(BIN / "integrations"), "check"],
}
BASE = 'python -c "import dagster"'
GOAL = 0.25  # integrations --help against import dagster


def run(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run (the CPU of the child alone)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv} exited {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():
        run(argv)  # warm-up: the page cache, .pyc files
    for _ in range(args.runs):
        for name, argv in COMMANDS.items():
            samples[name].append(run(argv))
    wall = {name: statistics.median(w for w, _ in runs) for name, runs in samples.items()}
    cpu = {name: statistics.median(c for _, c in runs) for name, runs in samples.items()}
    ratio = {name: (wall[name] / wall[BASE], cpu[name] / cpu[BASE]) for name in COMMANDS}
    for name in COMMANDS:
        print(f"{name:30} wall {wall[name]:6.3f} s  cpu {cpu[name]:6.3f} s  "
              f"× import dagster: {ratio[name][0]:.2f} (wall) {ratio[name][1]:.2f} (cpu)")
    help_ratio = ratio["integrations --help"][0]
    print(f"goal: integrations --help <= {GOAL} x import dagster: {help_ratio:.2f} "
          f"({'met' if help_ratio <= GOAL else 'not met'})")
    figures = {"runs": args.runs, "wall_s": {k: round(v, 4) for k, v in wall.items()},
               "cpu_s": {k: round(v, 4) for k, v in cpu.items()},
               "ratio_to_import_dagster": {k: [round(w, 3), round(c, 3)] for k, (w, c) in ratio.items()},
               "goal": f"integrations --help <= {GOAL}x import dagster"}
    table = "\n".join([
        f"Median of {args.runs} runs each, round-robin after one warm-up run each, one command at a time.",
        "", "| command | wall s | CPU s | × `import dagster` (wall) | × (CPU) |", "|---|---:|---:|---:|---:|",
        *(f"| `{name}` | {wall[name]:.3f} | {cpu[name]:.3f} | {ratio[name][0]:.2f} | {ratio[name][1]:.2f} |"
          for name in COMMANDS)])
    publish("cli", figures, table)


if __name__ == "__main__":
    main()
