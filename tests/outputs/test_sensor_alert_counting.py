"""Alerts past a window's first hits are only counted, read from the line's bytes: the counts,
times and ids must be those a full parse gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from shieldwall.detect.sensor_hunt import SensorHunter
from shieldwall.stix.timestamps import format_ts
from shieldwall.store import Store
from tests.factories import sid
from tests.outputs.test_sensor_alerts import (
    FLOW,
    IP,
    URL,
    eve_alert,
    intel_log,
    rule_of,
    setup,
    sightings_by_indicator,
)


def _with(alert: bytes, **changes: Any) -> bytes:
    rec = orjson.loads(alert)
    for key, value in changes.items():
        if key == "ids":
            rec["alert"]["metadata"]["shieldwall_id"] = value
        else:
            rec[key] = value
    return orjson.dumps(rec)


def _run(hunter: SensorHunter, path: Path, lines: list[bytes]) -> dict[str, dict[str, Any]]:
    path.write_bytes(b"\n".join(lines) + b"\n")
    hunter.run([path])
    return sightings_by_indicator(hunter)


def test_counted_alerts_keep_their_times_in_any_zone(store: Store, tmp_path: Path) -> None:
    hunter, tmp = setup(store, tmp_path)
    url = eve_alert(rule_of(tmp, URL))
    lines = [_with(url, timestamp=f"2024-06-15T09:40:{s:02d}.{s:06d}+0000") for s in range(20)]
    # a sensor logging local time: the same instants an hour ahead, written +0100
    lines += [_with(url, timestamp=f"2024-06-15T10:41:{s:02d}.000500+0100") for s in range(10)]
    got = _run(hunter, tmp / "eve.json", lines)
    assert got[URL]["count"] == 30 and hunter.sensor_hits == 30
    assert got[URL]["first_seen"] == format_ts(1718444400_000000)  # 09:40:00Z
    assert got[URL]["last_seen"] == format_ts(1718444469_000500)  # 09:41:09.0005Z


def test_an_alert_naming_two_ids_counts_for_each(store: Store, tmp_path: Path) -> None:
    hunter, tmp = setup(store, tmp_path)
    url = eve_alert(rule_of(tmp, URL))
    lines = [url] * 12 + [_with(url, ids=[URL, FLOW])] * 3
    lines += [_with(url, ids=[sid("indicator", "9")])] * 2  # not ours: no count
    got = _run(hunter, tmp / "eve.json", lines)
    assert got[URL]["count"] == 15 and got[FLOW]["count"] == 3


def test_counted_intel_lines_match_a_full_read(store: Store, tmp_path: Path) -> None:
    hunter, tmp = setup(store, tmp_path)
    log = intel_log(tmp)
    text = log.read_text().splitlines(keepends=True)
    head = [ln for ln in text if ln.startswith("#") and not ln.startswith("#close")]
    fields = next(ln for ln in text if IP in ln).rstrip("\n").split("\t")
    body = []
    for k in range(40):  # CRLF and LF lines alike
        fields[0] = f"17184440{k:02d}.0000{k:02d}"
        body.append("\t".join(fields) + ("\r\n" if k % 2 else "\n"))
    log.write_text("".join(head + body))
    hunter.run([log])
    got = sightings_by_indicator(hunter)
    assert got[IP]["count"] == 40 and hunter.sensor_hits == 40
    assert got[IP]["first_seen"] == format_ts(1718444000_000000)
    assert got[IP]["last_seen"] == format_ts(1718444039_000039)


def test_summed_alerts_keep_the_earliest_and_latest_in_any_order(store: Store,
                                                                  tmp_path: Path) -> None:
    hunter, tmp = setup(store, tmp_path)
    url = eve_alert(rule_of(tmp, URL))
    stamps = [f"2024-06-15T09:{m:02d}:30.{u:06d}+0000" for m, u in
              [(40, 5)] * 12 + [(45, 7), (12, 999999), (59, 1), (12, 999998), (30, 0)]]
    got = _run(hunter, tmp / "eve.json", [_with(url, timestamp=t) for t in stamps])
    assert got[URL]["count"] == 17
    assert got[URL]["first_seen"] == format_ts(1718444400_000000 - 28 * 60_000_000 +
                                               30_999_998)  # 09:12:30.999998
    assert got[URL]["last_seen"] == format_ts(1718444400_000000 + 19 * 60_000_000 +
                                              30_000_001)  # 09:59:30.000001
