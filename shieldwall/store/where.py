"""The one translation of a `Query` into SQL, for every read of the store.

Hand-written rather than built with SQLAlchemy expressions: building an expression
cost 2-4 ms a query (the IN lists of an Access alone are a dozen coercions), more
than the indexed read itself; this costs ~0.2 ms. Pages, counts, bounds and search
all use it, so what a reader may see cannot differ between a list and its count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shieldwall.store.types import Access, Query

# The indexed expressions of migration 0009, by paramstyle ("?": SQLite, "%s": PostgreSQL).
# SQLite is told which index to use: without statistics it prefers `type = ?` over the
# partial indexes, which is a scan of every relationship.
RELATIONSHIP_ENDS = {
    "?": (("json_extract(json, '$.source_ref')", " INDEXED BY ix_objects_rel_source_ref"),
          ("json_extract(json, '$.target_ref')", " INDEXED BY ix_objects_rel_target_ref")),
    "%s": (("(json::jsonb ->> 'source_ref')", ""), ("(json::jsonb ->> 'target_ref')", "")),
}



class Where:
    """A WHERE clause under construction with its parameters, in the driver's paramstyle."""

    def __init__(self, mark: str) -> None:
        self.mark = mark
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, sql: str, *params: Any) -> None:
        self.parts.append(sql.replace("?", self.mark))
        self.params.extend(params)

    def in_(self, column: str, values: Iterable[Any]) -> str:
        values = list(values)
        self.params.extend(values)
        return f"{column} IN ({','.join([self.mark] * len(values))})"

    def sql(self) -> str:
        return " WHERE " + " AND ".join(self.parts) if self.parts else ""


def where_of(q: Query, mark: str) -> Where:
    w = Where(mark)
    if q.versions == "last":
        w.add("o.is_latest")
    elif q.versions == "first":
        w.parts.append(_first(w, q))
    elif q.versions != "all":
        wanted = list(q.versions)
        stamps = [v for v in wanted if not isinstance(v, str)]
        parts = [w.in_("o.version_us", stamps)] if stamps else []
        if "last" in wanted:
            parts.append("o.is_latest")
        if "first" in wanted:
            parts.append(_first(w, q))
        w.parts.append("(" + " OR ".join(parts) + ")" if parts else "1=0")
    if q.ids:
        w.parts.append(w.in_("o.id", q.ids))
    if q.types:
        w.parts.append(w.in_("o.type", q.types))
    if q.linked_to is not None:
        ends = [f"SELECT seq FROM objects{hint} WHERE type = 'relationship' AND "
                f"{w.in_(expr, q.linked_to)}" for expr, hint in RELATIONSHIP_ENDS[w.mark]]
        w.parts.append(f"o.seq IN ({' UNION ALL '.join(ends)})" if q.linked_to else "1=0")
    if q.spec_versions:
        w.parts.append(w.in_("o.spec_version", q.spec_versions))
    if q.added_after_us is not None:
        # `seq` grows with `date_added_us` (schema.py), so the first version added after the
        # instant bounds the seq: a page then starts in the seq index where it belongs. On
        # the date filter alone PostgreSQL walked the seq index from the start, filtering
        # every older row (289 ms for a page of 1,000 halfway into 300,000 objects).
        w.add("o.seq >= (SELECT seq FROM objects WHERE date_added_us > ? "
              "ORDER BY date_added_us LIMIT 1)", int(q.added_after_us))
        w.add("o.date_added_us > ?", int(q.added_after_us))
    if q.after_seq is not None:
        w.add("o.seq > ?", int(q.after_seq))
    if q.collection is not None:
        w.add("o.collection = ?", q.collection)
    if q.tlp_max is not None:
        w.add("o.tlp <= ?", int(q.tlp_max))
    if q.modified_from_us is not None:
        w.add("o.version_us >= ?", int(q.modified_from_us))
    if q.modified_to_us is not None:
        w.add("o.version_us <= ?", int(q.modified_to_us))
    if not q.include_revoked:
        w.add("NOT o.revoked")
    if q.access is not None:
        add_access(w, q.access)
    return w


def _first(w: Where, q: Query) -> str:
    """The first version of each object *the reader may see*: the earliest among the
    versions the same Access (and collection) admits, so that a hidden first version
    neither hides the object from `match[version]=first` nor shows that it exists."""
    sub = Where(w.mark)
    sub.add("o2.id = o.id")
    if q.collection is not None:
        sub.add("o2.collection = ?", q.collection)
    if q.access is not None:
        add_access(sub, q.access, "o2")
    w.params.extend(sub.params)
    return f"o.version_us = (SELECT min(o2.version_us) FROM objects o2{sub.sql()})"


def add_access(w: Where, a: Access, table: str = "o", *, by_key: bool = False) -> None:
    """Visible when the TLP is open to the reader; or named to it (directly or through a
    group) at that level; or the reader delivered or created the row, when its type is
    not one whose audience alone decides (`a.audience_only_types`): a member must not
    read those only because its own node stored them. `table`: the alias of `objects`.

    `by_key`: the audience is read from the row's `audience_key` (the keys naming the
    reader, found once, `audience_sets`) instead of the row's own `audience` rows: the
    same answer for the rows that carry a key (those with a status, migration 0017), with
    no lookup a row (case statistics: 140,000 rows at 20,000 cases)."""
    o = table
    parts = []
    if a.open_levels:
        parts.append(w.in_(f"{o}.tlp", sorted(a.open_levels)))
    for levels, names in ((a.named_levels, a.names), (a.group_levels, a.groups)):
        if levels and names:
            lv = w.in_(f"{o}.tlp", sorted(levels))
            nm = w.in_("au.name", sorted(names))
            if by_key:
                parts.append(f"({lv} AND {o}.audience_key IN (SELECT au.audience_key "
                             f"FROM audience_sets au WHERE {nm}))")
            else:
                parts.append(f"({lv} AND EXISTS (SELECT 1 FROM audience au "
                             f"WHERE au.seq = {o}.seq AND {nm}))")
    own = []
    if a.names:
        own.append(w.in_(f"{o}.source", sorted(a.names)))
    if a.identities:
        own.append(w.in_(f"{o}.created_by_ref", sorted(a.identities)))
    if own:
        mine = own[0] if len(own) == 1 else "(" + " OR ".join(own) + ")"
        if a.audience_only_types:
            mine = f"({mine} AND NOT {w.in_(f'{o}.type', sorted(a.audience_only_types))})"
        parts.append(mine)
    w.parts.append("(" + " OR ".join(parts) + ")" if parts else "1=0")
