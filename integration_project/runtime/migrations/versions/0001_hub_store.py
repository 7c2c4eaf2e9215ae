"""The hub store: hub records, cursors, deliveries, ledger, dead-letter queue.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "hub_records",
        sa.Column("object", sa.String(64), primary_key=True),
        sa.Column("record_id", sa.String(255), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "cursors",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("object", sa.String(64), primary_key=True),
        sa.Column("record_id", sa.String(255), primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_deliveries_external", "deliveries", ["system", "object", "external_id"])
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("flow", sa.String(255), nullable=False),
        sa.Column("object", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(255)),
        sa.Column("from_system", sa.String(64), nullable=False),
        sa.Column("to_system", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_table(
        "dlq",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(255), nullable=False),
        sa.Column("object", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("record_id", sa.String(255)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_dlq_open", "dlq", ["flow", "status", "record_id"])


def downgrade() -> None:
    for table in ("dlq", "ledger", "deliveries", "cursors", "hub_records"):
        op.drop_table(table)
