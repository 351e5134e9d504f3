"""The hunt pipeline: readers -> index candidates -> exact evaluation -> sightings.

Data in, data out: `Hunter.run(paths)` reads files, `Hunter.feed(obs)` matches one batch (the
watch loop and the retro-hunt use it too), `Hunter.objects()` returns the STIX to store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shieldwall.detect import exact
from shieldwall.detect.index import Candidate, Compiled, IndicatorIndex
from shieldwall.detect.readers import LINE, TS, Observations, ReadStats, iter_files, read
from shieldwall.detect.sightings import Hit, Sightings

# Candidate observations kept per multi-observation indicator (FOLLOWEDBY, REPEATS, ...)
# between evaluations: bounded so a noisy atom cannot exhaust memory.
MAX_PENDING = 10_000


@dataclass
class _Pending:
    observed: list[dict[str, Any]] = field(default_factory=list)
    cands: list[tuple[Candidate, Observations, int]] = field(default_factory=list)


class Hunter:
    def __init__(self, index: IndicatorIndex, sightings: Sightings,
                 sink: Callable[[Observations], None] | None = None) -> None:
        self.index = index
        self.sightings = sightings
        self.stats = ReadStats()
        self.candidates = 0
        self.sink = sink  # e.g. the retro-hunt's Parquet writer
        self._pending: dict[str, _Pending] = defaultdict(_Pending)

    def run(self, paths: Iterable[Path], fmt: str | None = None,
            mapping: dict[str, Any] | None = None,
            progress: Callable[[int], None] | None = None) -> ReadStats:
        for f in iter_files(list(paths)):
            for obs in read(f, self.stats, fmt, mapping):
                self.feed(obs)
                if progress:
                    progress(len(obs))
        self.finish()
        return self.stats

    def feed(self, obs: Observations) -> int:
        """Match one batch; returns the number of hits it produced."""
        if self.sink is not None:
            self.sink(obs)
        cands = self.index.candidates(obs.table)
        if not cands:
            return 0
        self.candidates += len(cands)
        ts = obs.table.column(TS)
        lines = obs.table.column(LINE)
        by_row: dict[tuple[int, int], list[Candidate]] = defaultdict(list)
        for c in cands:
            by_row[(c.row, id(c.indicator))].append(c)
        od_cache: dict[int, dict[str, Any]] = {}
        hits = 0
        for (row, _), cs in by_row.items():
            comp = cs[0].indicator
            od = od_cache.get(row)
            if od is None:
                od = od_cache[row] = obs.observed_data(row)
            if comp.multi:
                p = self._pending[comp.id]
                if len(p.observed) < MAX_PENDING:
                    p.observed.append(od)
                    p.cands.append((cs[0], obs, row))
                continue
            if exact.matches(comp.pattern, [od]):
                self._hit(comp, cs[0], obs, row, od, ts, lines)
                hits += 1
        return hits

    def _hit(self, comp: Compiled, c: Candidate, obs: Observations, row: int,
             od: dict[str, Any], ts: Any = None, lines: Any = None) -> None:
        ts = obs.table.column(TS) if ts is None else ts
        lines = obs.table.column(LINE) if lines is None else lines
        t = ts[row].as_py() or 0
        self.sightings.add(Hit(
            comp.id, comp.name, comp.pattern, int(t), od, c.atom.text, c.column,
            str(c.value), obs.source, int(lines[row].as_py() or 0),
        ))

    def finish(self) -> None:
        """Evaluate multi-observation patterns on their collected candidates."""
        for iid, p in list(self._pending.items()):
            if p.cands and exact.matches(p.cands[0][0].indicator.pattern, p.observed):
                for (c, obs, row), od in zip(p.cands, p.observed, strict=True):
                    self._hit(c.indicator, c, obs, row, od)
            del self._pending[iid]

    def objects(self, only_changed: bool = True) -> list[dict[str, Any]]:
        return self.sightings.objects(only_changed)
