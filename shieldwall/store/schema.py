"""Tables of the intel store (SQLAlchemy Core).

One row per stored *version* of a STIX object. `seq` is the node-wide keyset: it
grows with `date_added_us`, which is strictly increasing per node, so a page cursor
never skips or repeats a row even when many versions arrive in the same instant.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()


# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a million-row store.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

objects = Table(
    "objects",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id", String(300), nullable=False),
    Column("type", String(250), nullable=False),
    Column("spec_version", String(10), nullable=False),
    Column("version_us", BigInteger, nullable=False),
    Column("date_added_us", BigInteger, nullable=False),
    Column("is_latest", Boolean, nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("tlp", SmallInteger, nullable=False),
    Column("created_by_ref", String(300)),
    Column("name", String(500)),
    # provenance: who delivered this version, and how
    Column("source", String(200), nullable=False),
    Column("channel", String(50), nullable=False),
    Column("collection", String(200)),
    Column("json", Text, nullable=False),
    # The object's state, for the types of STATUS_PROPERTY (migration 0015).
    Column("status", String(100)),
    # Where `status` is kept: the digest of the row's audience (`types.audience_key`, whose
    # names `audience_sets` holds), so statistics test a reader's names per audience, not
    # per row (migration 0017).
    Column("audience_key", String(64)),
    UniqueConstraint("id", "version_us", name="uq_objects_id_version"),
    sqlite_autoincrement=True,
)
Index("ix_objects_date_added", objects.c.date_added_us)
Index("ix_objects_type_seq", objects.c.type, objects.c.seq)
Index(
    "ix_objects_latest_seq",
    objects.c.seq,
    sqlite_where=objects.c.is_latest,
    postgresql_where=objects.c.is_latest,
)
# Counting latest objects by status under an Access reads only this index (migrations 0015,
# 0017): it holds every column the Access clause names, the audience as its key.
Index(
    "ix_objects_status",
    objects.c.type, objects.c.status, objects.c.tlp, objects.c.source, objects.c.created_by_ref,
    objects.c.audience_key, objects.c.revoked, objects.c.is_latest, objects.c.seq,
    sqlite_where=objects.c.is_latest & objects.c.status.isnot(None),
    postgresql_where=objects.c.is_latest & objects.c.status.isnot(None),
)
# No index on created_by_ref or name: no read can use one (see migration 0008).
# Relationships are indexed by their ends on expressions of `json` (migration 0009,
# `where.RELATIONSHIP_ENDS`), which the migrations create, not this metadata.

# Named audience of a stored version (members or sharing groups): who a producer
# shared an AMBER, AMBER+STRICT or RED object with.
audience = Table(
    "audience",
    metadata,
    Column("seq", SeqType, primary_key=True),
    Column("name", String(200), primary_key=True),
)
Index("ix_audience_name", audience.c.name)

# The names of each audience key (`objects.audience_key`, `types.audience_key`), by name:
# which keys name a reader is one indexed range a name. A key's names never change (it is
# their digest), so rows are only added, and stay when the objects that used them go.
audience_sets = Table(
    "audience_sets",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("audience_key", String(64), primary_key=True),
)

# Things the node knows *about* an object without changing it (warning-list hits, ...).
tags = Table(
    "tags",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("tag", String(100), primary_key=True),
    Column("detail", Text),
)
Index("ix_tags_tag", tags.c.tag)

# The TLP level each supplier (a member over TAXII, a peer, this node's imports) declared
# for a custom marking-definition id, kept even when the definition object itself was not
# stored (a duplicate of another's, or refused): a definition counts only for what its
# own supplier delivers (store.audience.stored_tlp_markings, migration 0010).
tlp_definitions = Table(
    "tlp_definitions",
    metadata,
    Column("marking_id", String(300), primary_key=True),
    Column("source", String(200), primary_key=True),
    Column("tlp", SmallInteger, nullable=False),
)

# Small named state other rooms keep durable (federation cursors, counters).
kv = Table(
    "kv",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("value", Text, nullable=False),
)
