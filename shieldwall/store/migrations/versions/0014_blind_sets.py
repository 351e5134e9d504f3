"""Blind matching (blind/): handles, per-ally usage and audit (owner), resolution cache (ally).

The tables are described in shieldwall/blind/tables.py.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "blind_handles",
        sa.Column("handle", sa.String(32), primary_key=True),
        sa.Column("set_id", sa.String(300), nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("indicator_id", sa.String(300), nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
    )
    op.create_index("ix_blind_handles_set", "blind_handles", ["set_id"])
    op.create_table(
        "blind_usage",
        sa.Column("member", sa.String(200), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("asked", sa.BigInteger, nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "blind_audit",
        sa.Column("id", SeqType, primary_key=True, autoincrement=True),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("member", sa.String(200), nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("asked", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_blind_audit_member", "blind_audit", ["member", "at_us"])
    op.create_table(
        "blind_cache",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("value_key", sa.String(32), primary_key=True),
        sa.Column("output", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blind_cache")
    op.drop_index("ix_blind_audit_member", "blind_audit")
    op.drop_table("blind_audit")
    op.drop_table("blind_usage")
    op.drop_index("ix_blind_handles_set", "blind_handles")
    op.drop_table("blind_handles")
