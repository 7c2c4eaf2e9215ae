"""Flat files in a drop folder: CSV exports read once each, then moved to `done/`, `failed/` or `quarantine/`.

Each file is taken to be a full export (the ERP's nightly snapshot) named for its night
(`ITM_MST_20261201.csv`: the 8-digit date in the name), so the newest one is what the system
holds now (`scan`). Files are taken in the order of their nights. New files are announced by
`arrivals`, which the file-arrival sensor polls.

Only regular files inside the folder are read: a symlink (or anything else) is quarantined, and
every file is opened without following links. A file is also quarantined, never committed, when
its name holds no valid night or a night that has not begun anywhere on Earth (it would sort
after every real export and hide them), when it has no rows, or when it has fewer rows than the
API's `min_share_of_previous` of the last export committed. `quarantined()` names them for the
owners' alert.

The API's base URL is the folder; the resource is a file pattern with the file's dialect,
`ITM_MST_*.csv?encoding=latin-1&delimiter=;&decimal=,&datetime=%d.%m.%Y %H:%M:%S`. Rows come
out as dicts keyed by the header, so a binding maps canonical fields to header names. Decimal
commas and local date formats are rewritten to what the canonical model reads (1234.5, ISO 8601).
"""

from __future__ import annotations

import csv
import glob
import logging
import os
import re
import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from integration_project.connectors.base import Connector, Page, Patterns
from integration_project.model import Api

log = logging.getLogger(__name__)
PAGE = 1000
_DECIMAL = re.compile(r"^-?\d+,\d+$")
_NIGHT = re.compile(r"(?<!\d)\d{8}(?!\d)")
_LATEST_OFFSET = timedelta(hours=14)  # UTC+14 (Kiribati): where a date begins first


class NotRegularFile(OSError):
    """A name in the drop folder that is a symlink, a pipe or a device, not a file of its own."""


def _night(name: str) -> date | None:
    """The night a file is named for (its first 8-digit YYYYMMDD), or None when the name holds no valid date."""
    found = _NIGHT.search(name)
    try:
        return datetime.strptime(found.group(), "%Y%m%d").date() if found else None
    except ValueError:  # 99999999
        return None


def _order(name: str) -> tuple[str, str]:
    """Files by night, then name; a name without a night first (it is never read, only quarantined)."""
    found = _night(name)
    return (found.isoformat() if found else "", name)


def _refused_name(name: str) -> str | None:
    """Why a file's name cannot be an export, or None."""
    found = _night(name)
    if found is None:
        return "its name holds no night (YYYYMMDD)"
    if found > (datetime.now(UTC) + _LATEST_OFFSET).date():
        return f"it is named for {found:%Y-%m-%d}, a night that has not come yet"
    return None


def _too_small(rows: int, previous: int | None, share: float) -> str | None:
    """Why an export's row count is suspicious next to the last committed one, or None."""
    if rows == 0:
        return "it has no rows (header only)"
    if previous and rows < share * previous:
        return f"it has {rows} rows, under {share:.0%} of the {previous} of the last export committed"
    return None


def _dialect(resource: str) -> tuple[str, dict[str, str]]:
    """The file pattern and its options; values are taken literally (no URL decoding: `%d`)."""
    pattern, _, query = resource.partition("?")
    options = dict(part.partition("=")[::2] for part in query.split("&") if part)
    return pattern, options


