"""An object's status as a column: case statistics count by it without reading JSON.

`objects.status` holds the property that carries the state of the types listed in
`store.types.STATUS_PROPERTY` (an assistance request's or a dispatch's `status`, a
task's `outcome`), written by `put_many` and filled here for the rows already stored.
A partial index on the latest rows that have one holds every column the statistics and
the reader's Access clause read, so counting them reads the index, not the scattered rows
of a large store (20,000 cases: 140,000 rows over gigabytes of objects).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"

# The types and properties of store.types.STATUS_PROPERTY when this revision was written
# (a migration keeps its own copy: later code may list more).
_STATUS = {"x-shieldwall-assistance-request": "status", "x-shieldwall-dispatch": "status",
           "task": "outcome"}


# Kept equal to store.schema's ix_objects_status (the statistics query names these).
# `seq` too: the audience check joins on it, and PostgreSQL (unlike SQLite, whose rowid
# it is) needs it in the index to count without visiting each row.
STATUS_INDEX_COLUMNS = ("type", "status", "tlp", "source", "created_by_ref", "revoked",
                        "is_latest", "seq")
STATUS_INDEX_WHERE = "is_latest AND status IS NOT NULL"


def _expr(dialect: str, prop: str) -> str:
    if dialect == "postgresql":
        return f"(json::jsonb ->> '{prop}')"
    return f"json_extract(json, '$.{prop}')"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("objects", sa.Column("status", sa.String(100)))
    for kind, prop in _STATUS.items():
        op.execute(f"UPDATE objects SET status = {_expr(dialect, prop)} WHERE type = '{kind}'")
    op.create_index("ix_objects_status", "objects", list(STATUS_INDEX_COLUMNS),
                    sqlite_where=sa.text(STATUS_INDEX_WHERE),
                    postgresql_where=sa.text(STATUS_INDEX_WHERE))


def downgrade() -> None:
    op.drop_index("ix_objects_status", table_name="objects")
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("status")
