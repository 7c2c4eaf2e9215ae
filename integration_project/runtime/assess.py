"""Data-quality assessment of a source before go-live: read-only, every record through the model."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from integration_project.connectors import Connector
from integration_project.model.binding import Binding
from integration_project.model.data_object import DataObject
from integration_project.model.mapping import to_canonical
from integration_project.settings import data_dir

CODE_CARDINALITY = 20  # a field with at most this many distinct values is reported as codes
NEARLY_UNIQUE = 0.9  # a field whose values are this distinct reports the values several records share
EXAMPLES = 3


def assess(connector: Connector, binding: Binding, obj: DataObject) -> dict[str, Any]:
    """Per field: invalid and missing counts with examples, values padded with white space, values
    several records share (in nearly unique fields), code distributions, records whose value changed
    after creation (where the source keeps history); broken record-level rules; duplicates.

    Reads every record of the source (a full scan) and writes nothing anywhere. Example values of
    personal-data fields are masked.
    """
    total, invalid_records = 0, 0
    invalid: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    examples: dict[str, list[dict[str, str]]] = defaultdict(list)
    values: dict[str, Counter[str]] = defaultdict(Counter)
    folded: dict[str, Counter[str]] = defaultdict(Counter)  # values trimmed and case-folded
    padded: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    ids: Counter[str] = Counter()
    keys: dict[str, dict[str, list[str]]] = {k: defaultdict(list) for k in obj.match_keys}
    changed: Counter[str] = Counter()
    changed_records, has_history, field_history = 0, False, False
    # a consumer's composed fields that hold one canonical field as is ({first_name}) are read back too
    mapping = {**binding.mapping, **{m[1]: path for path, template in binding.compose.items()
                                     if (m := re.fullmatch(r"\{(\w+)\}", template)) and m[1] not in binding.mapping}}
    fields_of = {path: field for field, path in mapping.items()}
    for raw, versions in connector.versions(binding.resource, list(mapping.values())):
        total += 1
        has_history = has_history or bool(versions)
        field_history = field_history or any(path != "*" for path in versions)
        edited = [fields_of.get(path, "*") for path, n in versions.items() if n > 1]  # "*": the whole record
        changed.update(edited)
        changed_records += bool(edited)
        data = to_canonical(raw, mapping, binding.values)
        ours = data.get(obj.identity_key)
        rid = str(ours if ours is not None else raw.get("id"))  # a consumer's record not from us: its own id
        ids[rid] += 1
        for field, value in data.items():
            if value in (None, ""):
                missing[field] += 1
            elif not isinstance(value, (dict, list)):
                values[field][str(value)] += 1
                folded[field][str(value).strip().casefold()] += 1
                padded[field] += isinstance(value, str) and value != value.strip()
        for key in obj.match_keys:
            if data.get(key) not in (None, ""):
                keys[key][str(data[key]).strip().lower()].append(rid)
        try:
            obj.model.model_validate(data)
        except ValidationError as exc:
            invalid_records += 1
            for error in exc.errors():
                if not error["loc"]:  # a rule over the whole record (e.g. shipped needs tracking)
                    rules[error["msg"]] += 1
                    continue
                field = str(error["loc"][0])
                if error["type"] == "missing" or data.get(field) in (None, ""):
                    continue  # counted as missing
                invalid[field] += 1
                if len(examples[field]) < EXAMPLES:
                    shown = "***" if field in obj.pii else str(data.get(field))
                    examples[field].append({"id": rid, "value": shown, "error": error["msg"]})
    fields = {}
    for field in mapping:
        distinct, same = values.get(field, Counter()), folded.get(field, Counter())
        present = total - missing[field]
        fields[field] = {
            "invalid": invalid[field], "invalid_rate": _rate(invalid[field], total),
            "missing": missing[field], "missing_rate": _rate(missing[field], total),
            "examples": examples.get(field, []),
            "codes": dict(distinct.most_common()) if 0 < len(distinct) <= CODE_CARDINALITY
            and field not in obj.pii else None,
            "changed": changed[field] if field_history else None,
            "padded": padded[field],
            "repeated": sum(1 for n in same.values() if n > 1)
            if present and len(same) >= NEARLY_UNIQUE * present else None,
        }
    return {
        "object": obj.name, "records": total, "invalid_records": invalid_records, "fields": fields,
        "changed_records": changed_records if has_history else None,
        "rules": dict(rules.most_common()),
        "duplicate_ids": sorted(i for i, n in ids.items() if n > 1),
        "duplicates": {key: sorted(sorted(group) for group in found.values() if len(group) > 1)
                       for key, found in keys.items()},
    }


def report_path(system: str, obj: str) -> Path:
    """Where the latest assessment of a system's object is kept (the local data folder)."""
    return data_dir() / "assessments" / f"{system}.{obj}.json"


def save(report: dict[str, Any]) -> Path:
    """Keep a report as the latest assessment of its system's object, stamped with the time."""
    path = report_path(report["system"], report["object"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**report, "assessed_at": datetime.now(UTC).isoformat(timespec="seconds")}, indent=1))
    return path


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """A report's counts without example values, for Dagster and the docs."""
    return {
        "assessed_at": report.get("assessed_at") or datetime.now(UTC).isoformat(timespec="seconds"),
        "records": report["records"], "invalid_records": report["invalid_records"],
        "changed_records": report["changed_records"],
        "duplicate_groups": {key: len(groups) for key, groups in report["duplicates"].items()},
        "rules": report["rules"],
        "fields": {name: {k: f[k] for k in ("invalid", "missing", "changed", "padded", "repeated")}
                   for name, f in report["fields"].items()},
    }


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0
