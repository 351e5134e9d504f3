"""Members, sharing groups and TAXII collections (policy room).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

# The collections every node starts with (docs/taxii.md explains their rules).
DEFAULT_COLLECTIONS = [
    {
        "id": "3a4c1b5e-6f0d-5a38-9c2e-7d1e0b9f4a01",
        "alias": "alliance",
        "title": "Alliance intelligence",
        "description": "Everything this node holds, filtered by TLP for the caller. "
        "Allies write; every member reads.",
        "scope": "all",
        "read_rule": "*",
        "write_rule": "tier:ally",
        "position": 0,
    },
    {
        "id": "8b2f6d0c-1e7a-5c44-a9d3-2f5e8c7b6a02",
        "alias": "sightings",
        "title": "Sightings from members",
        "description": "Sightings, incidents and notes members send back. "
        "Every member reads (per TLP) and writes.",
        "scope": "own",
        "read_rule": "*",
        "write_rule": "*",
        "position": 1,
    },
]


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("rotated_us", sa.BigInteger, nullable=False),
        sa.Column("revoked_us", sa.BigInteger),
    )
    op.create_table(
        "group_members",
        sa.Column("group_name", sa.String(200), primary_key=True),
        sa.Column("member", sa.String(200), primary_key=True),
    )
    table = op.create_table(
        "taxii_collections",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("alias", sa.String(100), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("read_rule", sa.Text, nullable=False),
        sa.Column("write_rule", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.bulk_insert(table, DEFAULT_COLLECTIONS)


def downgrade() -> None:
    for name in ("taxii_collections", "group_members", "members"):
        op.drop_table(name)
