"""Requests and answers checked against a vendor's operations as its generated SDK sends them
(method, path, path and query parameters, body) and the answers' shapes (JSON Schema)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jsonschema

from tests.contracts.recording import Exchange


class Operations:
    """A vendor's operations (`operations.json`, from the SDK) and answers (`responses.json`) under `prefix`."""

    def __init__(self, folder: Path, prefix: str):
        self.operations: dict[str, dict[str, Any]] = json.loads((folder / "operations.json").read_text())
        self.responses: dict[str, Any] = json.loads((folder / "responses.json").read_text())
        self.prefix = prefix

    def operation(self, request: httpx.Request) -> str | None:
        """The operation a request is, by method and path template."""
        path = request.url.path.removeprefix(self.prefix)
        for name, op in self.operations.items():
            pattern = re.sub(r"\{[^}]+\}", "[^/]+", op["path"])
            if op["method"] == request.method and re.fullmatch(pattern, path):
                return name
        return None

    def request_problem(self, request: httpx.Request) -> str | None:
        """Why the vendor would refuse the request, or None."""
        where = f"{request.method} {request.url.path}"
        if not request.url.path.startswith(self.prefix + "/"):
            return f"{where}: not under {self.prefix}"
        name = self.operation(request)
        if name is None:
            return f"{where}: no such operation"
        op = self.operations[name]
        unknown = sorted(set(parse_qs(request.url.query.decode())) - set(op["query_params"]))
        if unknown:
            return f"{where}: {name} has no query parameter {', '.join(unknown)}"
        if op["body"] != bool(request.content):
            return f"{where}: {name} " + ("needs a body" if op["body"] else "takes no body")
        if op["body"]:
            try:
                json.loads(request.content)
            except ValueError:
                return f"{where}: the body is not JSON"
        if not _credentials(request.headers.get("authorization", "")):
            return f"{where}: no credentials in Mailchimp's form (Basic with the key as password, or Bearer)"
        return None

    def response_problem(self, exchange: Exchange) -> str | None:
        """Why the answer is not one the vendor gives to that request, or None."""
        request, response = exchange.request, exchange.response
        where = f"{request.method} {request.url.path} -> {response.status_code}"
        name = self.operation(request)
        if name is None:
            return f"{where}: no such operation"
        if name in self.responses["no_content"]:  # answered 204 with no body, or an error
            if response.status_code == 204:
                return f"{where}: a 204 with a body" if response.content else None
            if response.status_code < 300:
                return f"{where}: {name} is answered 204 No Content"
        schema = self.responses["operations"][name] if response.status_code < 300 else self.responses["error"]
        try:
            body = response.json()
        except ValueError:
            return f"{where}: not JSON"
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft7Validator({**schema, "definitions": self.responses["definitions"]}).iter_errors(body))
        if error is not None:
            return f"{where}: {error.message} at {'/'.join(map(str, error.absolute_path)) or 'the top'}"
        members = [] if response.status_code >= 300 else body.get("members", [body] if name.endswith("_list_member") else [])
        for m in members:
            if m["id"] != hashlib.md5(m["email_address"].lower().encode()).hexdigest():  # noqa: S324
                return f"{where}: member id {m['id']} is not the MD5 of its lower-cased email"
        return None


def _credentials(header: str) -> bool:
    scheme, _, value = header.partition(" ")
    if scheme == "Bearer":
        return bool(value)
    if scheme != "Basic":
        return False
    try:
        _, sep, key = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return False
    return bool(sep and key)
