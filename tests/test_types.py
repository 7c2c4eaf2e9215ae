"""The framework type-checks clean at the setting pyproject.toml chooses ([tool.mypy])."""

from __future__ import annotations

import os
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_finds_no_error_in_the_framework() -> None:
    cwd = Path.cwd()
    os.chdir(ROOT)  # mypy reads [tool.mypy] (files, plugins, overrides) from the project's pyproject
    try:
        report, errors, status = api.run(["--cache-dir", str(ROOT / ".mypy_cache")])
    finally:
        os.chdir(cwd)
    assert status == 0, report + errors
    assert "Success: no issues found" in report
