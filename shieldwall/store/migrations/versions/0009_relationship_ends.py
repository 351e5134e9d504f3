"""Index relationships by their two ends, so "what is linked to X" reads only X's links.

Attribution and its infrastructure walk used to scan every stored relationship once per
call (twice for `attribute --incident`): fine at a thousand, minutes at a million. The
indexes are partial (relationship rows only) and on an expression of the stored JSON, so
the import path writes no extra column and pays only for the relationships it stores.
The expressions must stay exactly those of `store.where.RELATIONSHIP_ENDS`, or the
planner will not use them.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"

_ENDS = ("source_ref", "target_ref")


def _expr(dialect: str, end: str) -> str:
    if dialect == "postgresql":
        return f"((json::jsonb ->> '{end}'))"
    return f"(json_extract(json, '$.{end}'))"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for end in _ENDS:
        op.execute(f"CREATE INDEX ix_objects_rel_{end} ON objects {_expr(dialect, end)} "
                   "WHERE type = 'relationship'")


def downgrade() -> None:
    for end in _ENDS:
        op.drop_index(f"ix_objects_rel_{end}", table_name="objects")
