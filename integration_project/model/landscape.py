"""The whole landscape: systems, objects, the flows they imply, and the checks across them."""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import networkx as nx
from croniter import croniter

from integration_project.errors import Problem, declaration_error
from integration_project.model.binding import Binding, Volume
from integration_project.model.data_object import DataObject
from integration_project.model.system import System
from integration_project.model.urls import credentials_in

_LAST = re.compile(r"\.?[^.\[\]]+$|\[\d+\]$")  # the last segment of a dotted field path


@dataclass(frozen=True)
class Location:
    """Where a declaration was written: its file, its line, and the lines of its fields."""

    path: str
    line: int | None = None
    field_lines: dict[str, int] = field(default_factory=dict)
    declared_as: dict[str, str] = field(default_factory=dict)  # a derived field -> the path written

    def named(self, field_path: str) -> str:
        """The field as the declaration spells it (a YAML object's `references.x` is `fields.x.object`)."""
        return self.declared_as.get(field_path, field_path)

    def of(self, field_path: str) -> str:
        """'path:line' of a field, falling back to its nearest declared parent, then the file."""
        probe = self.named(field_path)
        while probe:
            if probe in self.field_lines:
                return f"{self.path}:{self.field_lines[probe]}"
            parent = _LAST.sub("", probe)
            probe = parent if parent != probe else ""
        return f"{self.path}:{self.line}" if self.line else self.path


def choices(annotation: Any) -> set[str] | None:
    """The values a field of this type may hold, as text (a Literal's, an Enum's; None: any)."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return {str(m.value) for m in annotation}
    if get_origin(annotation) is Literal:
        return {str(a) for a in get_args(annotation)}
    if get_origin(annotation) in (Union, UnionType):
        found = [choices(a) for a in get_args(annotation) if a is not type(None)]
        if found and all(f is not None for f in found):
            return set().union(*found)  # type: ignore[arg-type]
    return None


def _owners(*groups: list[str]) -> list[str]:
    """Owners in order of appearance, each once."""
    return list(dict.fromkeys(o for group in groups for o in group))


@dataclass(frozen=True)
class Ingest:
    """Records of one object moving from its source of truth into the hub: the first leg of every
    flow of the object, and the only leg of an object nobody consumes yet."""

    object: DataObject
    source: System
    binding: Binding

    @property
    def name(self) -> str:
        """Its job and dead-letter flow name, e.g. invoice_billing_to_hub."""
        return f"{self.object.name}_{self.source.name}_to_hub"

    @property
    def realtime_name(self) -> str:
        """The job that carries one change to every realtime consumer at once (one run, one read
        of the source), and the name its change sensor starts with, e.g. customer_crm_realtime."""
        return f"{self.object.name}_{self.source.name}_realtime"

    @property
    def cursor_key(self) -> str:
        """Where the hub keeps how far it has read the source, e.g. billing/invoice."""
        return f"{self.source.name}/{self.object.name}"

    @property
    def inbound_refs(self) -> dict[str, str]:
        """References the source writes in its own ids (field -> object): those of objects the
        source receives from us, e.g. a billing invoice names a billing customer."""
        consumed = {b.object for b in self.source.bindings if b.role == "consumer"}
        return {f: target for f, target in self.object.references.items() if target in consumed}

    @property
    def owners(self) -> list[str]:
        """Who hears about it: the source system's owners, then the object's steward."""
        return _owners(self.source.owners, [self.object.owner])

    @property
    def events(self) -> list[str]:
        """The webhook event types that announce a change of this object at its source."""
        return self.binding.events


@dataclass(frozen=True)
class Flow:
    """Records of one object moving from its source of truth, through the hub, to one consumer."""

    ingest: Ingest
    consumer: System
    binding: Binding

    @property
    def object(self) -> DataObject:
        """The object that moves."""
        return self.ingest.object

    @property
    def source(self) -> System:
        """The object's source of truth."""
        return self.ingest.source

    @property
    def source_binding(self) -> Binding:
        """How the source holds the object."""
        return self.ingest.binding

    @property
    def name(self) -> str:
        """A Dagster-safe name, e.g. customer_crm_to_billing."""
        return f"{self.object.name}_{self.source.name}_to_{self.consumer.name}"

    @property
    def mode(self) -> str:
        """realtime or batch, as the consumer binding declares."""
        return self.binding.mode

    @property
    def volume(self) -> Volume | None:
        """Records per run the consumer expects: its binding's bounds, else the object's."""
        return self.binding.volume or self.object.volume

    @property
    def freshness_minutes(self) -> int | None:
        """Minutes after which the consumer's copy is stale: its binding's, else the object's."""
        return self.binding.freshness_minutes or self.object.freshness_minutes

    @property
    def owners(self) -> list[str]:
        """Who hears about it: the consumer's owners, the source's, then the object's steward."""
        return _owners(self.consumer.owners, self.source.owners, [self.object.owner])

    def admits(self, record: dict[str, Any]) -> bool:
        """True when a canonical record passes the consumer binding's `where` filter."""
        return all(str(record.get(f)) in allowed for f, allowed in self.binding.where.items())


