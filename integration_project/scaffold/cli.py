"""`integrations init DIR`: start a project of your own."""

from __future__ import annotations

from pathlib import Path

import click

from integration_project.scaffold import ScaffoldError, write_project


@click.command()
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--package", default="definitions", show_default=True,
              help="Name of the landscape package (objects.py + systems/) in the new project.")
def init(folder: Path, package: str) -> None:
    """Write a new project into FOLDER: one object, a source and a consumer, a test; it runs as written."""
    try:
        written = write_project(folder, package)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {len(written)} files into {folder}:")
    for path in written:
        click.echo(f"  {path.relative_to(folder)}")
    click.echo(f"next: cd {folder} && integrations check")
