"""The plain JSON API style shared by inventory and fulfilment: `{"data": [...], "next_cursor": ...}`."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._app import BadRequest, bounded, int_param, parse_time
from ._store import Record, Store, objects
from ._webhooks import event


def error_body(status: int, message: str) -> dict[str, Any]:
    """`{"error": {"code": ..., "message": ...}}`."""
    codes = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
             409: "conflict", 422: "unprocessable"}
    return {"error": {"code": codes.get(status, "error"), "message": message}}


def cursor_list(request: Request, store: Store, kind: str, shape: Callable[[Record], dict[str, Any]]) -> Response:
    """One page in (modification time, id) order: `limit` (1..500), `cursor`, `updated_since` (ISO 8601)."""
    limit = int_param(request, "limit", 100, 1, 500)
    cursor = request.query_params.get("cursor")
    if cursor:
        try:
            since, after = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            since, after = bounded(int(since), "cursor"), bounded(int(after), "cursor")
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, OverflowError):
            raise BadRequest(400, "invalid cursor") from None
    else:
        raw = request.query_params.get("updated_since")
        since, after = (parse_time(raw, "updated_since") if raw else 0), -1
    condition = (objects.c.updated_ms > since) | ((objects.c.updated_ms == since) & (objects.c.id > after))
    _, records = store.page(kind, 0, limit + 1, [condition], by_modified=True)
    more = len(records) > limit
    records = records[:limit]
    next_cursor = None
    if more:
        last = records[-1]
        next_cursor = base64.urlsafe_b64encode(json.dumps([last.updated_ms, last.id]).encode()).decode().rstrip("=")
    return JSONResponse({"data": [shape(r) for r in records], "next_cursor": next_cursor, "has_more": more})


def emit(store: Store, type_: str, data: dict[str, Any], event_id: str) -> None:
    """Queue a Standard Webhooks event `{"type", "timestamp", "data"}`."""
    payload = {"type": type_, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "data": data}
    store.enqueue([event(event_id, type_, payload)], time.time())
