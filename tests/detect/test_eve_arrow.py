"""Suricata EVE read by Arrow's JSON parser gives what the Python reader gives, line for line,
and stays bounded: a line nested too deep, a field of another type, a line that is not JSON
send their block to the Python reader, which counts the bad lines with their numbers.

The lines are the real EVE output under tests/data/suricata (sources in NOTICE), one at a
time and shuffled together into blocks of many events of every type.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from shieldwall.detect.readers import ReadStats, eve_arrow, read, suricata

DATA = Path(__file__).parents[1] / "data" / "suricata"
FILES = ("eve.json", "verify-checks.eve.json", "verify-fileinfo.eve.json")


def real_lines() -> list[bytes]:
    return [ln for f in FILES for ln in (DATA / f).read_bytes().splitlines(keepends=True)
            if ln.strip()]


def parsed(line: bytes) -> dict | None:
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) else None


def as_lists(raw: dict, ts, refs, types) -> dict:  # type: ignore[no-untyped-def]
    return {k: v.to_pylist() for k, v in raw.items()} | {
        "_ts": ts.to_pylist(), "_refs": refs.to_pylist(), "_types": types.to_pylist()}


def python_read(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list, ReadStats]:
    """The file read with Arrow's parser turned off: every block line by line."""
    with monkeypatch.context() as m:
        m.setattr(eve_arrow, "read_block", lambda lines: None)
        stats = ReadStats()
        return [o.table.to_pylist() for o in read(path, stats, "suricata")], stats


def test_every_real_line_reads_the_same() -> None:
    lines = real_lines()
    fast = 0
    for line in lines:
        rec = parsed(line)
        table = eve_arrow.read_block([line])
        if rec is None:
            assert table is None  # not JSON for orjson: not for Arrow either
            continue
        if table is None:
            continue
        fast += 1
        assert as_lists(*eve_arrow.columns(table)) == as_lists(*suricata.python_columns([rec])), \
            line
    assert fast >= len(lines) - 2  # all but the corrupt line (and at most one other)


def test_blocks_of_mixed_events_read_the_same(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    good = [ln for ln in real_lines() if parsed(ln) is not None]
    # and the fileinfo event's http metadata with a referrer, as in test_list_values
    ev = parsed(good[-1])
    assert ev is not None and ev["event_type"] == "fileinfo"
    ev["http"]["http_refer"] = "https://www.Google.com/search?q=eicar"
    good.append(orjson.dumps(ev) + b"\n")
    rng = random.Random(5)
    block = [rng.choice(good) for _ in range(3000)]
    table = eve_arrow.read_block(block)
    assert table is not None
    assert as_lists(*eve_arrow.columns(table)) == as_lists(
        *suricata.python_columns([orjson.loads(x) for x in block]))
    # Whole files, bad lines included: the same batches and the same bad lines either way.
    log = tmp_path / "eve.json"
    log.write_bytes(b"".join(block) + (DATA / "eve.json").read_bytes() + b"\n\n")
    stats = ReadStats()
    got = [o.table.to_pylist() for o in read(log, stats, "suricata")]
    want, want_stats = python_read(log, monkeypatch)
    assert got == want
    assert stats.events == want_stats.events == 3000 + sum(
        parsed(ln) is not None for ln in (DATA / "eve.json").read_bytes().splitlines()
        if ln.strip())
    assert [(b.line, b.reason) for b in stats.bad] == [(b.line, b.reason)
                                                        for b in want_stats.bad]
    assert stats.bad_count == 1


def test_a_line_nested_too_deep_never_reaches_arrow(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    good = [ln for ln in real_lines() if parsed(ln) is not None]
    deep = b'{"event_type":"http","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    log = tmp_path / "eve.json"
    log.write_bytes(b"".join(good[:5]) + deep + b"".join(good[5:]))
    seen: list[int] = []
    real = eve_arrow.read_block

    def spy(lines: list[bytes]):  # type: ignore[no-untyped-def]
        seen.append(max(ln.count(b"[") for ln in lines))
        return real(lines)

    monkeypatch.setattr(eve_arrow, "read_block", spy)
    stats = ReadStats()
    batches = list(read(log, stats, "suricata"))
    assert seen and max(seen) <= 64
    assert stats.events == len(good) and sum(b.events for b in batches) == len(good)
    assert [(b.line, b.reason.split(":")[0]) for b in stats.bad] == [(6, "bad JSON")]


def test_a_field_of_another_type_reads_its_block_in_python(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = [ln for ln in real_lines() if parsed(ln) is not None]
    odd = parsed(good[0]) | {"src_port": "80", "dest_port": 443}  # a port written as text
    assert eve_arrow.read_block([orjson.dumps(odd) + b"\n"]) is None
    log = tmp_path / "eve.json"
    log.write_bytes(b"".join(good) + orjson.dumps(odd) + b"\n")
    stats = ReadStats()
    got = [o.table.to_pylist() for o in read(log, stats, "suricata")]
    assert got == python_read(log, monkeypatch)[0]
    assert stats.events == len(good) + 1 and stats.bad_count == 0
