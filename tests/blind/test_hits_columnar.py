"""The matcher's columnar learning: spellings folded to one input, other string types, and
values collected after a flush (as `watch` does) not asked again."""

from __future__ import annotations

import pyarrow as pa

from shieldwall.blind.hits import BlindMatcher
from shieldwall.blind.resolve import Resolver
from shieldwall.blind.sets import held_sets
from shieldwall.detect.readers import LINE, TS, Observations
from tests.blind.helpers import SECRET_DOMAIN, SECRET_IP, local_send, owner_with_set

DST = "network-traffic:dst_ref.value"
STRING = pa.string()


def _batch(dst: list[str], string_type: pa.DataType = STRING) -> Observations:
    n = len(dst)
    table = pa.table({
        TS: pa.array([1_700_000_000_000_000 + i for i in range(n)], pa.int64()),
        LINE: pa.array(list(range(1, n + 1)), pa.int64()),
        DST: pa.array(dst, string_type),
    })
    return Observations(table, "conn.log", "zeek.conn")


def _matcher(store, tmp_path, **kw):
    owner_with_set(store, tmp_path)
    (s,) = list(held_sets(store))
    r = Resolver(store, s.public_key, s.epoch, local_send(tmp_path, store))
    hits = []
    return BlindMatcher([s], {s.public_key.hex(): r}, hits.append, **kw), r, hits


def test_spellings_of_one_value_are_one_input_and_each_line_hits(store, tmp_path):
    m, r, hits = _matcher(store, tmp_path, learn=False)
    spellings = [SECRET_DOMAIN, SECRET_DOMAIN.upper(), SECRET_DOMAIN + ".", "other.example"]
    m.learn(_batch(spellings))
    assert m.flush() == 8  # four raw values, for the name and the address path
    # the name path: three spellings, one canonical value: two inputs; the address path:
    # four inputs (no canonical rule rewrites a name there)
    assert r.stats.asked == 6
    assert m.feed(_batch(spellings)) == 3
    assert sorted(h.line for h in hits) == [1, 2, 3]


def test_large_strings_are_canonical_and_hit(store, tmp_path):
    m, _, hits = _matcher(store, tmp_path)
    assert m.feed(_batch(["198.51.100.9", SECRET_IP, SECRET_DOMAIN.upper()],
                         pa.large_string())) == 2
    assert sorted((h.line, h.path) for h in hits) == [(2, "ipv4-addr:value"),
                                                      (3, "domain-name:value")]


def test_values_after_a_flush_are_not_asked_again(store, tmp_path):
    m, r, _ = _matcher(store, tmp_path)
    assert m.feed(_batch(["198.51.100.9", SECRET_IP])) == 1
    asked = r.stats.asked
    assert m.feed(_batch(["198.51.100.9", SECRET_IP, "198.51.100.10"])) == 1
    assert r.stats.asked == asked + 2  # only the new value, for each of the two paths
    m.learn(_batch([SECRET_IP, "198.51.100.10"]))
    assert m.flush() == 0
