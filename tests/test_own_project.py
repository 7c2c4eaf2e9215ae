"""A business's own project, as a new user makes it: the framework's wheel installed into a fresh
virtual environment outside the repository, `integrations init`, then README's "Start your own
project" run as written (a third system and a new object in YAML, `integrations check`,
`dg check defs`, the docs, one flow into a SQLite database), and `dg list components`.

Slow (minutes on a loaded machine): it builds two wheels and installs the framework with its
dependencies (the lock's versions, from uv's cache) into a new environment; one environment serves
every test here, the last one adds the `sandbox` extra to it.
"""

from __future__ import annotations

import csv
import os
import re
import sqlite3
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".tools" / "bin" / "uv"
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    """The framework installed from its wheel into a virtual environment of its own."""

    dist: Path  # the wheels built from this checkout
    venv: Path
    home: Path  # the user's folder: where they make their project
    constraints: Path

    @property
    def env(self) -> dict[str, str]:
        """A shell with the environment activated and nothing of this repository's."""
        keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR", "UV_CACHE_DIR", "UV_SYSTEM_CERTS")}
        return {**keep, "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": str(self.venv),
                "DAGSTER_HOME": str(self.home / ".dagster_home")}

    def run(self, command: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """A command line as a user types it, in bash."""
        return subprocess.run(["bash", "-c", command], cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def pip(self, *args: str) -> None:
        """`uv pip install` into the environment, at the lock's versions."""
        done = subprocess.run([str(UV), "pip", "install", "--quiet", "--python", str(self.venv / "bin" / "python"),
                               "-c", str(self.constraints), *args], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the framework's and the sandbox's wheels, install the framework's (and pytest) into a
    fresh environment in a temporary folder."""
    base = tmp_path_factory.mktemp("own-project")
    assert not base.is_relative_to(ROOT)
    dist, venv, home = base / "dist", base / "venv", base / "home"
    home.mkdir()
    for package in ("integration-project", "integrations-sandbox"):
        subprocess.run([str(UV), "build", "--quiet", "--wheel", "--package", package, "--out-dir", str(dist)],
                       cwd=ROOT, check=True, capture_output=True, timeout=300)
    constraints = base / "constraints.txt"
    exported = subprocess.run([str(UV), "export", "--frozen", "--all-extras", "--no-hashes", "--no-emit-workspace",
                               "--no-header"], cwd=ROOT, check=True, capture_output=True, text=True, timeout=120)
    constraints.write_text(exported.stdout)
    subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    found = Installed(dist, venv, home, constraints)
    found.pip(str(wheel(dist, "integration_project")), "pytest")
    return found


def wheel(dist: Path, name: str) -> Path:
    [path] = dist.glob(f"{name}-*.whl")
    return path


def top_level(path: Path) -> set[str]:
    """The top-level names a wheel installs (packages and modules, without its .dist-info)."""
    names = {name.split("/")[0] for name in zipfile.ZipFile(path).namelist()}
    return {name for name in names if not name.endswith(".dist-info")}


def site_packages(venv: Path) -> Path:
    [path] = venv.glob("lib/python*/site-packages")
    return path


def test_the_wheel_is_the_framework_without_the_example_or_the_sandbox(installed: Installed) -> None:
    assert top_level(wheel(installed.dist, "integration_project")) == {"integration_project", "docs_gen"}
    assert top_level(wheel(installed.dist, "integrations_sandbox")) == {"integration_sandbox"}
    installed_names = {p.name for p in site_packages(installed.venv).iterdir()}
    assert {"integration_project", "docs_gen"} <= installed_names
    assert not {"definitions", "integration_sandbox", "localstripe"} & installed_names
    missing = installed.run("integrations sandbox status", installed.home)
    assert (missing.returncode, missing.stderr) == (
        2, "error: the sandbox is not installed: pip install 'integration-project[sandbox]'\n")
    outside = installed.run("integrations check", installed.home)  # no project here: not the example's
    assert outside.returncode == 2 and "no project in" in outside.stderr, outside.stderr


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Start your own project\n", 1)[1].split("\n## ", 1)[0]


def steps() -> list[tuple[str, str]]:
    """README's section in order: ("sh", block) to run and ("yaml", block) to write where its
    first line (`# path`) says."""
    return re.findall(r"```(sh|yaml)\n(.*?)```", readme_section(), re.S)


def test_readme_start_your_own_project_runs_as_written(installed: Installed) -> None:
    """Each shell line as typed (a `cd` moves on), each file where README says; `integrations check`
    prints what README promises after its `#`."""
    assert [kind for kind, _ in steps()] == ["sh", "yaml", "yaml", "sh"]
    cwd = installed.home
    for kind, block in steps():
        if kind == "yaml":
            path = cwd / block.splitlines()[0].removeprefix("# ")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block)
            continue
        for line in block.strip().splitlines():
            command, _, promise = (part.strip() for part in line.partition("#"))
            if command.startswith("cd "):
                cwd = cwd / command.removeprefix("cd ")
                continue
            done = installed.run(line, cwd)
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
            if command == "integrations check":
                assert done.stdout.strip() == promise
    project = cwd
    assert project.parent == installed.home and (project / "pyproject.toml").is_file()
    # the docs have the new system's and the new object's pages, built from the project only
    site = project / "site"
    assert {p.stem for p in (site / "systems").glob("*.html")} == {"hub", "signups", "reporting", "newsletter"}
    assert {p.stem for p in (site / "objects").glob("*.html")} == {"contact", "subscription"}
    # the flow ran: every contact of the night's export is in the newsletter tool's database, once
    with (project / "data" / "signups" / "signups_20250101.csv").open() as export:
        exported = sorted((row["id"], row["email"], row["name"]) for row in csv.DictReader(export))
    with sqlite3.connect(project / "data" / "newsletter.sqlite") as db:
        loaded = sorted(db.execute("SELECT contact_id, email, name FROM subscribers").fetchall())
    assert loaded == exported and len(exported) == 3
    # Dagster's registry lists the framework's components
    listed = installed.run("dg list components --json", project)
    assert listed.returncode == 0, listed.stderr
    assert {"integration_project.SystemComponent", "integration_project.DataObjectComponent"} <= set(
        re.findall(r'"key": "([\w.]+)"', listed.stdout)), listed.stdout
    # the commands follow the project: the webhooks status names its systems, not the example's
    status = installed.run("integrations webhooks status", project / "definitions")
    assert status.stdout.strip() == "no system declares a webhook (newsletter, reporting, signups send none)"


def test_the_sandbox_extra_installs_the_sandbox_from_its_wheel(installed: Installed) -> None:
    framework = wheel(installed.dist, "integration_project").as_uri()
    installed.pip("--find-links", str(installed.dist), f"integration-project[sandbox] @ {framework}")
    installed_names = {p.name for p in site_packages(installed.venv).iterdir()}
    assert {"integration_sandbox", "localstripe"} <= installed_names
    status = installed.run("integrations sandbox status", installed.home)  # the sandbox's own answer: none runs
    assert status.returncode == 3 and status.stdout.startswith("no sandbox is running from"), status.stdout + status.stderr
