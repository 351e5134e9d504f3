"""Sensors' alerts on exported indicators, read back as hits of those indicators.

A sensor that matched an exported indicator says which one:

- Zeek intel.log (TSV or JSON): `sources` holds the indicator's STIX id (the Intel file's
  `meta.source`, `outputs.sensors.zeek_intel`).
- Suricata EVE `alert` events: `alert.metadata.shieldwall_id` holds the STIX id (the rule's
  `metadata`, `outputs.sensors.suricata`); when the sensor logs no metadata, the rule's
  `signature_id` through the sids the node handed out (`sids`).
- Zeek notice.log `Intel::Notice` (`do_notice`): the notice names only the value (`sub`), so
  its lines are given back as observations with that value, matched like any telemetry.

Such a line is a hit of that indicator as it stands: a rule for a flow, or a dataset lookup,
is not re-evaluated from the few fields an alert carries. The lines read here are `claimed`:
the hunt leaves them out of its value matching (`Hunter`), so one alert counts once. Lines
naming an id this node does not hold active, dataset alerts and other intel sources are not
claimed and go through the usual matching.

Figures: see bench/sensors_bench.py (lines/s read into sightings) in docs/benchmarks.md.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow as pa

from shieldwall.detect.readers.base import LINE, TS, Observations, open_text
from shieldwall.stix import values as canon

SENSOR_ID = "shieldwall_id"  # the metadata key the exported rules carry
MAX_LINE = 2000  # characters of the sensor line kept in an explanation
_ID = re.compile(rb"indicator--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_V4 = re.compile(r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}")
_CONN = {"id.orig_h": "network-traffic:src_ref.value",
         "id.resp_h": "network-traffic:dst_ref.value",
         "id.orig_p": "network-traffic:src_port", "id.resp_p": "network-traffic:dst_port"}
_INTEL_PATHS = {
    "Intel::ADDR": "ipv4-addr:value", "Intel::SUBNET": "ipv4-addr:value",
    "Intel::DOMAIN": "domain-name:value", "Intel::URL": "url:value",
    "Intel::EMAIL": "email-addr:value", "Intel::CERT_HASH": "x509-certificate:hashes.'SHA-1'",
}
_HASHES = {32: "file:hashes.MD5", 40: "file:hashes.'SHA-1'", 64: "file:hashes.'SHA-256'"}


@dataclass
class SensorHit:
    """One sensor line naming one exported indicator."""

    indicator_id: str
    ts_us: int
    line: int
    text: str  # the sensor's line, as written (cut at MAX_LINE)
    what: str  # e.g. `suricata sid 1000100 rev 2`, `zeek intel Intel::DOMAIN`
    field: str  # where the id was read
    value: str  # the value or signature the sensor reported
    observed: dict[str, Any] = field(default_factory=dict)  # STIX path -> value


@dataclass
class Scan:
    hits: list[SensorHit] = field(default_factory=list)
    claimed: set[int] = field(default_factory=set)  # line numbers read here
    observations: list[Observations] = field(default_factory=list)  # notices, by value
    lines: int = 0
    counted: int = 0  # alert lines only counted (`SensorAlerts.count`)
    # Takes each hit as it is read (else they are kept in `hits`): a window then fills
    # while the file is read, and `count` can take the rest of its hits.
    sink: Callable[[SensorHit], None] | None = None
    emitted: int = 0

    def add(self, hit: SensorHit) -> None:
        if self.sink is None:
            self.hits.append(hit)
        else:
            self.sink(hit)
            self.emitted += 1


# An alert of one of our rules names one id in its metadata; the key and its list can only
# be JSON syntax (a quote inside a logged string value is escaped), so the id and the time
# are read without parsing the line when it is only to be counted: the id at a fixed offset
# after the key, the time at the line's start (where Suricata writes it).
_EVE_TS = re.compile(rb'"timestamp":"([^"]{20,40})"')
_META_KEY = b'"shieldwall_id":["'
_ID_AT = len(_META_KEY)
_ID_END = _ID_AT + len("indicator--") + 36


class Tally(Protocol):
    """Counts hits whose sighting window needs nothing more of them (its observed-data and
    explanations are full): a sensor's alert log repeats a few indicators a million times.
    A window full once stays full, so the lines of one (id, window) seen full are summed
    and given at once."""

    window_us: int

    def full(self, indicator_id: str, ts_us: int) -> bool:
        """Does the window of this hit need nothing more than its count?"""
        ...

    def add(self, indicator_id: str, start_us: int, n: int, first_us: int,
            last_us: int) -> None:
        """Count `n` hits of a full window, the earliest and latest at these times."""
        ...


class _Sums:
    """Lines only to be counted, summed per (id, window) while a file is read."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.sums: dict[tuple[bytes, int], list[Any]] = {}  # -> [n, first, last] (raw)

    def one(self, iid: str, ts: int) -> bool:
        """A line whose time was read in full: counted at once when its window is full."""
        if not self.tally.full(iid, ts):
            return False
        w = self.tally.window_us
        self.tally.add(iid, ts - ts % w, 1, ts, ts)
        return True

    def flush(self, to_us: Callable[[bytes], int]) -> None:
        for (iid, start), (n, first, last) in self.sums.items():
            self.tally.add(iid.decode("ascii", "replace"), start, n, to_us(first),
                           to_us(last))
        self.sums = {}


