"""The Store API on SQLite and PostgreSQL: versioning, provenance, keyset pages, access."""

from __future__ import annotations

import itertools
import threading

from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP
from shieldwall.stix.timestamps import parse_ts
from shieldwall.store import Access, Provenance, Query, Store
from tests.factories import indicator, sid

P = Provenance("estonia", "import")


def test_newest_version_is_latest_and_late_older_version_is_history(store: Store) -> None:
    v1 = indicator(modified="2024-01-01T00:00:00.000Z")
    v2 = dict(v1, modified="2024-02-01T00:00:00.000Z", name="second")
    v3 = dict(v1, modified="2024-03-01T00:00:00.000Z", name="third")
    assert store.put(v1, P).new == 1
    assert store.put(v3, P).new_versions == 1
    late = store.put(v2, P)  # older than v3, arrives after it
    assert (late.new, late.new_versions, late.history) == (0, 0, 1)
    latest = store.get(v1["id"])
    assert latest is not None and latest.obj()["name"] == "third"
    assert [v.obj().get("name") for v in store.versions(v1["id"])] == [None, "second", "third"]
    assert store.count(Query(ids=[v1["id"]], versions="all")) == 3
    assert store.count(Query(ids=[v1["id"]])) == 1


def test_versions_within_one_batch_pick_the_newest(store: Store) -> None:
    v1 = indicator(modified="2024-01-01T00:00:00.000Z")
    v2 = dict(v1, modified="2024-05-01T00:00:00.000Z")
    r = store.put_many([v2, v1], P)
    assert (r.new, r.history) == (1, 1)
    assert store.get(v1["id"]).version_us == parse_ts("2024-05-01T00:00:00.000Z")  # type: ignore[union-attr]


def test_duplicate_is_counted_and_conflict_is_rejected(store: Store) -> None:
    v1 = indicator()
    store.put(v1, P)
    r = store.put(dict(v1), P)
    assert r.duplicates == 1 and r.stored == 0
    r = store.put(dict(v1, description="changed without a new modified"), P)
    assert r.stored == 0
    assert r.rejected and "conflict" in r.rejected[0][1]
    assert "description" not in store.get(v1["id"]).obj()  # type: ignore[union-attr]


def test_conflict_inside_one_batch(store: Store) -> None:
    v1 = indicator()
    r = store.put_many([v1, dict(v1, description="other")], P)
    assert r.new == 1 and len(r.rejected) == 1


def test_revoked_is_kept_and_filterable(store: Store) -> None:
    v1 = indicator()
    store.put(v1, P)
    store.put(dict(v1, modified="2024-06-01T00:00:00.000Z", revoked=True), P)
    row = store.get(v1["id"])
    assert row is not None and row.revoked and row.obj()["revoked"] is True
    assert store.count(Query(types=["indicator"], include_revoked=False)) == 0
    assert store.count(Query(types=["indicator"])) == 1


def test_bad_objects_are_rejected_and_the_rest_stored(store: Store) -> None:
    good = indicator()
    future = indicator(modified="2999-01-01T00:00:00.000Z")
    r = store.put_many(
        [good, {"type": "indicator", "id": "not-an-id"}, future,
         dict(indicator(), modified="yesterday")],
        P,
    )
    assert r.new == 1
    reasons = " | ".join(reason for _, reason in r.rejected)
    assert "malformed 'id'" in reasons and "future" in reasons and "not a STIX timestamp" in reasons


def test_provenance_and_tlp_are_recorded(store: Store) -> None:
    amber = indicator(tlp=None)
    red = indicator(tlp=TLP.RED)
    store.put_many([amber, red], Provenance("latvia", "taxii", "intel"), default_tlp=TLP.AMBER)
    a, r = store.get(amber["id"]), store.get(red["id"])
    assert a is not None and r is not None
    assert (a.tlp, r.tlp) == (TLP.AMBER, TLP.RED)
    assert (a.source, a.channel, a.collection) == ("latvia", "taxii", "intel")


def test_date_added_strictly_increases_and_keyset_pages_cover_everything(store: Store) -> None:
    objs = [indicator(f"10.0.{i // 250}.{i % 250}") for i in range(1200)]
    store.put_many(objs, P, batch_size=300)
    seen: list[str] = []
    added: list[int] = []
    after = None
    while True:
        page = store.query(Query(after_seq=after, limit=250))
        seen.extend(r.id for r in page.rows)
        added.extend(r.date_added_us for r in page.rows)
        if not page.more:
            break
        after = page.next_seq
    assert len(seen) == len(set(seen)) == 1200
    assert all(b > a for a, b in itertools.pairwise(added))


