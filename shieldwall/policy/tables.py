"""Tables of the policy room: members, sharing groups, TAXII collections and their rules.

They live in the node's one database beside the intel store (migration 0002), so a
node is still one file to back up, and a member revoked on the command line is
refused by a running server on its very next request.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

metadata = MetaData()

members = Table(
    "members",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("tier", String(20), nullable=False),
    # SHA-256 of the member's current token (see policy.members for why not a slow KDF).
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_us", BigInteger, nullable=False),
    Column("rotated_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_name", String(200), primary_key=True),
    Column("member", String(200), primary_key=True),
)

# Read and write rules are space-separated principals: `*` (any authenticated member),
# `tier:ally`, `member:NAME`, `group:NAME`. `scope` says what a read covers: `all`
# (every object the node holds) or `own` (what was delivered into this collection).
collections = Table(
    "taxii_collections",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("alias", String(100), nullable=False, unique=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("scope", String(10), nullable=False, default="own"),
    Column("read_rule", Text, nullable=False, default=""),
    Column("write_rule", Text, nullable=False, default=""),
    Column("position", Integer, nullable=False, default=0),
)
