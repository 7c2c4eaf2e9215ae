"""Match keys: which hub record holds each normalized match-key value (an email, say), so a second
record with the same value is parked as a duplicate instead of being copied everywhere.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "hub_keys",
        sa.Column("object", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(512), primary_key=True),
        sa.Column("record_id", sa.String(255), nullable=False),
    )
    op.create_index("ix_hub_keys_record", "hub_keys", ["object", "record_id"])


def downgrade() -> None:
    op.drop_table("hub_keys")