class DropFolder(Connector):
    """New files of a pattern, oldest night first; a file's cursor comes with its last rows.

    The cursor is the last file name committed. Files it covers are moved to `done/` when the
    next read starts, so a file leaves the folder only once its rows are surely in the hub (the
    engine may read ahead of what it has committed), and is never read twice. A file that
    cannot be decoded, or whose rows do not match its header, goes to `failed/` and is logged;
    one that cannot be an export goes to `quarantine/` (module docstring) and is never committed.
    """

    extracts = Patterns({"*"})
    snapshots = extracts  # each file is the whole export: a row gone from the next one was deleted

    def __init__(self, api: Api):
        self.folder = Path(api.url().removeprefix("file://"))
        self.min_share = api.min_share_of_previous
        self._quarantined: dict[str, str] = {}

    def quarantined(self) -> dict[str, str]:
        """The files this connector moved to `quarantine/` (name -> reason)."""
        return dict(self._quarantined)

    def arrivals(self, resource: str, after: str | None) -> list[str]:
        """Names of the files of this pattern after `after` (by night), pending or already done, in order.

        A name that cannot be an export (no night, or a future one) or that is not a regular file is
        never announced: it would move the sensor's cursor past every real export.
        """
        pattern, _ = _dialect(resource)
        names = {p.name for folder in (self.folder, self.folder / "done") for p in self._files(folder, pattern)
                 if stat.S_ISREG(p.lstat().st_mode) and _refused_name(p.name) is None}
        return sorted((n for n in names if after is None or _order(n) > _order(after)), key=_order)

    def scan(self, resource: str) -> Iterator[dict[str, Any]]:
        """The rows of the newest readable export, pending or done; nothing is moved."""
        pattern, options = _dialect(resource)
        files = [p for folder in (self.folder, self.folder / "done") for p in self._files(folder, pattern)
                 if _refused_name(p.name) is None]
        for path in sorted(files, key=lambda p: _order(p.name), reverse=True):
            try:
                yield from self._read(path, options)
                return
            except (UnicodeDecodeError, csv.Error, ValueError, OSError):
                continue

    def changed(self, resource: str, since: str | None) -> Iterator[dict[str, Any]]:
        """The rows of every readable export after the cursor, pending or done; nothing is moved."""
        _, options = _dialect(resource)
        for name in self.arrivals(resource, since):
            for path in (self.folder / name, self.folder / "done" / name):
                try:
                    rows = self._read(path, options)
                except (UnicodeDecodeError, csv.Error, ValueError, OSError):
                    continue
                yield from rows
                break

    def pages(self, resource: str, since: str | None) -> Iterator[Page]:
        """Rows of every file after the cursor, up to PAGE rows at a time."""
        pattern, options = _dialect(resource)
        previous = self._rows_of(since, options) if since is not None else None
        for path in sorted(self._files(self.folder, pattern), key=lambda p: _order(p.name)):
            refused = None if stat.S_ISREG(path.lstat().st_mode) else "it is not a regular file (a symlink?)"
            if refused or (refused := _refused_name(path.name)):
                self._quarantine(path, refused)
                continue
            if since is not None and _order(path.name) <= _order(since):
                self._move(path, "done")
                continue
            try:
                rows = self._read(path, options)
            except NotRegularFile as exc:  # swapped for a link since it was listed
                self._quarantine(path, str(exc))
                continue
            except (UnicodeDecodeError, csv.Error, ValueError) as exc:
                log.warning("%s moved to failed/: %s", path.name, exc)
                self._move(path, "failed")
                continue
            if refused := _too_small(len(rows), previous, self.min_share):
                self._quarantine(path, refused)
                continue
            previous = len(rows)
            for start in range(0, len(rows), PAGE):
                last = start + PAGE >= len(rows)
                yield Page(rows[start:start + PAGE], path.name if last else None)

    def _files(self, folder: Path, pattern: str) -> list[Path]:
        """What matches the pattern in the drop folder or its done/, directories aside (done/ as a symlink: nothing)."""
        if folder != self.folder and folder.is_symlink() or not folder.is_dir():
            return []
        found = []
        for path in folder.glob(pattern):
            try:
                if not stat.S_ISDIR(path.lstat().st_mode):
                    found.append(path)
            except FileNotFoundError:  # moved by another flow's run meanwhile
                continue
        return found

    def _rows_of(self, name: str, options: dict[str, str]) -> int | None:
        """How many rows the committed export `name` has (in done/, or still pending); None when it is gone."""
        for path in (p for folder in (self.folder / "done", self.folder) for p in self._files(folder, glob.escape(name))):
            try:
                with _open_regular(path, options) as f:
                    return max(sum(1 for _ in csv.reader(f, delimiter=options.get("delimiter", ","))) - 1, 0)
            except (OSError, UnicodeDecodeError, csv.Error):
                continue
        return None

    @staticmethod
    def _read(path: Path, options: dict[str, str]) -> list[dict[str, Any]]:
        with _open_regular(path, options) as f:
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

    def _quarantine(self, path: Path, reason: str) -> None:
        """Set a file aside in quarantine/, unread and never committed, for the owners to look at."""
        log.warning("%s moved to quarantine/: %s", path.name, reason)
        self._move(path, "quarantine")
        self._quarantined[path.name] = reason

    def _move(self, path: Path, to: str) -> None:
        (self.folder / to).mkdir(exist_ok=True)
        shutil.move(path, self.folder / to / path.name)  # a symlink is moved itself, not its target


def _open_regular(path: Path, options: dict[str, str]) -> TextIO:
    """Open a regular file for reading as text, never through a symlink (O_NOFOLLOW) nor a pipe."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if path.is_symlink():
            raise NotRegularFile(f"{path.name} is a symlink") from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(f"{path.name} is not a regular file")
    return os.fdopen(fd, encoding=options.get("encoding", "utf-8"), newline="")


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
