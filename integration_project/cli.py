"""`integrations`: the one command-line entry point for everything a user does."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="integration-project")
def main() -> None:
    """Integration-as-code on Dagster: declare systems once, run the syncs, generate the docs."""
