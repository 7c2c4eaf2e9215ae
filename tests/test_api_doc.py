"""docs/api.md lists the public API: every name `integration_project` exports, and no other."""

from __future__ import annotations

import re
from pathlib import Path

import integration_project

ROOT = Path(__file__).resolve().parents[1]


def _section() -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    return text.split("## `integration_project` (its `__all__`)", 1)[1].split("\n## ", 1)[0]


def test_every_exported_name_is_documented() -> None:
    missing = [n for n in integration_project.__all__ if not re.search(rf"`[^`]*\b{n}\b[^`]*`", _section())]
    assert missing == []


def test_every_name_the_tables_document_is_exported() -> None:
    cells = re.findall(r"^\| (.+?) \|", _section(), re.M)
    named = {m for cell in cells for m in re.findall(r"`(\w+)", cell)} - {"name"}
    assert named and named <= set(integration_project.__all__)
