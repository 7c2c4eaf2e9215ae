"""Field mapping between a system's own shape and the canonical model (dotted paths)."""

from __future__ import annotations

import functools
import hashlib
from _json import encode_basestring_ascii, make_encoder  # json.encoder's C accelerators
from collections import Counter
from collections.abc import Callable
from typing import Any

_MISSING = object()
Values = dict[str, dict[str, str | None]]  # a binding's value map: canonical field -> {ours: the system's}


def get_path(record: Any, path: str) -> Any:
    """The value at a dotted path ('properties.email', 'variants.0.sku'); None when absent."""
    value = record
    for part in _parts(path):
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            value = _MISSING
        if value is _MISSING:
            return None
    return value


@functools.lru_cache(maxsize=4096)
def _parts(path: str) -> tuple[str, ...]:
    """A dotted path split once (mappings apply the same few paths to every record)."""
    return tuple(path.split("."))


def set_path(target: dict[str, Any], path: str, value: Any) -> None:
    """Set a value at a dotted path, creating nested dicts."""
    *parents, leaf = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def inverse(values: Values | None) -> dict[str, dict[str, str]]:
    """A value map read backwards: canonical field -> {the system's value: ours}. A system value two
    of ours map onto is left out (it says nothing about which of ours it was), as is null."""
    back: dict[str, dict[str, str]] = {}
    for field, table in (values or {}).items():
        theirs = Counter(v for v in table.values() if v is not None)
        back[field] = {v: ours for ours, v in table.items() if v is not None and theirs[v] == 1}
    return back


def _translated(out: dict[str, Any], back: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A canonical record with each value a value map lists read as ours (others kept as read)."""
    for field, table in back.items():
        if (value := out.get(field)) is not None:
            out[field] = table.get(str(value), value)
    return out


def to_canonical(raw: dict[str, Any], mapping: dict[str, str], values: Values | None = None) -> dict[str, Any]:
    """A system record in the canonical shape (fields not mapped are left out), its values read
    through the binding's value map backwards."""
    return _translated({canonical: get_path(raw, path) for canonical, path in mapping.items()}, inverse(values))


def canonical_mapper(mapping: dict[str, str], values: Values | None = None
                     ) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`to_canonical` for one mapping, for many records: its paths split once, a path of plain
    keys read without a call per field (the common case); any other path through `get_path`."""
    plain = [(canonical, _parts(path)) for canonical, path in mapping.items()]
    back = inverse(values)

    def mapped(raw: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for canonical, parts in plain:
            value: Any = raw
            for part in parts:
                if type(value) is dict:
                    value = value.get(part, _MISSING)
                    if value is _MISSING:
                        value = None
                        break
                else:  # a list index, a value that is no dict, or a dict subclass: the general rule
                    value = get_path(raw, ".".join(parts))
                    break
            out[canonical] = value
        return _translated(out, back) if back else out

    return mapped


def to_system(canonical: dict[str, Any], mapping: dict[str, str],
              compose: dict[str, str], values: Values | None = None) -> dict[str, Any]:
    """A canonical record in a consumer's shape: mapped fields, then composed ones (over our values).
    A field with a value map is sent as the system's value, and left out when the map lists none."""
    out: dict[str, Any] = {}
    for field, path in mapping.items():
        value = canonical.get(field)
        if value is not None and values and field in values:
            value = values[field].get(str(value))
        if value is not None:
            set_path(out, path, value)
    for path, template in compose.items():
        set_path(out, path, template.format_map({k: v or "" for k, v in canonical.items()}).strip())
    return out


# The C encoder `json.dumps(data, sort_keys=True, default=str)` builds on every call (with
# `JSONEncoder.iterencode`'s arguments, check_circular off: canonical data holds no cycles), built
# once: the same text, in ~40 % of the time.
_ENCODE = make_encoder(None, str, encode_basestring_ascii, None, ": ", ", ", True, False, True)


def canonical_json(data: dict[str, Any]) -> str:
    """A canonical record as the hub stores it: JSON with sorted keys, so the same data is the same text."""
    return "".join(_ENCODE(data, 0))


def text_hash(text: str) -> str:
    """The content hash of a record's canonical JSON (see `content_hash`)."""
    return hashlib.sha256(text.encode()).hexdigest()


def content_hash(data: dict[str, Any]) -> str:
    """A stable hash of a canonical record: the idempotency key's version part."""
    return text_hash(canonical_json(data))