class SensorAlerts:
    """Reads alert lines of files a hunt is given; `known` says which ids are active here."""

    def __init__(self, known: Callable[[str], bool], sids: Mapping[int, str] | None = None,
                 count: Tally | None = None) -> None:
        """`known`: is this id an indicator active here; `sids`: sid -> indicator id;
        `count`: counts hits that need no details (`Tally`): such a line is not parsed."""
        self.known = known
        self.sids = dict(sids or {})
        self.count = count

    def scan(self, path: Path, kind: str, shown: str | None = None,
             sink: Callable[[SensorHit], None] | None = None) -> Scan:
        """The sensor lines of `path` (format `kind` as `readers.detect_format` names it)."""
        with open_text(path, buffering=1 << 20) as fh:
            return self.scan_lines(enumerate(fh, 1), kind, shown or str(path), path.name,
                                   sink=sink)

    def scan_lines(self, lines: Iterable[tuple[int, bytes]], kind: str, shown: str,
                   name: str = "", header: Sequence[bytes] = (),
                   sink: Callable[[SensorHit], None] | None = None) -> Scan:
        """The sensor lines among numbered raw `lines` (a file, or what a followed file
        grew by: `header` then holds a Zeek TSV log's `#` lines read before)."""
        out = Scan(sink=sink)
        if kind == "suricata":
            self._eve(lines, out)
        elif kind == "zeek-tsv":
            self._zeek_tsv(itertools.chain(((0, h) for h in header), lines), out, shown)
        elif kind == "zeek-json" and name.startswith(("intel", "notice")):
            self._zeek_json(lines, out, shown)
        elif kind == "zeek-json":
            it = iter(lines)
            first = next(it, None)
            if first is not None and (b'"seen' in first[1] or b'"note"' in first[1]):
                self._zeek_json(itertools.chain([first], it), out, shown)
        return out

    # ---- Suricata ------------------------------------------------------------------

    def _eve(self, lines: Iterable[tuple[int, bytes]], out: Scan) -> None:
        marker = SENSOR_ID.encode()
        sids = bool(self.sids)
        claimed = out.claimed
        tally = self.count
        sums = _Sums(tally) if tally is not None else None
        window = tally.window_us if tally is not None else 0
        # `2025-06-15T10:00:00` (UTC) -> (its microseconds, its window's start); -1 when it
        # is not a time, or the window does not start on a whole second
        seconds: dict[bytes, tuple[int, int]] = {}
        held = sums.sums if sums is not None else {}
        counted = seen = 0
        for n, raw in lines:
            seen += 1
            # Only alerts of our rules are parsed: a flow or DNS event costs a find (after
            # the time Suricata writes first; a line written otherwise takes the full path).
            if raw.find(b'"event_type":"alert"', 40) < 0:
                if b'"alert"' not in raw or (not sids and marker not in raw):
                    continue
            elif sums is not None:
                # One id in the metadata list: `"shieldwall_id":["indicator--<36>"]` (found
                # from the end, where Suricata writes the alert); a string that is not an id
                # held here fills no window, so is not counted.
                i = raw.rfind(_META_KEY)
                if i >= 0 and raw.startswith(b'"]', i + _ID_END):
                    # Suricata writes the time first, in one fixed width
                    if raw.startswith(b'{"timestamp":"') and raw.startswith(b'+0000"', 40) \
                            and raw.startswith(b".", 33) and raw[34:40].isdigit():
                        second = raw[14:33]
                        got = seconds.get(second)
                        if got is None:
                            base = _eve_ts(second.decode("ascii", "replace") + ".000000+0000")
                            got = seconds[second] = (base, base - base % window) if base and \
                                not window % 1_000_000 else (-1, -1)
                        if got[1] >= 0:
                            key = (raw[i + _ID_AT:i + _ID_END], got[1])
                            stamp = raw[14:40]  # one zone, one width: ordered as text
                            acc = held.get(key)
                            if acc is not None:
                                acc[0] += 1
                                if stamp < acc[1]:
                                    acc[1] = stamp
                                elif stamp > acc[2]:
                                    acc[2] = stamp
                                claimed.add(n)
                                counted += 1
                                continue
                            if sums.tally.full(key[0].decode("ascii", "replace"),
                                               got[0] + int(raw[34:40])):
                                held[key] = [1, stamp, stamp]
                                claimed.add(n)
                                counted += 1
                                continue
                    else:
                        found = _EVE_TS.search(raw)
                        ts = _eve_ts(found.group(1).decode("ascii", "replace")) if found else 0
                        if ts and sums.one(raw[i + _ID_AT:i + _ID_END].decode("ascii",
                                                                              "replace"), ts):
                            claimed.add(n)
                            counted += 1
                            continue
                elif i < 0 and not sids and marker not in raw:
                    continue
            elif not sids and marker not in raw:
                continue
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue  # the hunt's reader counts it
            if not isinstance(rec, dict) or rec.get("event_type") != "alert":
                continue
            alert = rec.get("alert")
            if not isinstance(alert, dict):
                continue
            ids, where = self._alert_ids(alert)
            if not ids:
                continue
            ts = _eve_ts(rec.get("timestamp"))
            obs = _eve_observed(rec)
            text = raw.decode("utf-8", "replace").rstrip("\r\n")[:MAX_LINE]
            what = f"suricata sid {alert.get('signature_id')} rev {alert.get('rev')}"
            sig = str(alert.get("signature", ""))[:200]
            for iid in ids:
                out.add(SensorHit(iid, ts, n, text, what, where, sig, obs))
            out.claimed.add(n)
        if sums is not None:
            sums.flush(lambda stamp: _eve_ts(stamp.decode("ascii", "replace") + "+0000"))
        out.lines += seen
        out.counted += counted

    def _alert_ids(self, alert: dict[str, Any]) -> tuple[list[str], str]:
        meta = alert.get("metadata")
        named = meta.get(SENSOR_ID) if isinstance(meta, dict) else None
        if isinstance(named, list):  # the rule says which indicator: the sid is not asked
            ids = [i for i in named if isinstance(i, str) and self.known(i)]
            return ids, f"alert.metadata.{SENSOR_ID}"
        sid = alert.get("signature_id")
        iid = self.sids.get(sid) if isinstance(sid, int) else None
        if iid is not None and self.known(iid):
            return [iid], "alert.signature_id"
        return [], ""

    # ---- Zeek ----------------------------------------------------------------------

    def _zeek_tsv(self, lines: Iterable[tuple[int, bytes]], out: Scan, shown: str) -> None:
        fields: list[str] = []
        sep, unset = ",", "-"
        notices: list[dict[str, Any]] = []
        tally = self.count
        sums = _Sums(tally) if tally is not None else None
        held = sums.sums if sums is not None else {}
        window = tally.window_us if tally is not None else 0
        starts: dict[bytes, int] = {}  # whole seconds -> their window's start; -1: none
        si = ti = -1
        nf = 0
        counted = 0
        claimed = out.claimed
        for n, raw in lines:
            if si >= 0 and ti >= 0 and sums is not None and raw[:1] != b"#":
                # An item of ours only to be counted: its id and time read from the bytes
                values = raw.rstrip(b"\r\n").split(b"\t")
                if len(values) == nf:
                    tsb = values[ti]
                    if len(tsb) == 17 and tsb[10:11] == b"." and tsb[11:].isdigit():
                        start = starts.get(tsb[:10])
                        if start is None:
                            sec = int(tsb[:10]) * 1_000_000 if tsb[:10].isdigit() else -1
                            start = starts[tsb[:10]] = sec - sec % window if sec >= 0 and \
                                not window % 1_000_000 else -1
                        if start >= 0:
                            key = (values[si], start)
                            acc = held.get(key)
                            if acc is not None:  # one width: ordered as text
                                acc[0] += 1
                                if tsb < acc[1]:
                                    acc[1] = tsb
                                elif tsb > acc[2]:
                                    acc[2] = tsb
                                claimed.add(n)
                                counted += 1
                                continue
                            if sums.tally.full(values[si].decode("utf-8", "replace"),
                                               _zeek_ts(tsb)):
                                held[key] = [1, tsb, tsb]
                                claimed.add(n)
                                counted += 1
                                continue
                    elif sums.one(values[si].decode("utf-8", "replace"), _zeek_ts(tsb)):
                        claimed.add(n)
                        counted += 1
                        continue
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("#"):
                if line.startswith("#fields\t"):
                    fields = line.split("\t")[1:]
                    if "sources" not in fields and "note" not in fields:
                        return  # neither intel.log nor notice.log
                    si = fields.index("sources") if "sources" in fields else -1
                    ti = fields.index("ts") if "ts" in fields else -1
                    nf = len(fields)
                elif line.startswith("#set_separator\t"):
                    sep = line.split("\t", 1)[1]
                elif line.startswith("#unset_field\t"):
                    unset = line.split("\t", 1)[1]
                continue
            out.lines += 1
            values = line.split("\t")
            if len(values) != len(fields):
                continue  # the hunt's reader counts it
            rec = {f: v for f, v in zip(fields, values, strict=True) if v != unset}
            if "sources" in rec:
                rec["sources"] = rec["sources"].split(sep)
            self._zeek_record(rec, n, line, out, notices)
        if sums is not None:
            sums.flush(_zeek_ts)
        out.lines += counted
        out.counted += counted
        self._notices(notices, shown, out)

    def _zeek_json(self, lines: Iterable[tuple[int, bytes]], out: Scan, shown: str) -> None:
        notices: list[dict[str, Any]] = []
        for n, raw in lines:
            out.lines += 1
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                if isinstance(rec.get("seen"), dict):  # nested JSON (no dotted keys)
                    rec |= {f"seen.{k}": v for k, v in rec["seen"].items()}
                if isinstance(rec.get("id"), dict):
                    rec |= {f"id.{k}": v for k, v in rec["id"].items()}
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._zeek_record(rec, n, text, out, notices)
        self._notices(notices, shown, out)

    def _zeek_record(self, rec: dict[str, Any], n: int, text: str, out: Scan,
                     notices: list[dict[str, Any]]) -> None:
        sources = rec.get("sources")
        if isinstance(sources, list):
            ids = [s for s in sources if isinstance(s, str) and _ID.fullmatch(s.encode())
                   and self.known(s)]
            if not ids:
                return
            value = str(rec.get("seen.indicator", ""))
            kind = str(rec.get("seen.indicator_type", ""))
            obs = _conn(rec)
            path = _INTEL_PATHS.get(kind) or (_HASHES.get(len(value)) if kind ==
                                              "Intel::FILE_HASH" else None)
            if path and value:
                obs[_address_path(path, value)] = canon.canonical(path, value)
            what = f"zeek intel {kind} at {rec.get('seen.where', '-')}"
            for iid in ids:
                out.add(SensorHit(iid, _zeek_ts(rec.get("ts")), n, text[:MAX_LINE],
                                          what, "sources", value, obs))
            out.claimed.add(n)
        elif rec.get("note") == "Intel::Notice" and rec.get("sub"):
            notices.append(rec | {LINE: n})
            out.claimed.add(n)

    def _notices(self, notices: list[dict[str, Any]], shown: str, out: Scan) -> None:
        """Intel notices as observations: the value in the column of its shape."""
        if not notices:
            return
        rows: list[dict[str, Any]] = []
        for rec in notices:
            value = str(rec["sub"])
            row = _conn(rec)
            row[_guess_path(value)] = canon.guess(value) if "/" not in value else \
                canon.url("http://" + value)
            row[TS] = _zeek_ts(rec.get("ts"))
            row[LINE] = rec[LINE]
            rows.append(row)
        columns = sorted({k for r in rows for k in r})
        table = pa.table({c: pa.array([r.get(c) for r in rows],
                                      pa.int64() if c in (TS, LINE) or c.endswith("_port")
                                      else pa.string()) for c in columns})
        out.observations.append(Observations(table, shown, "zeek.notice"))