def test_pages_neither_skip_nor_repeat_while_writers_add(store: Store) -> None:
    store.put_many([indicator(f"10.1.0.{i}") for i in range(200)], P)
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set() and i < 40:
            store.put_many([indicator(f"10.2.{i}.{j}") for j in range(20)], P)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    seen: list[str] = []
    after = None
    try:
        while True:
            alive = t.is_alive()
            page = store.query(Query(after_seq=after, limit=37))
            seen.extend(r.id for r in page.rows)
            if page.rows:
                after = page.next_seq
            if not page.more and not alive:
                break
    finally:
        stop.set()
        t.join()
    assert len(seen) == len(set(seen))
    assert set(seen) == {r.id for r in store.iter_query(Query())}


def test_query_filters(store: Store) -> None:
    a = indicator("192.0.2.1", modified="2024-01-01T00:00:00.000Z")
    a2 = dict(a, modified="2024-03-01T00:00:00.000Z")
    b = indicator("192.0.2.2", tlp=TLP.RED)
    ident = {"type": "identity", "spec_version": "2.1", "id": sid("identity", "1"),
             "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
             "name": "CERT-EE"}
    store.put_many([a, a2, b, ident], P)
    assert store.count(Query(types=["identity"])) == 1
    assert store.count(Query(types=["indicator"], tlp_max=TLP.AMBER)) == 1
    first = store.query(Query(ids=[a["id"]], versions="first")).rows
    assert [r.version_us for r in first] == [parse_ts("2024-01-01T00:00:00.000Z")]
    exact = store.query(Query(ids=[a["id"]], versions=[parse_ts("2024-03-01T00:00:00.000Z")]))
    assert len(exact.rows) == 1
    assert store.count(Query(modified_from_us=parse_ts("2024-02-01T00:00:00.000Z"))) == 1
    lo, hi = store.bounds(Query())  # type: ignore[misc]
    after_first = store.count(Query(added_after_us=lo))
    assert after_first == 2 and hi >= lo
    assert [r.id for r in store.search("192.0.2.2")] == [b["id"]]
    assert [r.id for r in store.search("cert-ee")] == [ident["id"]]


def test_access_filter_applies_in_sql(store: Store) -> None:
    green = indicator("203.0.113.1", tlp=TLP.GREEN)
    amber = indicator("203.0.113.2", tlp=TLP.AMBER)
    strict = indicator("203.0.113.3", tlp=TLP.AMBER_STRICT, **{AUDIENCE_PROPERTY: ["latvia"]})
    red_named = indicator("203.0.113.4", tlp=TLP.RED, **{AUDIENCE_PROPERTY: ["group:nordic"]})
    mine = indicator("203.0.113.5", tlp=TLP.RED,
                     created_by_ref="identity--22222222-2222-4222-8222-222222222222")
    store.put_many([green, amber, strict, red_named, mine], P)

    def visible(access: Access) -> set[str]:
        return {r.id for r in store.iter_query(Query(access=access))}

    partner = Access(open_levels=frozenset({TLP.CLEAR, TLP.GREEN}), names=frozenset({"georgia"}))
    assert visible(partner) == {green["id"]}
    ally = Access(
        open_levels=frozenset({TLP.CLEAR, TLP.GREEN, TLP.AMBER}),
        named_levels=frozenset({TLP.AMBER_STRICT, TLP.RED}),
        names=frozenset({"latvia"}),
    )
    assert visible(ally) == {green["id"], amber["id"], strict["id"]}
    nordic = Access(open_levels=frozenset({TLP.CLEAR}), named_levels=frozenset({TLP.RED}),
                    names=frozenset({"norway", "group:nordic"}))
    assert visible(nordic) == {red_named["id"]}
    creator = Access(open_levels=frozenset(),
                     identities=frozenset({"identity--22222222-2222-4222-8222-222222222222"}))
    assert visible(creator) == {mine["id"]}
    producer = Access(open_levels=frozenset(), names=frozenset({"estonia"}))
    assert len(visible(producer)) == 5
    assert store.count(Query(access=partner)) == 1
    assert store.get(amber["id"], access=partner) is None


