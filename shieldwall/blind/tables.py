"""Tables of blind matching (SQLAlchemy Core); created by migration 0014.

- `blind_handles` (owner): each published entry's opaque handle -> the indicator it stands
  for. Only the owner's node has it; a blind hit names a handle, the owner reads it here.
- `blind_usage` (owner): evaluations asked per ally per UTC day, for the daily quota and
  the alarm on an unusual day.
- `blind_audit` (owner): one row per evaluation request, answered or refused.
- `blind_cache_parts` (ally, migration 0016): resolved outputs per owner key (one key per
  epoch), so each distinct value costs one round trip per epoch. Keyed by a keyed function
  of the value (`blind.resolve.CacheKeys`), never the value; packed: each part is `count`
  sorted 16-byte keys and their 16-byte outputs as two blobs, loaded as arrays
  (`blind.resolve.OutputCache`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

SeqType = BigInteger().with_variant(Integer(), "sqlite")

blind_handles = Table(
    "blind_handles",
    metadata,
    Column("handle", String(32), primary_key=True),
    Column("set_id", String(300), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("indicator_id", String(300), nullable=False),
    Column("path", String(300), nullable=False),
)

blind_usage = Table(
    "blind_usage",
    metadata,
    Column("member", String(200), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("asked", BigInteger, nullable=False),
    Column("requests", BigInteger, nullable=False),
)

blind_audit = Table(
    "blind_audit",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("at_us", BigInteger, nullable=False),
    Column("member", String(200), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("asked", BigInteger, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("detail", Text, nullable=False),
    sqlite_autoincrement=True,
)

blind_cache_parts = Table(
    "blind_cache_parts",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("value_keys", LargeBinary, nullable=False),
    Column("outputs", LargeBinary, nullable=False),
)
