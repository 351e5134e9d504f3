"""The first schema of the intel store.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(300), nullable=False),
        sa.Column("type", sa.String(250), nullable=False),
        sa.Column("spec_version", sa.String(10), nullable=False),
        sa.Column("version_us", sa.BigInteger, nullable=False),
        sa.Column("date_added_us", sa.BigInteger, nullable=False),
        sa.Column("is_latest", sa.Boolean, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("tlp", sa.SmallInteger, nullable=False),
        sa.Column("created_by_ref", sa.String(300)),
        sa.Column("name", sa.String(500)),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("collection", sa.String(200)),
        sa.Column("json", sa.Text, nullable=False),
        sa.UniqueConstraint("id", "version_us", name="uq_objects_id_version"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_objects_date_added", "objects", ["date_added_us"])
    op.create_index("ix_objects_type_seq", "objects", ["type", "seq"])
    op.create_index(
        "ix_objects_latest_seq", "objects", ["seq"],
        sqlite_where=sa.text("is_latest"), postgresql_where=sa.text("is_latest"),
    )
    op.create_index("ix_objects_created_by", "objects", ["created_by_ref"])
    op.create_index("ix_objects_name", "objects", ["name"])
    op.create_table(
        "audience",
        sa.Column("seq", SeqType, primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
    )
    op.create_index("ix_audience_name", "audience", ["name"])
    op.create_table(
        "tags",
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("tag", sa.String(100), primary_key=True),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_tags_tag", "tags", ["tag"])
    op.create_table(
        "kv",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for name in ("kv", "tags", "audience", "objects"):
        op.drop_table(name)
