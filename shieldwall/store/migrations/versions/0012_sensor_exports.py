"""Sensor exports (outputs/): reserved for its tables.

Revision ID: 0012
Revises: 0011
"""

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
