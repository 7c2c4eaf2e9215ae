"""Validity per flow: how many records each leg into the hub has read and newly rejected so far,
and where each flow's validity was last judged, so a flow is judged on the records it takes in
even when another flow's run ingested them.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    for name, key in (("ingest_tally", "leg"), ("validity_judged", "flow")):
        op.create_table(
            name,
            sa.Column(key, sa.String(255), primary_key=True),
            sa.Column("read", sa.BigInteger, nullable=False),
            sa.Column("rejected", sa.BigInteger, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("validity_judged")
    op.drop_table("ingest_tally")
