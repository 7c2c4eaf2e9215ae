"""What a consumer binding must declare for its flow to run, checked before anything runs: the
mapping of the object's identity key, and every payload field a declared write's templates name."""

from __future__ import annotations

import re
from collections.abc import Callable

from integration_project.errors import Problem
from integration_project.model.binding import Binding
from integration_project.model.landscape import Landscape
from integration_project.model.rest import placeholders

COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED = {"external_id"}  # filled in by the connector, not the mapping


def binding_problems(landscape: Landscape) -> list[Problem]:
    """Every binding that would fail at run time for a field its mapping lacks."""
    problems: list[Problem] = []
    for system, binding in landscape.bindings():
        obj = landscape.objects.get(binding.object)
        if obj is None:
            continue  # reported as an unknown object
        decl, at = f"system {system.name}", f"bindings[{system.bindings.index(binding)}]"

        def add(field_path: str, message: str) -> None:
            problems.append(Problem(landscape.where(decl, field_path), decl, field_path, message))

        if binding.role != "consumer":
            continue  # a source record without a field the object needs is dead-lettered with the reason
        if obj.identity_key not in binding.mapping:
            add(f"{at}.mapping", f"no mapping of {obj.name}'s identity key {obj.identity_key!r}: a consumer needs "
                f"the field that holds our id, so a rerun finds and updates its records instead of creating them again")
        api = system.api_for(binding)
        if api is not None and api.connector == "sql":
            _table_problems(binding, at, add)
        resource = api.resources.get(binding.resource) if api else None
        if resource is None or resource.write is None:
            continue
        write = resource.write
        produced = {path.split(".")[0] for path in [*binding.mapping.values(), *binding.compose]}
        where = f"api.resources.{binding.resource}.write"
        named = [write.each.items] if write.each else [
            *(p for call in (write.create, write.update) if call for p in placeholders(call.path)),
            *(placeholders(write.id) if write.id else []),
            *(placeholders(write.idempotency_key) if write.idempotency_key else [])]
        for field in dict.fromkeys(f.split(".")[0] for f in named):
            if field not in produced and field not in RESERVED:
                add(f"{at}.mapping", f"{where} needs the payload field {field!r}, which the mapping does not produce")
    return problems


def _table_problems(binding: Binding, at: str, add: Callable[[str, str], None]) -> None:
    """A SQL consumer's table is created from its mapping: each target must be a plain column name."""
    for field, column in binding.mapping.items():
        if not COLUMN.fullmatch(column):
            add(f"{at}.mapping.{field}", f"{column!r} is no column name (letters, digits, _): the table "
                f"{binding.resource!r} cannot be created or migrated from this mapping")
    for column in binding.compose:
        if not COLUMN.fullmatch(column):
            add(f"{at}.compose.{column}", f"{column!r} is no column name (letters, digits, _)")
