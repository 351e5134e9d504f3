"""Alert outputs (outputs/): the durable outbox of alerts on their way to the member's tools.

One row per alert per output, unique by (output, key): routing the same change twice
enqueues nothing new, and a receiver is told the key so it can drop a repeat delivery.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_outbox",
        sa.Column("id", SeqType, primary_key=True, autoincrement=True),
        sa.Column("output", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("next_us", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_us", sa.BigInteger),
        sa.UniqueConstraint("output", "key", name="uq_alert_outbox_output_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alert_outbox_due", "alert_outbox", ["output", "delivered_us", "next_us"])


def downgrade() -> None:
    op.drop_index("ix_alert_outbox_due", "alert_outbox")
    op.drop_table("alert_outbox")
