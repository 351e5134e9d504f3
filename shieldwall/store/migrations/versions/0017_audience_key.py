"""An audience key beside each status: case statistics test a reader's names per audience.

Counting a reader's requests, dispatches and tasks by status (migration 0015) checked each
row's `audience` rows: one index probe a row, ~10 µs on PostgreSQL, 1.5-2 s at 20,000
cases. `objects.audience_key` now holds, for the rows that have a status, the SHA-256 of
their audience's sorted names (`store.types.audience_key`), and `audience_sets` the names
of each key: the keys naming a reader are found once and the count reads only
`ix_objects_status`, which now carries the key. Filled here for the rows already stored,
from their `audience` rows.

Revision ID: 0017
Revises: 0016
"""

import hashlib
from collections import defaultdict

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"

# Kept equal to store.schema's ix_objects_status.
STATUS_INDEX_COLUMNS = ("type", "status", "tlp", "source", "created_by_ref", "audience_key",
                        "revoked", "is_latest", "seq")
# 0015's, for the downgrade.
_OLD_INDEX_COLUMNS = ("type", "status", "tlp", "source", "created_by_ref", "revoked",
                      "is_latest", "seq")
_WHERE = "is_latest AND status IS NOT NULL"
_CHUNK = 1_000


def _key(names: list[str]) -> str:
    # store.types.audience_key when this revision was written. A later change of that
    # function would only give one audience two keys, each with its own names: counts
    # stay right, since a key always stands for exactly the names stored under it.
    return hashlib.sha256(orjson.dumps(sorted(set(names)))).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "audience_sets",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("audience_key", sa.String(64), primary_key=True),
    )
    op.add_column("objects", sa.Column("audience_key", sa.String(64)))
    names: dict[int, list[str]] = defaultdict(list)
    for seq, name in bind.exec_driver_sql(
            "SELECT a.seq, a.name FROM audience a JOIN objects o ON o.seq = a.seq "
            "WHERE o.status IS NOT NULL"):
        names[seq].append(name)
    by_key: dict[str, list[int]] = defaultdict(list)
    sets: dict[str, list[str]] = {}
    for seq, members in names.items():
        key = _key(members)
        by_key[key].append(seq)
        sets.setdefault(key, sorted(set(members)))
    # One UPDATE per key and chunk of its rows (a cell's cases share a few thousand
    # audiences), not one a row.
    objects = sa.table("objects", sa.column("seq"), sa.column("audience_key"))
    for key, seqs in by_key.items():
        for i in range(0, len(seqs), _CHUNK):
            bind.execute(sa.update(objects).where(objects.c.seq.in_(seqs[i:i + _CHUNK]))
                         .values(audience_key=key))
    if sets:
        audience_sets = sa.table("audience_sets", sa.column("name"), sa.column("audience_key"))
        bind.execute(sa.insert(audience_sets), [
            {"name": n, "audience_key": k} for k, members in sets.items() for n in members])
    op.drop_index("ix_objects_status", table_name="objects")
    op.create_index("ix_objects_status", "objects", list(STATUS_INDEX_COLUMNS),
                    sqlite_where=sa.text(_WHERE), postgresql_where=sa.text(_WHERE))


def downgrade() -> None:
    op.drop_index("ix_objects_status", table_name="objects")
    op.create_index("ix_objects_status", "objects", list(_OLD_INDEX_COLUMNS),
                    sqlite_where=sa.text(_WHERE), postgresql_where=sa.text(_WHERE))
    with op.batch_alter_table("objects") as batch:
        batch.drop_column("audience_key")
    op.drop_table("audience_sets")
