"""Blind hits: a batch of telemetry against a held set, and the sighting for the owner."""

from __future__ import annotations

import pyarrow as pa

from shieldwall.blind.hits import BlindMatcher, BlindSightings
from shieldwall.blind.resolve import Resolver
from shieldwall.blind.sets import held_sets
from shieldwall.detect.readers import LINE, TS, Observations
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from tests.blind.helpers import ALLY, OWNER, SECRET_DOMAIN, SECRET_IP, local_send, owner_with_set


def _batch() -> Observations:
    table = pa.table({
        TS: pa.array([1_700_000_000_000_000 + i for i in range(4)], pa.int64()),
        LINE: pa.array([1, 2, 3, 4], pa.int64()),
        "network-traffic:src_ref.value": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
        "network-traffic:dst_ref.value": ["198.51.100.1", SECRET_IP, "198.51.100.1",
                                          SECRET_DOMAIN.upper() + "."],
    })
    return Observations(table, "conn.log", "zeek.conn")


def test_matcher_finds_the_lines_and_resolves_each_value_once(store, tmp_path):
    owner_with_set(store, tmp_path)
    sets = list(held_sets(store))
    (s,) = sets
    r = Resolver(store, s.public_key, s.epoch, local_send(tmp_path, store))
    hits = []
    m = BlindMatcher(sets, {s.public_key.hex(): r}, hits.append)
    assert m.feed(_batch()) == 2
    assert sorted((h.line, h.path) for h in hits) == [(2, "ipv4-addr:value"),
                                                      (4, "domain-name:value")]
    asked = r.stats.asked
    assert m.feed(_batch()) == 2  # the same values again: no new lookups at all
    assert r.stats.asked == asked
    said = hits[0].say()
    assert said.startswith(f"a protected indicator of {OWNER} matched conn.log line")
    assert SECRET_IP not in said


def test_sighting_is_for_the_owner_alone_and_carries_no_value(store, tmp_path):
    owner_with_set(store, tmp_path)
    sets = list(held_sets(store))
    (s,) = sets
    sightings = BlindSightings(ALLY)
    r = Resolver(store, s.public_key, s.epoch, local_send(tmp_path, store))
    BlindMatcher(sets, {s.public_key.hex(): r}, sightings.add).feed(_batch())
    objs = sightings.objects()
    assert len(objs) == 2
    for o in objs:
        assert o["object_marking_refs"] == [tlp_marking_ref(TLP.AMBER_STRICT)]
        assert o[AUDIENCE_PROPERTY] == sorted([OWNER, ALLY])
        assert o["sighting_of_ref"] == s.id
        assert SECRET_IP not in str(o) and SECRET_DOMAIN not in str(o)
    assert {o["x_shieldwall_blind_handle"] for o in objs} <= {
        h for m in s.outputs.values() for h in m.values()}


def test_two_passes_resolve_first_then_the_event_path_only_looks_up(store, tmp_path):
    owner_with_set(store, tmp_path)
    sets = list(held_sets(store))
    (s,) = sets
    r = Resolver(store, s.public_key, s.epoch, local_send(tmp_path, store))
    hits = []
    m = BlindMatcher(sets, {s.public_key.hex(): r}, hits.append, learn=False)
    assert m.feed(_batch()) == 0 and r.stats.asked == 0  # nothing resolved: no lookup
    m.learn(_batch())
    assert r.stats.requests == 0  # collected, not yet asked
    assert m.flush() == 14  # 4 sources, 3 destinations, for the address and the name path
    assert r.stats.requests == 2  # one request per path's values
    assert m.feed(_batch()) == 2 and len(hits) == 2


def test_an_owner_that_refuses_leaves_the_other_sets_working(store, tmp_path):
    owner_with_set(store, tmp_path)
    sets = list(held_sets(store))
    (s,) = sets
    refusing = Resolver(store, s.public_key, s.epoch,
                        local_send(tmp_path, store, tier="partner"))
    m = BlindMatcher(sets, {s.public_key.hex(): refusing}, lambda h: None)
    assert m.feed(_batch()) == 0
    assert "allies only" in m.failed[s.id] and OWNER in m.failed[s.id]
