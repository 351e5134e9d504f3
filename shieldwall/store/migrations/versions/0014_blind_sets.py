"""Blind matching (blind/): reserved for its tables.

Revision ID: 0014
Revises: 0013
"""

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
