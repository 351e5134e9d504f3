"""An object's status as a column: case statistics count by it without reading JSON.

`objects.status` holds the property that carries the state of the types listed in
`store.schema.STATUS_PROPERTY` (an assistance request's or a dispatch's `status`, a
task's `outcome`), written by `put_many` and filled here for the rows already stored.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"

# The types and properties of store.schema.STATUS_PROPERTY when this revision was written
# (a migration keeps its own copy: later code may list more).
_STATUS = {"x-shieldwall-assistance-request": "status", "x-shieldwall-dispatch": "status",
           "task": "outcome"}


def _expr(dialect: str, prop: str) -> str:
    if dialect == "postgresql":
        return f"(json::jsonb ->> '{prop}')"
    return f"json_extract(json, '$.{prop}')"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("objects", sa.Column("status", sa.String(100)))
    for kind, prop in _STATUS.items():
        op.execute(f"UPDATE objects SET status = {_expr(dialect, prop)} WHERE type = '{kind}'")


def downgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("status")
