"""`Ledger`: a system that keeps its records in a JSON file (the API's base URL, file:///path)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from integration_project.connectors import Connector, Ours, Page
from integration_project.model import Api
from integration_project.model.mapping import get_path


class Ledger(Connector):
    """Records per resource in one JSON file, each with a change sequence; ids `L<n>`."""

    extracts = frozenset({"entries"})
    loads = frozenset({"entries"})

    def __init__(self, api: Api):
        self.path = Path(api.url().removeprefix("file://"))
        self._lock = threading.Lock()

    def _read(self) -> dict[str, list[dict[str, Any]]]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        changed = [r for r in self._read().get(resource, []) if r["seq"] > int(since or 0)]
        yield Page(changed, str(max((r["seq"] for r in changed), default=int(since or 0))))

    def index(self, resource: str, id_path: str) -> dict[str, str] | None:
        return {str(get_path(r, id_path)): r["id"] for r in self._read().get(resource, []) if get_path(r, id_path)}

    def upsert(self, resource: str, external_id: str | None, payload: dict[str, Any],
               ours: Ours | None = None) -> str:
        with self._lock:
            data = self._read()
            rows = data.setdefault(resource, [])
            seq = 1 + max((r["seq"] for rows_ in data.values() for r in rows_), default=0)
            rid = external_id or f"L{len(rows) + 1}"
            rows[:] = [r for r in rows if r["id"] != rid] + [{**payload, "id": rid, "seq": seq}]
            self.path.write_text(json.dumps(data))
        return rid
