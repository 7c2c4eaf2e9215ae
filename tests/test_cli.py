"""`integrations`: commands that need no Dagster start without it, and the command list tells the
truth without importing the commands (benchmarks/bench_cli.py measures the difference)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest

from integration_project.cli import COMMANDS, main

# Runs the entry point in a fresh interpreter; prints its exit code and the Dagster modules it imported.
PROBE = """
import json, sys
from integration_project.cli import main
try:
    main(sys.argv[1:], prog_name="integrations")
    code = 0
except SystemExit as exc:
    code = exc.code
print(json.dumps([code, sorted(m for m in sys.modules if m == "dagster" or m.startswith("dagster."))]))
"""


@pytest.mark.parametrize(("args", "exit_code"), [
    (["--help"], 0),
    (["check"], 0),
    (["webhooks", "status"], 0),
    (["sandbox", "env"], 3),  # no sandbox runs from the empty data folder: says so, exit 3
    (["init", "{tmp}/acme"], 0),
])
def test_commands_that_need_no_dagster_do_not_import_it(args, exit_code, tmp_path):
    env = {**os.environ, "INTEGRATIONS_DATA_DIR": str(tmp_path),
           "INTEGRATIONS_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite'}"}
    args = [arg.format(tmp=tmp_path) for arg in args]
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env,
                          timeout=300)
    code, dagster = json.loads(done.stdout.splitlines()[-1])
    assert code == exit_code, (done.stdout, done.stderr)
    assert dagster == [], dagster


def test_the_command_list_is_each_commands_own_help():
    ctx = click.Context(main)
    for name, (_, _, summary) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        for limit in (30, 45, 80, 200):  # as click cuts it for any terminal width
            assert click.Command(name, help=summary).get_short_help_str(limit) == command.get_short_help_str(limit)
    assert set(main.list_commands(ctx)) == set(COMMANDS) | {"check"}
