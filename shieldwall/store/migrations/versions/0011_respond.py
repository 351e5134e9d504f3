"""Rapid reaction (respond/): the roster of responders the coordination cell dispatches.

Requests, dispatches and cases are STIX objects in `objects`; only the roster, the cell's
own working list that never federates, needs a table.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "responders",
        sa.Column("member", sa.String(200), primary_key=True),
        sa.Column("person", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("skills", sa.Text, nullable=False),
        sa.Column("availability", sa.String(30), nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("responders")
