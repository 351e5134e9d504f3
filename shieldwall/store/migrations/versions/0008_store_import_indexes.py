"""Drop two indexes of `objects` that no read uses, to make imports cheaper.

`ix_objects_created_by` and `ix_objects_name` were maintained on every insert, but
`created_by_ref` is only read inside the access clause's OR (not indexable next to an
unindexed `tlp IN (...)`) and names are searched with `lower(name) LIKE '%...%'`,
which no B-tree index serves. Maintaining them was about a sixth of the write time of
a bulk import.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.drop_index("ix_objects_created_by", table_name="objects")
    op.drop_index("ix_objects_name", table_name="objects")


def downgrade() -> None:
    op.create_index("ix_objects_created_by", "objects", ["created_by_ref"])
    op.create_index("ix_objects_name", "objects", ["name"])