def test_audience_is_per_version(store: Store) -> None:
    v1 = indicator(tlp=TLP.AMBER_STRICT, **{AUDIENCE_PROPERTY: ["latvia", "lithuania"]})
    v2 = dict(v1, modified="2024-09-01T00:00:00.000Z", **{AUDIENCE_PROPERTY: ["latvia"]})
    store.put_many([v1, v2], P)
    lt = Access(open_levels=frozenset(), named_levels=frozenset({TLP.AMBER_STRICT}),
                names=frozenset({"lithuania"}))
    assert store.get(v1["id"], access=lt) is None  # narrowed in the newer version
    assert len(store.versions(v1["id"], access=lt)) == 1


def test_tags_and_kv(store: Store) -> None:
    store.tag([("indicator--x", "warninglist", "a"), ("indicator--y", "warninglist", "b")])
    store.tag([("indicator--x", "warninglist", "c")])
    assert store.tags_of("indicator--x") == {"warninglist": "c"}
    assert sorted(store.tagged("warninglist")) == [("indicator--x", "c"), ("indicator--y", "b")]
    assert store.kv_get("cursor") is None
    store.kv_set("cursor", "1")
    store.kv_set("cursor", "2")
    assert store.kv_get("cursor") == "2"


def test_stats_count_latest_objects(store: Store) -> None:
    v1 = indicator()
    store.put_many([v1, dict(v1, modified="2024-02-01T00:00:00.000Z"), indicator(tlp=TLP.RED)], P)
    s = store.stats()
    assert s["objects"] == 2 and s["versions"] == 3
    assert s["by_tlp"] == {"TLP:GREEN": 1, "TLP:RED": 1}
    assert s["by_source"] == {"estonia": 2}


def test_rows_by_ids_gives_every_version_and_refuses_unknown_columns(store: Store) -> None:
    import pytest

    old = indicator(oid=sid("indicator", "7"))
    new = indicator(oid=sid("indicator", "7"), modified="2024-02-01T00:00:00.000Z")
    store.put_many([old, new], Provenance("north", "taxii"))
    rows = store.rows_by_ids([old["id"], sid("indicator", "8")], ("id", "is_latest", "source"))
    assert sorted(rows) == [(old["id"], False, "north"), (old["id"], True, "north")]
    assert store.rows_by_ids([], ("id",)) == []
    with pytest.raises(ValueError):
        store.rows_by_ids([old["id"]], ("id; DROP TABLE objects",))


def _rel(source: str, target: str, digit: str, tlp: TLP = TLP.GREEN) -> dict:
    base = indicator(tlp=tlp)
    return {
        "type": "relationship", "spec_version": "2.1", "id": sid("relationship", digit),
        "created": base["created"], "modified": base["modified"],
        "relationship_type": "indicates", "source_ref": source, "target_ref": target,
        "object_marking_refs": base["object_marking_refs"],
    }


def test_linked_reads_relationships_by_either_end_through_their_indexes(store: Store) -> None:
    a, b, c = sid("indicator", "1"), sid("intrusion-set", "2"), sid("malware", "3")
    store.put_many([_rel(a, b, "4"), _rel(c, b, "5"), _rel(a, c, "6", tlp=TLP.RED)], P)
    assert {r.id for r in store.linked([a])} == {sid("relationship", "4"),
                                                sid("relationship", "6")}
    assert {r.id for r in store.linked([b])} == {sid("relationship", "4"),
                                                sid("relationship", "5")}
    assert list(store.linked([])) == []
    green = Access(open_levels=frozenset({TLP.CLEAR, TLP.GREEN}))
    assert {r.id for r in store.linked([a], green)} == {sid("relationship", "4")}
    # The walk must not fall back to scanning every relationship: the plan names an index.
    from shieldwall.store.where import where_of

    w = where_of(Query(linked_to=[a]), store._mark)
    if store.dialect == "sqlite":
        plan = str(store._fetch(f"EXPLAIN QUERY PLAN SELECT o.id FROM objects o{w.sql()}",
                                w.params))
    else:
        with store.engine.connect() as conn:  # a tiny table is scanned whatever the indexes
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = str(conn.exec_driver_sql(
                f"EXPLAIN SELECT o.id FROM objects o{w.sql()}", tuple(w.params)).all())
    assert "ix_objects_rel_source_ref" in plan and "ix_objects_rel_target_ref" in plan
