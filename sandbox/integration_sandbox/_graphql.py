"""A GraphQL endpoint held to a vendor's published schema: graphql-core validates and executes every
document against the schema built from the vendor's introspection result, so an answer conforms by
construction; Shopify's calculated query cost is charged to a leaky bucket before execution."""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from graphql import (FieldNode, FragmentDefinitionNode, FragmentSpreadNode, GraphQLError, GraphQLSchema,
                     InlineFragmentNode, OperationDefinitionNode, OperationType, SelectionSetNode,
                     build_client_schema, execute, get_named_type, is_leaf_type, is_list_type, parse, validate)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.type import GraphQLNamedType
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

SPECS = Path(__file__).parent / "specs"
MAX_COST = 1000  # Shopify's single query limit, on the requested cost
MUTATION_COST = 10
MAX_PAGE = 250
DOCS = "https://shopify.dev/api/usage/rate-limits"


@cache
def load_schema(name: str) -> GraphQLSchema:
    """A schema from a kept introspection result (`specs/<name>.json.gz`)."""
    return build_client_schema(json.loads(gzip.decompress((SPECS / f"{name}.json.gz").read_bytes()))["data"])


@dataclass
class Bucket:
    """Shopify's leaky bucket of cost points: `maximum` held, `restore` points a second flowing back."""

    maximum: float = 2000.0
    restore: float = 100.0
    available: float = -1.0  # full unless set
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.available < 0:
            self.available = self.maximum

    def level(self) -> float:
        """The points available now."""
        now = time.monotonic()
        self.available = min(self.maximum, self.available + (now - self.at) * self.restore)
        self.at = now
        return self.available

    def take(self, points: float) -> bool:
        """Take the points if they are there."""
        if points > self.level():
            return False
        self.available -= points
        return True

    def refund(self, points: float) -> None:
        """Give back what a query did not cost after all."""
        self.available = min(self.maximum, self.level() + points)

    def status(self) -> dict[str, float]:
        """The bucket as Shopify reports it in `extensions.cost.throttleStatus`."""
        return {"maximumAvailable": self.maximum, "currentlyAvailable": round(self.level(), 1),
                "restoreRate": self.restore}


def query_cost(schema: GraphQLSchema, operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode],
               variables: dict[str, Any], data: dict[str, Any] | None = None) -> int:
    """The operation's cost by Shopify's rules: objects 1, scalars and enums 0, a connection 2 plus
    each node's cost times `first`/`last` (requested) or times the nodes returned (actual, from
    `data`), each mutation field 10."""
    root = schema.mutation_type if operation.operation == OperationType.MUTATION else schema.query_type
    assert root is not None
    if operation.operation == OperationType.MUTATION:
        return MUTATION_COST * sum(isinstance(s, FieldNode) for s in operation.selection_set.selections)
    return _cost(schema, root, operation.selection_set, fragments, variables, data, data is not None)


def _cost(schema: GraphQLSchema, parent: GraphQLNamedType, selection: SelectionSetNode,
          fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any], data: Any, actual: bool) -> int:
    total = 0
    for node in selection.selections:
        if isinstance(node, (InlineFragmentNode, FragmentSpreadNode)):
            inner = fragments[node.name.value] if isinstance(node, FragmentSpreadNode) else node
            condition = inner.type_condition
            typ = schema.get_type(condition.name.value) if condition else parent
            assert typ is not None
            total += _cost(schema, typ, inner.selection_set, fragments, variables, data, actual)
            continue
        assert isinstance(node, FieldNode)
        definition = getattr(parent, "fields", {}).get(node.name.value)
        if definition is None or node.selection_set is None:  # __typename, scalars, enums
            continue
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            continue
        value = data.get(node.alias.value if node.alias else node.name.value) if isinstance(data, dict) else None
        args = get_argument_values(definition, node, variables)
        if named.name.endswith("Connection"):
            total += 2 + _connection(schema, named, node.selection_set, fragments, variables, value, actual,
                                     int(args.get("first") or args.get("last") or 0))
        elif is_list_type(getattr(definition.type, "of_type", definition.type)):
            items = value if actual else [None] * int(args.get("first") or 1)
            total += sum(1 + _cost(schema, named, node.selection_set, fragments, variables, v, actual)
                         for v in items or [])
        elif not actual or value is not None:
            total += 1 + _cost(schema, named, node.selection_set, fragments, variables, value, actual)
    return total


def _connection(schema: GraphQLSchema, connection: GraphQLNamedType, selection: SelectionSetNode,
                fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any], value: Any,
                actual: bool, size: int) -> int:
    """The nodes' cost: `size` of them requested, or those in `value`."""
    node_type = schema.get_type(connection.name.removesuffix("Connection"))
    total = 0
    for part in selection.selections:
        if not isinstance(part, FieldNode) or part.selection_set is None or node_type is None:
            continue
        name = part.alias.value if part.alias else part.name.value
        if part.name.value == "nodes":
            items = (value or {}).get(name) or [] if actual else [None] * size
            total += sum(1 + _cost(schema, node_type, part.selection_set, fragments, variables, v, actual)
                         for v in items)
        elif part.name.value == "edges":
            edges = (value or {}).get(name) or [] if actual else [None] * size
            for edge in edges:
                for inner in part.selection_set.selections:
                    if isinstance(inner, FieldNode) and inner.name.value == "node" and inner.selection_set:
                        got = (edge or {}).get(inner.alias.value if inner.alias else "node") if actual else None
                        total += 1 + _cost(schema, node_type, inner.selection_set, fragments, variables, got, actual)
    return total


