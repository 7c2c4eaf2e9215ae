"""The webhook inbox: verified events, one row each, unique per (system, event id).

The inbox made its own table (`create_all`) before it joined these migrations, so a database may
hold it already: what is missing is created, what exists is left as it is.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

TZ = sa.DateTime(timezone=True)
UNPROCESSED = sa.text("processed_at IS NULL")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("webhook_inbox"):
        op.create_table(
            "webhook_inbox",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
            sa.Column("system", sa.String(64), nullable=False),
            sa.Column("event_id", sa.String(255), nullable=False),
            sa.Column("event_type", sa.String(255), nullable=False),
            sa.Column("received_at", TZ, nullable=False),
            sa.Column("headers", sa.JSON(), nullable=False),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("processed_at", TZ, nullable=True),
            sa.UniqueConstraint("system", "event_id", name="uq_webhook_inbox_event"),
            # AUTOINCREMENT: SQLite must never reuse the id of a purged row, or a reader's cursor skips.
            sqlite_autoincrement=True,
        )
    if "ix_webhook_inbox_pending" not in {index["name"] for index in inspector.get_indexes("webhook_inbox")}:
        # the sensors' query: one system's unprocessed events after a cursor
        op.create_index("ix_webhook_inbox_pending", "webhook_inbox", ["system", "id"],
                        sqlite_where=UNPROCESSED, postgresql_where=UNPROCESSED)


def downgrade() -> None:
    op.drop_table("webhook_inbox")
