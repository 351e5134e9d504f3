"""The store's hand-written TAXII read path returns exactly what `Store.query` returns."""

from __future__ import annotations

import itertools

from shieldwall.policy import Member
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP
from shieldwall.store import Provenance, Query, Store
from shieldwall.taxii import access_for
from tests.factories import indicator


def test_read_page_agrees_with_query(store: Store) -> None:
    objs = []
    for i, (level, aud) in enumerate(itertools.product(TLP, [None, ["p"], ["group:g"]])):
        extra = {AUDIENCE_PROPERTY: aud} if aud else {}
        v1 = indicator(f"10.0.0.{i}", tlp=level, **extra)
        objs += [v1, dict(v1, modified="2024-02-01T00:00:00.000Z")]
    store.put_many(objs[::2], Provenance("x", collection="c1"))
    store.put_many(objs[1::2], Provenance("p", collection="c2"))
    ids = [o["id"] for o in objs[:6:2]]
    seqs = [r.seq for r in store.query(Query(versions="all")).rows]
    members = [Member("a", "ally"), Member("p", "partner", frozenset({"g"})),
               Member("o", "organisation")]
    shapes = [
        {}, {"versions": "all"}, {"versions": "first"}, {"ids": ids},
        {"ids": ids, "versions": ["first", 1706745600000000]},
        {"versions": ["last", "first"]}, {"types": ["indicator", "malware"]},
        {"types": ["malware"]}, {"spec_versions": ["2.1"]}, {"collection": "c2"},
        {"added_after_us": 0, "limit": 3}, {"after_seq": seqs[5], "limit": 4},
        {"versions": [1706745600000000]},
    ]
    checked = 0
    for shape, member in itertools.product(shapes, [None, *members]):
        q = Query(**shape, access=access_for(member) if member else None)
        a, b = store.query(q), store.read_page(q)
        assert [r.seq for r in a.rows] == [r.seq for r in b.rows], (shape, member)
        assert a.rows == b.rows and a.more == b.more
        lean, more = store.read_rows(q)
        assert [(r.seq, r.id, r.json) for r in lean] == [(r.seq, r.id, r.json) for r in a.rows]
        assert more == a.more
        checked += len(a.rows)
    assert checked > 100
