"""The TLP level each supplier declared for a custom marking-definition id.

A custom definition counts only for what its own supplier delivers; the stored definition
objects say who delivered each version, but a supplier whose definition was a duplicate of
another's (or was refused as a version of another's) left no row there. Definitions
already stored are still read from `objects`, so nothing needs copying.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "tlp_definitions",
        sa.Column("marking_id", sa.String(300), primary_key=True),
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("tlp", sa.SmallInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tlp_definitions")
