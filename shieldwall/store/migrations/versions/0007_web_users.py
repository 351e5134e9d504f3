"""Dashboard users and their sessions (web room).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "web_users",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("member", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["user"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_user", "web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("web_users")
