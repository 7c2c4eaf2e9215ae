"""Requests and responses checked against a vendor's OpenAPI document by openapi-core.

The document's own server is taken as the request's host: a request sent to the sandbox on
loopback is checked as if it had been sent to the vendor.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.contracts.recording import Exchange


class _Request:
    """An httpx request as openapi-core reads one (its Request protocol)."""

    def __init__(self, request: httpx.Request, host_url: str):
        self.request, self.host_url = request, host_url
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(request.url.query.decode(), keep_blank_values=True)),
            header=Headers(dict(request.headers)), cookie=ImmutableMultiDict({}))

    @property
    def path(self) -> str:
        return self.request.url.path

    @property
    def method(self) -> str:
        return self.request.method.lower()

    @property
    def body(self) -> bytes | None:
        return self.request.content or None

    @property
    def content_type(self) -> str:
        return self.request.headers.get("Content-Type", "")


class _Response:
    """An httpx response as openapi-core reads one."""

    def __init__(self, response: httpx.Response):
        self.response = response

    @property
    def data(self) -> bytes:
        return self.response.content

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def content_type(self) -> str:
        return self.response.headers.get("Content-Type", "")

    @property
    def headers(self) -> Headers:
        return Headers(dict(self.response.headers))


def _errors(exc: Exception) -> str:
    """The validator's complaint with the schema errors under it (openapi-core nests them)."""
    parts = [f"{type(exc).__name__}: {exc}"]
    for inner in (exc.__cause__, *getattr(exc, "schema_errors", ()), *getattr(exc.__cause__, "schema_errors", ())):
        if inner is not None:
            parts.append(f"{getattr(inner, 'message', inner)}")
    return "; ".join(dict.fromkeys(parts))


def _json_for_any(node: Any) -> Any:
    """The document with each `*/*` body (HubSpot's error answers) also given as application/json:
    openapi-core parses a body only for a media type it knows, so a JSON answer under `*/*` would
    be checked as bytes against its schema."""
    if isinstance(node, list):
        return [_json_for_any(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _json_for_any(v) for k, v in node.items()}
    content = node.get("content")
    if isinstance(content, dict) and "*/*" in content and "application/json" not in content:
        node["content"] = {"application/json": content["*/*"], **content}
    return node


class Contract:
    """A vendor's OpenAPI documents (one per API family); a request is checked by the one whose
    paths hold it."""

    def __init__(self, files: Iterable[Path]):
        self.documents = [_json_for_any(json.loads(f.read_text())) for f in files]

    @cached_property
    def _apps(self) -> list[tuple[OpenAPI, dict[str, Any]]]:
        return [(OpenAPI.from_dict(doc), doc) for doc in self.documents]

    def _check(self, request: httpx.Request, response: httpx.Response | None = None) -> tuple[dict[str, Any], str | None]:
        """The document that holds the request's operation and the validator's complaint (None: valid)."""
        for app, doc in self._apps:
            wrapped = _Request(request, doc["servers"][0]["url"])
            try:
                with warnings.catch_warnings():  # OAuth2 is checked by _auth_problem
                    warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
                    if response is None:
                        app.validate_request(wrapped)
                    else:
                        app.validate_response(wrapped, _Response(response))
            except (PathNotFound, OperationNotFound):
                continue
            except OpenAPIError as exc:
                return doc, _errors(exc)
            return doc, None
        raise LookupError(f"{request.method} {request.url.path}: no such operation in the spec")

    def request_problem(self, request: httpx.Request) -> str | None:
        """Why the vendor's contract refuses this request (path, method, parameters, body, the
        credentials' form), or None."""
        try:
            doc, problem = self._check(request)
        except LookupError as exc:
            return str(exc)
        where = f"{request.method} {request.url.path}"
        return f"{where}: {problem}" if problem else _auth_problem(request, _schemes(doc, request))

    def response_problem(self, exchange: Exchange) -> str | None:
        """Why the vendor's contract would not give this answer to this request, or None."""
        request, response = exchange.request, exchange.response
        if response.status_code == 204 and not response.content:  # openapi-core wants data even for none
            return None if self._no_content(request) else \
                f"{request.method} {request.url.path} -> 204: not an answer the spec gives"
        try:
            _, problem = self._check(request, response)
        except LookupError as exc:
            return str(exc)
        return f"{request.method} {request.url.path} -> {response.status_code}: {problem}" if problem else None


    def _no_content(self, request: httpx.Request) -> bool:
        """Whether the request's operation answers 204 without a body."""
        for doc in self.documents:
            for template, ops in doc["paths"].items():
                op = ops.get(request.method.lower())
                if op is not None and _matches(template, request.url.path):
                    return "204" in op["responses"] and not op["responses"]["204"].get("content")
        return False


def _schemes(doc: dict[str, Any], request: httpx.Request) -> list[dict[str, Any]]:
    """The security schemes the request's operation accepts (any one is enough)."""
    for template, ops in doc["paths"].items():
        op = ops.get(request.method.lower())
        if op is not None and _matches(template, request.url.path):
            schemes = doc["components"].get("securitySchemes", {})
            return [{"name": name, **schemes[name]} for requirement in op.get("security", doc.get("security", []))
                    for name in requirement]
    return []


def _matches(template: str, path: str) -> bool:
    parts, given = template.strip("/").split("/"), path.strip("/").split("/")
    return len(parts) == len(given) and all(p.startswith("{") or p == g for p, g in zip(parts, given, strict=True))


def _auth_problem(request: httpx.Request, schemes: list[dict[str, Any]]) -> str | None:
    """The credentials' form against the operation's schemes: openapi-core checks API keys and
    HTTP auth but only warns on OAuth2, whose access tokens go as `Authorization: Bearer` (RFC 6750)."""
    if not schemes:
        return None
    for scheme in schemes:
        kind = scheme["type"]
        header = request.headers.get("Authorization", "")
        if kind == "oauth2" and header.startswith("Bearer ") and len(header) > 7:
            return None
        if kind == "http" and header.lower().startswith(scheme["scheme"].lower() + " "):
            return None
        if kind == "apiKey" and scheme["in"] == "header" and scheme["name"] in request.headers:
            return None
        if kind == "apiKey" and scheme["in"] == "query" and scheme["name"] in request.url.params:
            return None
    return f"{request.method} {request.url.path}: credentials in none of the forms {[s['name'] for s in schemes]}"