@dataclass
class Landscape:
    """Every declared system and object, with where each was declared."""

    systems: dict[str, System]
    objects: dict[str, DataObject]
    locations: dict[str, Location] = field(default_factory=dict)  # "system x" / "object y"

    def source_of(self, obj: str) -> tuple[System, Binding] | None:
        """The object's source-of-truth system and binding (None when not exactly one)."""
        found = [(s, b) for s, b in self.bindings() if b.object == obj and b.role == "source"]
        return found[0] if len(found) == 1 else None

    def _first_source(self, obj: str) -> tuple[System, Binding] | None:
        """The first source binding of an object, in declaration order."""
        return next(((s, b) for s, b in self.bindings() if b.object == obj and b.role == "source"), None)

    def bindings(self) -> Iterator[tuple[System, Binding]]:
        """Every (system, binding) pair."""
        for system in self.systems.values():
            for binding in system.bindings:
                yield system, binding

    def ingests(self) -> dict[str, Ingest]:
        """The source -> hub leg of each object that has exactly one source of truth, by object."""
        legs = {}
        for name, obj in self.objects.items():
            if found := self.source_of(name):
                legs[name] = Ingest(obj, *found)
        return legs

    def flows(self) -> list[Flow]:
        """One flow per consumer binding of an object that has a source of truth."""
        legs = self.ingests()
        return [Flow(legs[b.object], system, b) for system, b in self.bindings()
                if b.role == "consumer" and b.object in legs]

    def leg(self, name: str) -> Ingest | Flow | None:
        """The leg (an ingest or a flow) of this name, as the DLQ and the ledger name it."""
        legs: dict[str, Ingest | Flow] = {i.name: i for i in self.ingests().values()}
        legs.update((f.name, f) for f in self.flows())
        return legs.get(name)

    def where(self, declaration: str, field_path: str = "") -> str:
        """'path:line' of a declaration's field, or '<unknown>'."""
        loc = self.locations.get(declaration)
        return loc.of(field_path) if loc else "<unknown>"

    def problems(self) -> list[Problem]:
        """Everything wrong across declarations; empty when the landscape is sound."""
        problems: list[Problem] = []

        def add(decl: str, field_path: str, message: str) -> None:
            loc = self.locations.get(decl)
            problems.append(Problem(self.where(decl, field_path), decl, loc.named(field_path) if loc else field_path,
                                    message))

        # Root causes first: a binding's unknown object or second source of truth, then what an
        # object lacks because of it (no source of truth), then the cycles across systems.
        for system in self.systems.values():
            self._check_credentials(f"system {system.name}", system.model_dump(), add)
            self._check_bindings(system, add)
        for obj in self.objects.values():
            self._check_credentials(f"object {obj.name}", obj.model_dump(exclude={"model"}), add)
            self._check_object(obj, add)
        self._check_cycles(add)
        from integration_project.model.needs import binding_problems  # it reads the landscape

        return problems + binding_problems(self)

    def validate(self) -> Landscape:
        """Raise DeclarationError listing every problem; return self when there are none."""
        if problems := self.problems():
            raise declaration_error(problems)
        return self

    def _check_credentials(self, decl: str, value, add, path: str = "") -> None:
        """Refuse a credential written into any URL of a declaration (the value is never echoed)."""
        if isinstance(value, dict):
            for key, child in value.items():
                self._check_credentials(decl, child, add, f"{path}.{key}" if path else str(key))
        elif isinstance(value, (list, tuple)):
            for i, child in enumerate(value):
                self._check_credentials(decl, child, add, f"{path}[{i}]")
        elif isinstance(value, str) and (found := credentials_in(value)):
            add(decl, path, f"the URL holds a credential, {found}: credentials come from environment "
                "variables; name one in base_url_env (the whole URL) or in auth (token_env, password_env, ...)")

    def _check_object(self, obj: DataObject, add) -> None:
        decl = f"object {obj.name}"
        if obj.identity_key not in obj.fields:
            add(decl, "identity_key", f"{obj.identity_key!r} is not a field of {obj.model.__name__}")
        for i, key in enumerate(obj.match_keys):
            if key not in obj.fields:
                add(decl, f"match_keys[{i}]", f"{key!r} is not a field of {obj.model.__name__}")
        for i, pii in enumerate(obj.pii):
            if pii not in obj.fields:
                add(decl, f"pii[{i}]", f"{pii!r} is not a field of {obj.model.__name__}")
        if not any(b.object == obj.name and b.role == "source" for _, b in self.bindings()):
            add(decl, "source_of_truth", "no system declares it as source of truth")
        for fname, target in obj.references.items():
            if fname not in obj.fields:
                add(decl, f"references.{fname}", f"{fname!r} is not a field of {obj.model.__name__}")
            if target not in self.objects:
                add(decl, f"references.{fname}", f"unknown object {target!r}")
        if not 0 <= obj.max_invalid_share <= 1:
            add(decl, "max_invalid_share", "must be a share between 0 and 1")
        binders = {s.name for s, b in self.bindings() if b.object == obj.name}
        for fname, system in obj.field_sources.items():
            where = f"field_sources.{fname}"
            if fname not in obj.fields:
                add(decl, where, f"{fname!r} is not a field of {obj.model.__name__}")
            if system not in self.systems:
                add(decl, where, f"unknown system {system!r}")
            elif system not in binders:
                add(decl, where, f"system {system!r} has no binding of {obj.name}")

    def _check_bindings(self, system: System, add) -> None:
        decl = f"system {system.name}"
        seen: set[str] = set()
        for i, b in enumerate(system.bindings):
            at = f"bindings[{i}]"
            if b.object in seen:
                add(decl, f"{at}.object", f"{b.object!r} is bound twice by this system")
            seen.add(b.object)
            obj = self.objects.get(b.object)
            if obj is None:
                near = difflib.get_close_matches(b.object, list(self.objects), n=1)
                add(decl, f"{at}.object", f"unknown object {b.object!r}"
                    + (f" (did you mean {near[0]!r}?)" if near else ""))
                continue
            if b.role == "source" and (first := self._first_source(b.object)) and first[0] is not system:
                other, other_binding = first
                where = self.where(f"system {other.name}", f"bindings[{other.bindings.index(other_binding)}]")
                add(decl, f"{at}.role", f"{b.object} has two sources of truth: {other.name} ({where}) and "
                    f"{system.name}; keep one, make the other binding a consumer")
            for canonical in b.mapping:
                if canonical not in obj.fields:
                    add(decl, f"{at}.mapping.{canonical}",
                        f"{obj.model.__name__} has no field {canonical!r}")
            for field_name in b.where:
                if field_name not in obj.fields:
                    add(decl, f"{at}.where.{field_name}",
                        f"{obj.model.__name__} has no field {field_name!r}")
            self._check_values(b, obj, at, lambda field_path, message: add(decl, field_path, message))
            for target, template in b.compose.items():
                names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
                for unknown in sorted(names - set(obj.fields)):
                    add(decl, f"{at}.compose.{target}",
                        f"{obj.model.__name__} has no field {unknown!r}")
            if b.cron is not None and not croniter.is_valid(b.cron):
                add(decl, f"{at}.cron", f"{b.cron!r} is not a valid cron expression")
            try:
                ZoneInfo(b.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                add(decl, f"{at}.timezone", f"unknown timezone {b.timezone!r}")
            if b.role == "consumer" and b.mode == "batch" and b.cron is None:
                add(decl, f"{at}.cron", "a batch consumer needs a cron schedule")
            if b.role == "source" and b.on_delete != "ignore":
                add(decl, f"{at}.on_delete", "only a consumer binding has an on_delete action")

    @staticmethod
    def _check_values(b: Binding, obj: DataObject, at: str, add) -> None:
        """A value map translates a mapped field, from values the object can hold; a source's map is
        read backwards, so no value of the system's may stand for two of ours."""
        for field_name, table in b.values.items():
            where = f"{at}.values.{field_name}"
            if field_name not in obj.fields:
                add(where, f"{obj.model.__name__} has no field {field_name!r}")
                continue
            if field_name not in b.mapping:
                add(where, f"{field_name!r} is not mapped: a value map translates the values of a field "
                    f"the binding's mapping sends to the system (add mapping.{field_name})")
                continue
            allowed = choices(obj.model.model_fields[field_name].annotation)
            for ours in table:
                if allowed is not None and ours not in allowed:
                    add(f"{where}.{ours}", f"{ours!r} is not a value of {obj.model.__name__}.{field_name} "
                        f"(one of {', '.join(sorted(allowed))})")
            if b.role == "source":
                theirs = [v for v in table.values() if v is not None]
                for twice in sorted({v for v in theirs if theirs.count(v) > 1}):
                    both = " and ".join(repr(k) for k, v in table.items() if v == twice)
                    add(where, f"the system's {twice!r} stands for {both}: a source's value map is read "
                        "backwards (the system's value -> ours), so each of its values may stand for one of ours")

    def _check_cycles(self, add) -> None:
        graph = nx.DiGraph()
        for flow in self.flows():
            if flow.mode == "realtime" and flow.source.name != flow.consumer.name:
                graph.add_edge(flow.source.name, flow.consumer.name, flow=flow)
        for cycle in nx.simple_cycles(graph):
            edges = [graph.edges[a, b]["flow"] for a, b in zip(cycle, cycle[1:] + cycle[:1])]
            if not any(f.binding.echo_suppression for f in edges):
                path = " -> ".join([*cycle, cycle[0]])
                first = edges[0]
                index = first.consumer.bindings.index(first.binding)
                add(f"system {first.consumer.name}", f"bindings[{index}].echo_suppression",
                    f"realtime cycle {path} has no echo rule: set echo_suppression on one of its bindings")
