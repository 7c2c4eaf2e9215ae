"""The vendors' published support windows of API versions (lifecycle.toml beside this module)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

TABLE = Path(__file__).with_name("lifecycle.toml")


@dataclass(frozen=True)
class Support:
    """One API version's life as its vendor publishes it; `ends` None: no end published."""

    vendor: str
    version: str
    source: str
    released: date | None = None
    ends: date | None = None


@cache
def table(path: Path = TABLE) -> dict[tuple[str, str], Support]:
    """Every known (connector, version) -> its support window."""
    data = tomllib.loads(path.read_text())
    return {(connector, version): Support(row["vendor"], version, row["source"], row.get("released"),
                                          row.get("support_ends"))
            for connector, versions in data.items() for version, row in versions.items()}


def support(connector: str, version: str) -> Support | None:
    """The published support window of a connector's API version, None when the table has none."""
    return table().get((connector, version))
