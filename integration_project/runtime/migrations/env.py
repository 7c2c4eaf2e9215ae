"""Alembic environment: migrations run on the connection the hub store hands over."""

from alembic import context

from integration_project.runtime.store import metadata

# The hub store may share a database with Dagster's own storage, which keeps `alembic_version`.
VERSION_TABLE = "integration_alembic_version"

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