def _pages(schema: GraphQLSchema, operation: OperationDefinitionNode,
           fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any]) -> list[GraphQLError]:
    """Shopify's rule on every connection: `first` or `last`, at most 250."""
    problems: list[GraphQLError] = []

    def walk(parent: GraphQLNamedType, selection: SelectionSetNode) -> None:
        for node in selection.selections:
            if isinstance(node, (InlineFragmentNode, FragmentSpreadNode)):
                inner = fragments[node.name.value] if isinstance(node, FragmentSpreadNode) else node
                typ = schema.get_type(inner.type_condition.name.value) if inner.type_condition else parent
                walk(typ or parent, inner.selection_set)
                continue
            assert isinstance(node, FieldNode)
            definition = getattr(parent, "fields", {}).get(node.name.value)
            if definition is None or node.selection_set is None:
                continue
            named = get_named_type(definition.type)
            if named.name.endswith("Connection") and {"first", "last"} <= set(definition.args):
                args = get_argument_values(definition, node, variables)
                size = args.get("first") if args.get("first") is not None else args.get("last")
                if size is None:
                    problems.append(GraphQLError("you must provide one of first or last", node))
                elif not 0 <= size <= MAX_PAGE:
                    problems.append(GraphQLError(f"The value of the '{'first' if 'first' in args else 'last'}' "
                                                 f"argument must be between 0 and {MAX_PAGE}", node))
            walk(named, node.selection_set)

    root = schema.mutation_type if operation.operation == OperationType.MUTATION else schema.query_type
    assert root is not None
    walk(root, operation.selection_set)
    return problems


def _errors(*errors: GraphQLError | dict[str, Any]) -> dict[str, Any]:
    return {"errors": [e.formatted if isinstance(e, GraphQLError) else e for e in errors]}


class Endpoint:
    """`POST` of `{"query", "variables", "operationName"}` answered as Shopify does: HTTP 200 with
    `data` and `extensions.cost`, or `errors` (a document the schema refuses, a cost over the
    single query limit, `THROTTLED` when the bucket is short); 400 for a body that is no request."""

    def __init__(self, schema: GraphQLSchema, query: dict[str, Any], mutation: dict[str, Any], bucket: Bucket):
        self.schema, self.roots, self.bucket = schema, {"query": query, "mutation": mutation}, bucket

    async def handle(self, request: Request) -> Response:
        """The route's endpoint."""
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            body = None
        variables = body.get("variables") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not isinstance(variables, dict | None):
            return JSONResponse({"errors": {"query": "Required parameter missing or invalid"}}, 400)
        return JSONResponse(self.answer(body["query"], variables or {}, body.get("operationName")))

    def answer(self, text: str, raw: dict[str, Any], name: str | None) -> dict[str, Any]:
        """The answer to one GraphQL request."""
        try:
            document = parse(text)
        except GraphQLError as exc:
            return _errors(exc)
        problems = validate(self.schema, document)
        if problems:
            return _errors(*problems)
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)
                      and (name is None or (d.name is not None and d.name.value == name))]
        if len(operations) != 1:
            return _errors({"message": "An operation name is required" if operations else
                            f"No operation named \"{name}\""})
        operation = operations[0]
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        coerced = get_variable_values(self.schema, operation.variable_definitions or (), raw)
        if isinstance(coerced, list):
            return _errors(*coerced)
        problems = _pages(self.schema, operation, fragments, coerced)
        if problems:
            return _errors(*problems)
        requested = query_cost(self.schema, operation, fragments, coerced)
        if requested > MAX_COST:
            return _errors({"message": f"Query cost is {requested}, which exceeds the single query max cost "
                                       f"limit ({MAX_COST}).", "extensions": {"code": "MAX_COST_EXCEEDED",
                                                                              "cost": requested, "maxCost": MAX_COST}})
        if not self.bucket.take(requested):
            return {**_errors({"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": DOCS}}),
                    "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                            "throttleStatus": self.bucket.status()}}}
        mutation = operation.operation == OperationType.MUTATION
        result = execute(self.schema, document, self.roots["mutation" if mutation else "query"], None, raw,
                         operation.name.value if operation.name else None)
        assert not hasattr(result, "__await__")  # the resolvers are synchronous
        actual = query_cost(self.schema, operation, fragments, coerced, result.data or {})
        self.bucket.refund(requested - actual)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        answer["extensions"] = {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                                         "throttleStatus": self.bucket.status()}}
        return answer
