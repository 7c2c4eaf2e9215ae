"""Alembic environment: migrations run on the connection `schema.upgrade` hands over, under its lock."""

from alembic import context

from integration_project.runtime.schema import VERSION_TABLE

# No target_metadata: the tables are declared by the hub store and by the webhook inbox, and the
# schema tests compare the migrated database with both.
connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
