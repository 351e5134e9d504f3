"""The compiled index: each structure, compound patterns, rejections, incremental updates."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from shieldwall.detect.index import IndicatorIndex
from shieldwall.stix.timestamps import parse_ts
from shieldwall.store import Provenance, Store

N = 0


def ind(pattern: str, **kw: object) -> dict:
    global N
    N += 1
    return {"type": "indicator", "spec_version": "2.1",
            "id": f"indicator--00000000-0000-4000-8000-{N:012d}", "name": f"ind{N}",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"} | kw


TABLE = pa.table({
    "network-traffic:dst_ref.value": ["198.51.100.7", "10.1.2.3", "2001:db8::1", None],
    "domain-name:value": ["a.evil.example", "evil.example", "good.example", "xevil.example"],
    "url:value": ["http://x/", "http://y/login.php?a=1", None, "http://z/"],
})


def hits(ix: IndicatorIndex) -> set[tuple[int, str]]:
    return {(c.row, c.indicator.name) for c in ix.candidates(TABLE)}


def test_each_structure_finds_its_rows() -> None:
    ix = IndicatorIndex()
    eq = ind("[ipv4-addr:value = '198.51.100.7']")
    inn = ind("[domain-name:value IN ('good.example', 'nope.example')]")
    sfx = ind("[domain-name:value LIKE '%.evil.example']")
    cidr = ind("[ipv4-addr:value ISSUBSET '10.0.0.0/8']")
    cidr6 = ind("[ipv6-addr:value ISSUBSET '2001:db8::/32']")
    rx = ind(r"[url:value MATCHES 'login\\.php\\?']")
    like = ind("[url:value LIKE 'http://z%']")
    for i in (eq, inn, sfx, cidr, cidr6, rx, like):
        assert ix.add(i) is None
    assert hits(ix) == {(0, eq["name"]), (2, inn["name"]), (0, sfx["name"]), (1, cidr["name"]),
                        (2, cidr6["name"]), (1, rx["name"]), (3, like["name"])}


def test_compound_and_or() -> None:
    ix = IndicatorIndex()
    both = ind("[domain-name:value = 'evil.example' AND domain-name:value LIKE '%.example']")
    either = ind("[url:value = 'http://x/'] OR [ipv4-addr:value = '10.1.2.3']")
    ix.add(both)
    ix.add(either)
    assert ix.indicators[1].multi is False
    assert hits(ix) == {(1, both["name"]), (0, either["name"]), (1, either["name"])}


def test_unusable_patterns_are_reported_with_reason() -> None:
    ix = IndicatorIndex()
    assert "does not parse" in ix.add(ind("[ipv4-addr:value = ")).reason
    assert "no indexable" in ix.add(ind("[network-traffic:dst_port > 1024]")).reason
    r = ix.add(ind(r"[url:value MATCHES '(a+)\\1']"))
    assert "not supported" in r.reason
    assert "pattern_type" in ix.add(ind("alert tcp any any", pattern_type="snort")).reason
    assert len(ix) == 0 and len(ix.rejected) == 4


def test_pathological_regex_does_not_stall() -> None:
    ix = IndicatorIndex()
    ix.add(ind("[url:value MATCHES '^(a+)+$']"))  # catastrophic for a backtracking engine
    table = pa.table({"url:value": ["a" * 50_000 + "!"]})
    assert ix.candidates(table) == []


def test_incremental_add_remove_expire() -> None:
    ix = IndicatorIndex()
    a = ind("[ipv4-addr:value = '198.51.100.7']", valid_until="2024-06-01T00:00:00Z")
    ix.add(a, now=parse_ts("2024-02-01T00:00:00Z"))
    assert hits(ix) == {(0, a["name"])}
    b = ind("[ipv4-addr:value ISSUBSET '10.1.0.0/16']")
    ix.add(b)
    assert hits(ix) == {(0, a["name"]), (1, b["name"])}
    assert ix.remove(b["id"])
    assert hits(ix) == {(0, a["name"])}
    assert ix.expire(parse_ts("2024-07-01T00:00:00Z")) == 1
    assert hits(ix) == set()


def test_sync_from_store_skips_revoked_future_and_warninglisted(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    ok = ind("[ipv4-addr:value = '198.51.100.7']")
    later = ind("[url:value = 'http://x/']", valid_from="2999-01-01T00:00:00Z")
    wl = ind("[domain-name:value = 'good.example']")
    store.put_many([ok, later, wl], Provenance("cert-a"))
    store.tag([(wl["id"], "warninglist", "top domains")])
    ix = IndicatorIndex()
    assert ix.sync(store) == 3
    assert {c.indicator.id for c in ix.candidates(TABLE)} == {ok["id"]}
    revoked = dict(ok, modified="2024-02-01T00:00:00.000Z", revoked=True)
    store.put_many([revoked], Provenance("cert-a"))
    assert ix.sync(store) == 1  # only the new version is read
    assert ix.candidates(TABLE) == []
    forced = IndicatorIndex(force_warninglisted=True)
    forced.sync(store)
    assert {c.indicator.id for c in forced.candidates(TABLE)} == {wl["id"]}
    store.close()
