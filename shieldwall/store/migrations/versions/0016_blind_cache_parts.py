"""The ally's blind resolution cache as packed parts: a row per batch of outputs, not per value.

`blind_cache_parts` holds, per owner key (one per epoch), parts of sorted 16-byte input
digests and their 16-byte outputs as two blobs (shieldwall/blind/tables.py): a hunt loads a
million cached outputs as a few rows and looks them up as arrays. The per-value table
`blind_cache` it replaces is dropped: a cache, rebuilt by asking the owners again (one round
trip per distinct value).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    op.create_table(
        "blind_cache_parts",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("value_keys", sa.LargeBinary, nullable=False),
        sa.Column("outputs", sa.LargeBinary, nullable=False),
    )
    op.drop_table("blind_cache")


def downgrade() -> None:
    op.create_table(
        "blind_cache",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("value_key", sa.String(32), primary_key=True),
        sa.Column("output", sa.String(32), nullable=False),
    )
    op.drop_table("blind_cache_parts")
