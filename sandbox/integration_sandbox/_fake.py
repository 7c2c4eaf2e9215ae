"""Reproducible fake business data and deliberate quality problems, shared by the sandbox seeds."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

# Seeded data is dated from a fixed instant so the same seed gives byte-identical data on any day.
SEED_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SEED_SPAN_MS = 180 * 24 * 3600 * 1000  # created over ~six months

FIRST = ["Ada", "Bram", "Chloé", "Dmitri", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kavya", "Luca",
         "Maja", "Nils", "Olga", "Pedro", "Qiu", "Rosa", "Sven", "Tariq", "Ulla", "Vera", "Wim", "Ximena",
         "Yusuf", "Zoë"]
LAST = ["Almeida", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Horvat", "Ivanova", "Jansen",
        "Kowalski", "Lindqvist", "Müller", "Novak", "O'Brien", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka",
        "Urban", "Vogel", "Weber", "Xu", "Yilmaz", "Zimmermann"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne",
             "Soylent", "Wonka", "Aperture", "Vandelay", "Pied Piper", "Gringotts", "Monarch"]
COUNTRIES = ["DE", "FR", "NL", "GB", "ES", "IT", "SE", "PL", "AT", "US"]
# How a careless clerk writes the same countries: wrong case, ISO alpha-3, local names.
BAD_COUNTRIES = {"DE": "Deutschland", "FR": "fra", "NL": "Holland", "GB": "UK", "ES": "esp", "IT": "Italia",
                 "SE": "swe", "PL": "Polska", "AT": "Österreich", "US": "USA"}
PRODUCTS = ["Widget", "Gadget", "Sprocket", "Gizmo", "Doohickey", "Flange", "Bracket", "Valve", "Gear", "Hinge"]
COLOURS = ["red", "blue", "green", "black", "white", "steel", "brass", "oak"]


_MASK = (1 << 64) - 1
_SUFFIXES = ["GmbH", "BV", "Ltd", "SA", "AB", "Inc"]


@dataclass(frozen=True)
class Person:
    """A customer as every system of the example business knows them."""

    index: int
    first: str
    last: str
    email: str
    company: str
    country: str
    phone: str


def _mix(seed: int, index: int) -> int:
    """A well-spread 64-bit number per (seed, index) (splitmix64): cheaper than a Random per record."""
    x = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + 1) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def person(index: int, seed: int) -> Person:
    """The index-th customer of a seed; the same in every system so records can be matched across them."""
    x = _mix(seed, index)
    first, x = FIRST[x % len(FIRST)], x // len(FIRST)
    last, x = LAST[x % len(LAST)], x // len(LAST)
    company, x = COMPANIES[x % len(COMPANIES)], x // len(COMPANIES)
    suffix, x = _SUFFIXES[x % len(_SUFFIXES)], x // len(_SUFFIXES)
    country, x = COUNTRIES[x % len(COUNTRIES)], x // len(COUNTRIES)
    local = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
    return Person(
        index=index,
        first=first,
        last=last,
        email=f"{local}.{index}@example.com",
        company=f"{company} {suffix}",
        country=country,
        phone=f"+{30 + x % 20} {100 + x // 20 % 900} {100000 + x // 18000 % 900000}",
    )


def product_count(size: int) -> int:
    """How many catalogue products go with a seed size (the same in shop, inventory and legacy_erp)."""
    return max(10, size // 10)


def sku(index: int) -> str:
    """The stock-keeping unit of the index-th catalogue product."""
    return f"SKU-{index:06d}"


def product_name(index: int) -> str:
    """A readable product name for a catalogue index."""
    return f"{COLOURS[index % len(COLOURS)].title()} {PRODUCTS[(index // len(COLOURS)) % len(PRODUCTS)]} {index}"


def created_ms(rng: random.Random) -> int:
    """A creation time inside the seed window."""
    return SEED_EPOCH_MS + int(rng.random() * SEED_SPAN_MS)


def pick_problems(rng: random.Random, ids: Sequence[int], rates: dict[str, float]) -> dict[str, list[int]]:
    """Disjoint sets of ids per problem, each `round(rate * len(ids))` large (at least one if the rate > 0)."""
    wanted = {name: max(1, round(rate * len(ids))) if rate > 0 else 0 for name, rate in rates.items()}
    chosen = rng.sample(list(ids), min(len(ids), sum(wanted.values())))
    problems: dict[str, list[int]] = {}
    start = 0
    for name, n in wanted.items():
        problems[name] = sorted(chosen[start : start + n])
        start += n
    return problems
