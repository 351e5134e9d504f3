"""Blind sets over kept telemetry (`blind.retro`, what `hunt --since` runs): the summaries
are resolved, only the files holding a hit are read, and the range is respected."""

from __future__ import annotations

import pyarrow as pa

from shieldwall.blind.hits import BlindMatcher
from shieldwall.blind.resolve import Resolver
from shieldwall.blind.retro import retro
from shieldwall.blind.sets import held_sets
from shieldwall.detect.readers import LINE, TS, Observations
from shieldwall.detect.retro import TelemetryStore
from tests.blind.helpers import SECRET_IP, local_send, owner_with_set

DAY_US = 86_400 * 1_000_000
NOW = 1_750_000_000_000_000


def _conn(source: str, at_us: int, dst: list[str]) -> Observations:
    n = len(dst)
    return Observations(pa.table({
        TS: pa.array([at_us + i for i in range(n)], pa.int64()),
        LINE: pa.array(range(1, n + 1), pa.int64()),
        "network-traffic:src_ref.value": [f"10.0.0.{i}" for i in range(n)],
        "network-traffic:dst_ref.value": dst,
    }), source, "zeek.conn")


def _dns(source: str, at_us: int, answers: list[list[str]]) -> Observations:
    n = len(answers)
    return Observations(pa.table({
        TS: pa.array([at_us + i for i in range(n)], pa.int64()),
        LINE: pa.array(range(1, n + 1), pa.int64()),
        "domain-name:value": [f"q{i}.example" for i in range(n)],
        "domain-name:resolves_to_refs[*].value": pa.array(answers, pa.list_(pa.string())),
    }), source, "zeek.dns")


def _matcher(store, tmp_path, hits):  # type: ignore[no-untyped-def]
    owner_with_set(store, tmp_path)
    sets = list(held_sets(store))
    (s,) = sets
    r = Resolver(store, s.public_key, s.epoch, local_send(tmp_path, store))
    return BlindMatcher(sets, {s.public_key.hex(): r}, hits.append, learn=False), r


def test_retro_resolves_the_summaries_and_reads_only_the_files_that_hit(store, tmp_path):
    root = tmp_path / "telemetry"
    kept = TelemetryStore(root)
    kept.write(_conn("old.log", NOW - 10 * DAY_US, ["198.51.100.9", SECRET_IP]))
    kept.write(_conn("clean.log", NOW - DAY_US, ["198.51.100.1", "198.51.100.2"]))
    kept.write(_conn("conn.log", NOW - DAY_US, ["198.51.100.1", "198.51.100.3", SECRET_IP]))
    hits: list = []  # type: ignore[type-arg]
    m, r = _matcher(store, tmp_path, hits)

    done = retro(m, root, 3 * DAY_US, NOW)
    assert [(h.file, h.line, h.field) for h in hits] == [
        ("conn.log", 3, "network-traffic:dst_ref.value")]
    assert done.files == 1  # clean.log not read again, old.log out of range
    # The distinct values in range, once each, for the address and the name path:
    # 3 sources + 4 destinations (198.51.100.1 is in both files).
    assert done.values == 2 * 7 and r.stats.asked == 2 * 7

    hits.clear()
    m, _ = _matcher(store, tmp_path, hits)
    retro(m, root, 30 * DAY_US, NOW)
    assert sorted((h.file, h.line) for h in hits) == [("conn.log", 3), ("old.log", 2)]


def test_list_columns_are_matched_by_a_full_scan_only(store, tmp_path):
    root = tmp_path / "telemetry"
    TelemetryStore(root).write(_dns("dns.log", NOW - DAY_US,
                                    [["192.0.2.1"], ["192.0.2.2", SECRET_IP]]))
    hits: list = []  # type: ignore[type-arg]
    m, _ = _matcher(store, tmp_path, hits)
    retro(m, root, 3 * DAY_US, NOW)
    assert hits == []  # summaries leave list-valued columns out, as the plain retro-hunt
    m, _ = _matcher(store, tmp_path, hits)
    done = retro(m, root, 3 * DAY_US, NOW, summary_first=False)
    assert [(h.file, h.line, h.field) for h in hits] == [
        ("dns.log", 2, "domain-name:resolves_to_refs[*].value")]
    assert done.files == 0  # matched in what learning kept of the events: not read again
