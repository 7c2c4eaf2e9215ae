"""Tombstones: a hub record deleted at its source of truth keeps its row, marked `deleted_at`, so each
consumer is told once (its binding's on_delete) and the ledger keeps what it was.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("hub_records") as table:
        table.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hub_records") as table:
        table.drop_column("deleted_at")
