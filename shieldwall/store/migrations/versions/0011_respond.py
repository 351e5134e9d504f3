"""Rapid reaction (respond/): reserved for its tables.

Revision ID: 0011
Revises: 0010
"""

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
