"""Tables of the assessment room (SQLAlchemy Core); created by migration 0006.

Correlation keeps its state here so that each new incident or sighting costs a few indexed
reads and writes, never a rebuild:

- `corr_objects`: every correlated object, its member, time and group (quick-find labels,
  union by size: an object is relabelled O(log n) times at most).
- `corr_values`: the value -> objects index (kind, value, object), only for values under
  the cap; `corr_value_stats` counts every value and says why one is capped.
- `corr_links`: each link with the value that made it, the evidence a campaign shows.

`consult_log` is the consultation decisions' audit log: append-only, enforced by database
triggers, so even direct SQL cannot rewrite it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

SeqType = BigInteger().with_variant(Integer(), "sqlite")

corr_objects = Table(
    "corr_objects",
    metadata,
    Column("obj_id", String(300), primary_key=True),
    Column("obj_type", String(50), nullable=False),
    Column("member", String(200), nullable=False),
    Column("ts_us", BigInteger, nullable=False),
    Column("grp", String(300), nullable=False),
)
Index("ix_corr_objects_grp", corr_objects.c.grp)

corr_groups = Table(
    "corr_groups",
    metadata,
    Column("grp", String(300), primary_key=True),
    Column("size", Integer, nullable=False),
)

corr_values = Table(
    "corr_values",
    metadata,
    Column("kind", String(30), primary_key=True),
    Column("value", String(600), primary_key=True),
    Column("obj_id", String(300), primary_key=True),
    Column("ts_us", BigInteger, nullable=False),
)

corr_value_stats = Table(
    "corr_value_stats",
    metadata,
    Column("kind", String(30), primary_key=True),
    Column("value", String(600), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("capped", String(30)),  # None, "over-common" or "warninglist"
)

corr_links = Table(
    "corr_links",
    metadata,
    Column("a", String(300), primary_key=True),
    Column("b", String(300), primary_key=True),
    Column("kind", String(30), primary_key=True),
    Column("value", String(600), primary_key=True),
)
Index("ix_corr_links_b", corr_links.c.b)
Index("ix_corr_links_value", corr_links.c.kind, corr_links.c.value)

consult_log = Table(
    "consult_log",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("recorded_us", BigInteger, nullable=False),
    Column("campaign_id", String(300), nullable=False),
    Column("decided_by", String(200), nullable=False),
    Column("decision", String(50), nullable=False),
    Column("reason", Text, nullable=False),
    Column("recommendation", String(50), nullable=False),
    Column("policy_version", String(100), nullable=False),
    Column("snapshot", Text, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_consult_log_campaign", consult_log.c.campaign_id)
