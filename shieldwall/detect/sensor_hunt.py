"""Hunts and watches that also read sensors' alerts on exported indicators.

`SensorHunter` is a `Hunter` that reads each file's sensor lines first
(`readers.sensor_alerts`): intel.log lines and Suricata alerts naming an exported indicator
become hits of it, explained by the sensor's own line, and those lines are left out of the
value matching so one alert counts once; Intel notices are matched by their value.
`SensorWatcher` does the same for a followed file, reading what it grew by before the
`Watcher` does. The sightings are the hunt's own (`detect.sightings`), so they federate as
any other.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from shieldwall.detect.hunt import FileReport, Hunter
from shieldwall.detect.index import IndicatorIndex
from shieldwall.detect.readers import LINE, Observations, detect_format
from shieldwall.detect.readers.damage import DAMAGED
from shieldwall.detect.readers.sensor_alerts import Scan, SensorAlerts, SensorHit
from shieldwall.detect.sightings import Hit, Sightings
from shieldwall.detect.watch import Watcher
from shieldwall.errors import ShieldwallError

if TYPE_CHECKING:
    from shieldwall.store import Store


class SensorHunter(Hunter):
    def __init__(self, index: IndicatorIndex, sightings: Sightings,
                 sink: Callable[[Observations], None] | None = None,
                 sids: Mapping[int, str] | None = None) -> None:
        super().__init__(index, sightings, sink)
        self.sensors = SensorAlerts(lambda iid: index.get(iid) is not None, sids,
                                    _Tally(sightings))
        self.claimed: dict[str, set[int]] = {}  # source -> lines read as sensor alerts
        self.sensor_hits = 0

    def _read_file(self, f: Path, shown: str, given: bool, fmt: str | None,
                   mapping: dict[str, Any] | None,
                   progress: Callable[[int], None] | None) -> FileReport:
        try:
            kind = detect_format(f) if fmt in (None, "zeek") else fmt
        except (ShieldwallError, OSError, ValueError, *DAMAGED):
            kind = None  # the reader below says what the file is
        if kind in ("suricata", "zeek-tsv", "zeek-json"):
            scan = None
            # a damaged file: the reader below reports what is wrong with it
            hits = self.sightings.hits
            with contextlib.suppress(ShieldwallError, OSError, ValueError, *DAMAGED):
                scan = self.sensors.scan(f, kind, str(f), partial(self._add, str(f), 0))
            if scan is not None:
                self.record(scan, str(f))
                if scan.lines and len(scan.claimed) == scan.lines and not scan.observations:
                    # Every line an alert on an exported indicator (a sensor's own alert
                    # log): nothing is left for the value matching to read.
                    self.claimed.pop(str(f), None)
                    self.stats.files += 1
                    self.stats.events += scan.lines
                    return FileReport(shown, format=kind, events=scan.lines,
                                      hits=self.sightings.hits - hits)
        try:
            return super()._read_file(f, shown, given, fmt, mapping, progress)
        finally:
            self.claimed.pop(str(f), None)

    def _add(self, source: str, offset: int, h: SensorHit) -> None:
        comp = self.index.get(h.indicator_id)
        if comp is None:
            return
        # built only for the first hits of a window (Sightings.max_refs)
        observed = partial(_observed, h.observed, h.ts_us)
        self.sightings.add(Hit(comp.id, comp.name, comp.pattern, h.ts_us, observed,
                               h.what, h.field, h.value, source, h.line + offset, h.text))

    def record(self, scan: Scan, source: str, offset: int = 0) -> int:
        """Hits from a scan's alert lines (those not taken as they were read); its notices
        matched as observations. Returns the hits; the scan's lines are claimed for
        `source` until its read ends."""
        for h in scan.hits:
            self._add(source, offset, h)
        hits = len(scan.hits) + scan.emitted + scan.counted
        self.sensor_hits += hits
        self.claimed[source] = {n + offset for n in scan.claimed} if offset else scan.claimed
        for obs in scan.observations:
            if offset:
                table = obs.table
                i = table.column_names.index(LINE)
                obs = Observations(table.set_column(i, LINE, pa.array(
                    [n + offset for n in table.column(LINE).to_pylist()], pa.int64())),
                    source, obs.kind)
            hits += super().feed(obs)
        return hits

    def feed(self, obs: Observations) -> int:
        claimed = self.claimed.get(obs.source)
        if not claimed:
            return super().feed(obs)
        if self.sink is not None:
            self.sink(obs)
        lines = obs.table.column(LINE).to_numpy(zero_copy_only=False)
        cands = [c for c in self.index.candidates(obs.table)
                 if int(lines[c.row]) not in claimed]
        return self.judge(obs, cands)


class _Tally:
    """`readers.sensor_alerts.Tally` over the hunt's sightings: `Sightings.count_only`'s
    rule (a window takes counts alone once its observed-data and explanations are full),
    with many hits of one window added at once."""

    def __init__(self, sightings: Sightings) -> None:
        self.window_us = sightings.window_us
        self.full = sightings.is_full
        self.add = sightings.count_many


class SensorWatcher(Watcher):
    """A `Watcher` whose hunter also reads the sensor lines the followed file grows by."""

    def __init__(self, hunter: SensorHunter, path: Path, *, from_start: bool = True,
                 metrics: Store | None = None, metrics_every: float = 5.0) -> None:
        """`metrics`: the node's store, whose hunt totals (`/metrics`: events hunted and the
        seconds it took) the watch adds to as it reads, at most every `metrics_every`
        seconds, and at `flush_metrics`."""
        super().__init__(hunter, path, from_start=from_start)
        self.sensor_hunter = hunter
        self.metrics = metrics
        self.metrics_every = metrics_every
        self._busy = 0.0  # seconds spent reading since the totals were last added to
        self._events = hunter.stats.events  # events counted in the totals so far
        self._recorded_at: float | None = None
        self._fh: Any = None
        self._inode: int | None = None
        self._lines = 0
        self._rest = b""
        self._header: list[bytes] = []
        self._kind: str | None = None
        self._join_at_end = not from_start

    def poll(self) -> int:
        started = time.perf_counter()
        hits = self._scan_new()
        hits += super().poll()
        self._busy += time.perf_counter() - started
        if self.metrics is not None and self.hunter.stats.events > self._events and (
                self._recorded_at is None
                or time.monotonic() - self._recorded_at >= self.metrics_every):
            self.flush_metrics()
        return hits

    def flush_metrics(self) -> None:
        """Add what was read since the last call to the node's hunt totals."""
        events = self.hunter.stats.events - self._events
        if self.metrics is None or events <= 0:
            return
        from shieldwall.observe.counters import record_hunt

        record_hunt(self.metrics, events, self._busy)
        self._events += events
        self._busy = 0.0
        self._recorded_at = time.monotonic()

    def _scan_new(self) -> int:
        path = self.f.path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return 0
        if self._fh is not None and (st.st_ino != self._inode or st.st_size < self._fh.tell()):
            hits = self._scan_chunk(self._fh.read())  # the rest of the rotated file
            self._fh.close()
            self._fh = None
            return hits + self._scan_new()
        if self._fh is None:
            self._fh = open(path, "rb")  # noqa: SIM115 - kept open while followed
            self._inode, self._lines, self._rest, self._kind = st.st_ino, 0, b"", None
            self._header = []
            if self._join_at_end:  # as the Watcher: only the first file is joined at its end
                head = self._fh.read(65536)
                self._header = [ln + b"\n" for ln in head.split(b"\n") if ln.startswith(b"#")]
                self._fh.seek(0, os.SEEK_END)
                self._join_at_end = False
        return self._scan_chunk(self._fh.read())

    def _scan_chunk(self, data: bytes) -> int:
        data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        chunk = data[:cut]
        if not chunk:
            return 0
        raw = chunk.splitlines(keepends=True)
        first = self._lines
        self._lines += len(raw)
        if self._kind is None:
            self._kind = _kind_of(raw[0], self.f.path)
        if self._kind is None:
            return 0
        if self._kind == "zeek-tsv":
            self._header += [ln for ln in raw if ln.startswith(b"#")]
            numbered = [(first + i + 1, ln) for i, ln in enumerate(raw)
                        if not ln.startswith(b"#")]
            header = self._header
        else:
            numbered = [(first + i + 1, ln) for i, ln in enumerate(raw)]
            header = []
        scan = self.sensor_hunter.sensors.scan_lines(numbered, self._kind, str(self.f.path),
                                                     self.f.path.name, header)
        return self.sensor_hunter.record(scan, str(self.f.path))


def _kind_of(first: bytes, path: Path) -> str | None:
    if first.startswith(b"#"):
        return "zeek-tsv"
    if first.lstrip().startswith(b"{"):
        return "suricata" if b'"event_type"' in first else "zeek-json"
    return None


def _observed(paths: dict[str, Any], ts_us: int) -> dict[str, Any]:
    """The observed-data of a sensor line (its addresses and the value it reported)."""
    from shieldwall.detect.readers.base import objects_from_paths
    from shieldwall.stix.timestamps import format_ts

    ts = format_ts(ts_us)
    return {"type": "observed-data", "spec_version": "2.1",
            "id": "observed-data--00000000-0000-4000-8000-000000000000",
            "created": ts, "modified": ts, "first_observed": ts, "last_observed": ts,
            "number_observed": 1, "objects": objects_from_paths(dict(paths))}