def _conn(rec: dict[str, Any]) -> dict[str, Any]:
    obs: dict[str, Any] = {}
    for f, p in _CONN.items():
        v = rec.get(f)
        if v is None:
            continue
        if p.endswith("_port"):
            try:
                obs[p] = int(v)
            except (TypeError, ValueError):
                continue
        else:
            obs[p] = canon.host(str(v))
    return obs


def _address_path(path: str, value: str) -> str:
    return "ipv6-addr:value" if path == "ipv4-addr:value" and ":" in value else path


def _guess_path(value: str) -> str:
    if _V4.fullmatch(value):
        return "ipv4-addr:value"
    if ":" in value and "/" not in value:
        return "ipv6-addr:value"
    if "@" in value:
        return "email-addr:value"
    if "/" in value:
        return "url:value"
    if len(value) in _HASHES and re.fullmatch(r"[0-9A-Fa-f]+", value):
        return _HASHES[len(value)]
    return "domain-name:value"


def _zeek_ts(value: Any) -> int:
    try:
        return int(float(value) * 1_000_000)
    except (TypeError, ValueError):
        return 0


def _eve_ts(value: Any) -> int:
    """`2024-03-05T10:15:03.001202+0000` -> microseconds; 0 when it is not one."""
    text = str(value)
    if len(text) < 25 or text[19] != ".":
        return 0
    frac, zone = text[20:-5], text[-5:]
    if not frac.isdigit():
        return 0
    return _eve_second(text[:19] + zone) + int(frac[:6].ljust(6, "0"))


@lru_cache(maxsize=4096)
def _eve_second(text: str) -> int:
    """Alerts come in bursts within the same second: its parse is cached."""
    from datetime import datetime

    try:
        return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()) * 1_000_000
    except ValueError:
        return 0


def _eve_observed(rec: dict[str, Any]) -> dict[str, Any]:
    obs: dict[str, Any] = {}
    for key, path in (("src_ip", "network-traffic:src_ref.value"),
                      ("dest_ip", "network-traffic:dst_ref.value")):
        if isinstance(rec.get(key), str):
            obs[path] = canon.host(rec[key])
    for key, path in (("src_port", "network-traffic:src_port"),
                      ("dest_port", "network-traffic:dst_port")):
        if isinstance(rec.get(key), int):
            obs[path] = rec[key]
    if isinstance(rec.get("proto"), str):
        obs["network-traffic:protocols[*]"] = [rec["proto"].lower()]
    return obs
