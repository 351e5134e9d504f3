"""Tables of the respond room (SQLAlchemy Core); created by migration 0011.

`responders` is the roster the coordination cell dispatches from: a person of a member,
the skills they bring and whether they can go. It is the cell's working list, not
intelligence: it stays in the node's database and never federates. Everything else of
rapid reaction is STIX in `objects`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text

metadata = MetaData()

responders = Table(
    "responders",
    metadata,
    Column("member", String(200), primary_key=True),
    Column("person", String(200), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("skills", Text, nullable=False),  # comma-separated words
    Column("availability", String(30), nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)
