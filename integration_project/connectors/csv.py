"""Flat files in a drop folder: CSV exports read once each, then moved to `done/` or `failed/`.

Each file is taken to be a full export (the ERP's nightly snapshot), so the newest one is what the
system holds now (`scan`). New files are announced by `arrivals`, which the file-arrival sensor polls.

The API's base URL is the folder; the resource is a file pattern with the file's dialect,
`ITM_MST_*.csv?encoding=latin-1&delimiter=;&decimal=,&datetime=%d.%m.%Y %H:%M:%S`. Rows come
out as dicts keyed by the header, so a binding maps canonical fields to header names. Decimal
commas and local date formats are rewritten to what the canonical model reads (1234.5, ISO 8601).
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from integration_project.connectors.base import Connector, Page, Patterns
from integration_project.model import Api

log = logging.getLogger(__name__)
PAGE = 1000
_DECIMAL = re.compile(r"^-?\d+,\d+$")


def _dialect(resource: str) -> tuple[str, dict[str, str]]:
    """The file pattern and its options; values are taken literally (no URL decoding: `%d`)."""
    pattern, _, query = resource.partition("?")
    options = dict(part.partition("=")[::2] for part in query.split("&") if part)
    return pattern, options


class DropFolder(Connector):
    """New files of a pattern, oldest name first; a file's cursor comes with its last rows.

    The cursor is the last file name committed. Files it covers are moved to `done/` when the
    next read starts, so a file leaves the folder only once its rows are surely in the hub (the
    engine may read ahead of what it has committed), and is never read twice. A file that
    cannot be decoded, or whose rows do not match its header, goes to `failed/` and is logged.
    """

    extracts = Patterns({"*"})

    def __init__(self, api: Api):
        self.folder = Path(api.url().removeprefix("file://"))

    def arrivals(self, resource: str, after: str | None) -> list[str]:
        """Names of the files of this pattern named after `after`, pending or already done, in order."""
        pattern, _ = _dialect(resource)
        names = {p.name for folder in (self.folder, self.folder / "done") for p in folder.glob(pattern) if p.is_file()}
        return sorted(n for n in names if after is None or n > after)

    def scan(self, resource: str) -> Iterator[dict[str, Any]]:
        """The rows of the newest readable export, pending or done; nothing is moved."""
        pattern, options = _dialect(resource)
        files = [p for folder in (self.folder, self.folder / "done") for p in folder.glob(pattern) if p.is_file()]
        for path in sorted(files, key=lambda p: p.name, reverse=True):
            try:
                yield from self._read(path, options)
                return
            except (UnicodeDecodeError, csv.Error, ValueError):
                continue

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Rows of every file after the cursor, up to PAGE rows at a time."""
        pattern, options = _dialect(resource)
        for path in sorted(p for p in self.folder.glob(pattern) if p.is_file()):
            if since is not None and path.name <= since:
                self._move(path, "done")
                continue
            try:
                rows = self._read(path, options)
            except (UnicodeDecodeError, csv.Error, ValueError) as exc:
                log.warning("%s moved to failed/: %s", path.name, exc)
                self._move(path, "failed")
                continue
            for start in range(0, max(len(rows), 1), PAGE):
                last = start + PAGE >= len(rows)
                yield Page(rows[start:start + PAGE], path.name if last else None)

    @staticmethod
    def _read(path: Path, options: dict[str, str]) -> list[dict[str, Any]]:
        with path.open(encoding=options.get("encoding", "utf-8"), newline="") as f:
            reader = csv.reader(f, delimiter=options.get("delimiter", ","))
            header = next(reader, None)
            if not header:
                raise ValueError("no header row")
            rows = []
            for number, values in enumerate(reader, start=2):
                if len(values) != len(header):
                    raise ValueError(f"line {number}: {len(values)} fields, the header has {len(header)}")
                rows.append({k: _value(v, options) for k, v in zip(header, values, strict=True)})
        return rows

    def _move(self, path: Path, to: str) -> None:
        (self.folder / to).mkdir(exist_ok=True)
        shutil.move(path, self.folder / to / path.name)


def _value(text: str, options: dict[str, str]) -> str | None:
    """A field as the canonical model reads it: empty is missing, decimal commas and dates rewritten."""
    if text == "":
        return None
    if options.get("decimal") == "," and _DECIMAL.match(text):
        return text.replace(",", ".")
    if "datetime" in options:
        try:
            return datetime.strptime(text, options["datetime"]).isoformat()
        except ValueError:
            pass
    return text
