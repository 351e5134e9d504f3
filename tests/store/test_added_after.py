"""`added_after` reads: the same rows as a filter on date_added, found through the seq index."""

from __future__ import annotations

import json
from typing import Any

from shieldwall.stix.markings import TLP
from shieldwall.store import Access, Provenance, Query, Store
from shieldwall.store.where import where_of
from tests.factories import indicator

P = Provenance("estonia", "import")


def _fill(store: Store) -> list[Any]:
    """Three batches (so dates jump between them), a second version of some objects
    (their first version is no longer latest) and a RED object a partner may not read."""
    first = [indicator(f"198.51.100.{i}") for i in range(60)]
    store.put_many(first, P, batch_size=25)
    store.put_many([dict(o, modified="2025-01-01T00:00:00.000Z") for o in first[:10]], P)
    store.put(indicator("198.51.101.1", tlp=TLP.RED), P)
    return store.query(Query(versions="all")).rows


def test_added_after_is_the_date_filter_at_every_instant(store: Store) -> None:
    rows = _fill(store)
    partner = Access(open_levels=frozenset({TLP.CLEAR, TLP.GREEN, TLP.AMBER}))
    instants = [rows[0].date_added_us - 1] + [r.date_added_us for r in rows]
    for at in instants:
        for versions, access in (("all", None), ("last", None), ("last", partner)):
            want = [r.seq for r in rows if r.date_added_us > at
                    and (versions == "all" or r.is_latest)
                    and (access is None or r.tlp <= TLP.AMBER)]
            q = Query(added_after_us=at, versions=versions, access=access)
            assert [r.seq for r in store.iter_query(q, page_size=7)] == want
            assert store.count(q) == len(want)
            page = store.query(Query(added_after_us=at, versions=versions, access=access,
                                     limit=5))
            assert [r.seq for r in page.rows] == want[:5]


def test_added_after_page_starts_in_the_seq_index_on_postgresql(store: Store) -> None:
    """A page `added_after` an instant deep in the store reads from that instant on: the
    seq index bounded from the first version added after it, not every older row
    filtered out one by one (what made such a page cost its depth at ten million)."""
    if store.dialect != "postgresql":
        return  # SQLite's plans are not PostgreSQL's; the rows are checked above
    rows = _fill(store)
    at = rows[50].date_added_us
    w = where_of(Query(added_after_us=at, limit=5), "%s")
    sql = (f"SELECT o.seq FROM objects o{w.sql()} ORDER BY o.seq LIMIT 6")
    with store.engine.connect() as conn:
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cur.execute("SET enable_seqscan = off")
        cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, tuple(w.params))
        plan = cur.fetchone()[0]
        cur.close()
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def nodes(n: dict[str, Any]) -> list[dict[str, Any]]:
        return [n, *(m for c in n.get("Plans", []) for m in nodes(c))]

    every = nodes(plan[0]["Plan"])
    assert sum(n.get("Rows Removed by Filter", 0) for n in every) == 0, json.dumps(plan)
    assert any("seq >=" in n.get("Index Cond", "") for n in every), json.dumps(plan)
