"""Loading the Definitions is pure: one commit gives the same docs fingerprint in any folder, on
any machine, whatever local state one of them has (here: an `integrations assess` run)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def checkout(folder: Path) -> Path:
    """The project's files as a fresh clone has them (no .data, no .dagster_home)."""
    folder.mkdir(parents=True)
    for name in ("pyproject.toml", "workspace.yaml"):
        shutil.copy(ROOT / name, folder / name)
    for package in ("integration_project", "definitions", "docs_gen"):
        shutil.copytree(ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def integrations(folder: Path, env: dict[str, str], *args: str) -> str:
    """Run the CLI from this checkout's code, in its folder, with its own local state."""
    done = subprocess.run([str(BIN / "integrations"), *args], cwd=folder, capture_output=True, text=True,
                          timeout=600, env={**env, "PYTHONPATH": str(folder),
                                            "INTEGRATIONS_DATA_DIR": str(folder / ".data"),
                                            "DAGSTER_HOME": str(folder / ".dagster_home")})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def fingerprint(output: str) -> str:
    return re.search(r"fingerprint ([0-9a-f]{12})", output)[1]


def test_two_checkouts_give_the_same_fingerprint_after_one_of_them_assessed(sandbox, business_env, tmp_path):
    env = {**os.environ, **business_env}
    one, other = checkout(tmp_path / "one"), checkout(tmp_path / "elsewhere" / "two")
    (one / ".dagster_home").mkdir()
    (other / ".dagster_home").mkdir()
    integrations(one, env, "assess", "crm/customer", "--json")
    assert list((one / ".data" / "assessments").glob("*.json"))  # local state exists in one of them only

    built_one = integrations(one, env, "docs", "build", "--out", str(tmp_path / "site-one"))
    built_other = integrations(other, env, "docs", "build", "--out", str(tmp_path / "site-two"))
    assert fingerprint(built_one) == fingerprint(built_other)
    assert not (other / ".data").exists()  # loading and documenting created no local state
    # the assessment is shown where it was observed, and only there
    page = "assets/crm/customer.html"
    assert "Data-quality assessment" in (tmp_path / "site-one" / page).read_text()
    assert "Data-quality assessment" not in (tmp_path / "site-two" / page).read_text()
