"""Benchmark: the engine's per-record map + validate beside pydantic's own validate_python.

    .venv/bin/python benchmarks/bench_validate.py [--records 10000] [--repeat 7]

The records are the sandbox CRM's contacts as its API serves them (about one in six is invalid, as
in the sync benchmark). In one process, timeit-style (best of `--repeat` passes over all records):
- pydantic: `Customer.__pydantic_validator__.validate_python` on the records already in the
  canonical shape (mapped before the clock starts; a ValidationError is caught and dropped);
- map: `to_canonical` alone (model/mapping.py), from the source shape;
- map + validate: `to_canonical`, then `validate_python`, the reason built for a reject;
- engine: `canonicalize` (runtime/engine.py), what `commit` runs on every page: map, validate,
  the canonical JSON dump and the content hash, the reason of each reject.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import ValidationError

from _report import load_average, machine, now, publish
from definitions.objects import customer
from integration_project.model import load_landscape
from integration_project.model.mapping import to_canonical
from integration_project.runtime.engine import canonicalize, reason
from integration_sandbox.testing import crm_records, free_port_sandbox


def contacts(url: str, token: str) -> list[dict]:
    """Every contact of the sandbox CRM, in its own shape, every property asked for."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        return crm_records(http, "contacts")


def best(run: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` runs, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="contacts in the sandbox CRM")
    parser.add_argument("--repeat", type=int, default=7, help="passes over the records; the best counts")
    args = parser.parse_args()
    print(f"machine: {machine()}; {now()}; load average {load_average()}")
    mapping = next(b.mapping for b in load_landscape("definitions").systems["crm"].bindings
                   if b.object == "customer" and b.role == "source")
    with tempfile.TemporaryDirectory() as tmp, \
            free_port_sandbox(Path(tmp), ["crm"], seed=42, size=args.records) as sb:
        records = contacts(sb.url("crm"), sb.token("crm"))
    mapped = [to_canonical(r, mapping) for r in records]
    validate = customer.model.__pydantic_validator__.validate_python

    def pydantic_only() -> None:
        for data in mapped:
            try:
                validate(data)
            except ValidationError:
                pass

    def map_validate() -> None:
        for raw in records:
            try:
                validate(to_canonical(raw, mapping))
            except ValidationError as exc:
                reason(exc)

    n = len(records)
    valid, rejects = canonicalize(records, mapping, customer)
    timings = {"pydantic": best(pydantic_only, args.repeat),
               "map": best(lambda: [to_canonical(r, mapping) for r in records], args.repeat),
               "map_validate": best(map_validate, args.repeat),
               "engine": best(lambda: canonicalize(records, mapping, customer), args.repeat)}
    us = {k: v / n * 1e6 for k, v in timings.items()}
    ratio = {k: v / us["pydantic"] for k, v in us.items()}
    labels = {"pydantic": "pydantic `validate_python` (canonical shape in)",
              "map": "map only (`to_canonical`)",
              "map_validate": "map + validate (+ reason of a reject)",
              "engine": "engine `canonicalize`: map + validate + JSON dump + content hash"}
    for k, label in labels.items():
        print(f"{label}: {us[k]:.1f} µs a record; {ratio[k]:.2f} × pydantic")
    figures = {"records": n, "invalid": len(rejects), "repeat": args.repeat,
               "us_per_record": {k: round(v, 2) for k, v in us.items()},
               "ratio_to_pydantic": {k: round(v, 3) for k, v in ratio.items()}, "goal": "engine <= 2x pydantic"}
    table = "\n".join([
        f"{n:,} sandbox CRM contacts ({len(rejects):,} invalid), best of {args.repeat} passes, one process.",
        "", "| per record | µs | × pydantic |", "|---|---:|---:|",
        *(f"| {label} | {us[k]:.1f} | {ratio[k]:.2f} |" for k, label in labels.items())])
    publish("validate", figures, table)


if __name__ == "__main__":
    main()
