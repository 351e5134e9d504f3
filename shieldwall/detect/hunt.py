"""The hunt pipeline: readers -> index candidates -> exact evaluation -> sightings.

Data in, data out: `Hunter.run(paths)` reads files, `Hunter.feed(obs)` matches one batch (the
watch loop and the retro-hunt use it too), `Hunter.objects()` returns the STIX to store.
`Hunter.files` says, file by file, what was read and what happened: a sensor's directory holds
damaged and foreign files beside its logs, and none of them ends the run (`FileReport`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from shieldwall.detect import exact
from shieldwall.detect.index import Candidate, Compiled, IndicatorIndex
from shieldwall.detect.readers import (
    LINE,
    TS,
    Observations,
    ReaderError,
    ReadStats,
    detect_format,
    iter_files,
    read,
)
from shieldwall.detect.readers.base import _ref_type
from shieldwall.detect.readers.damage import DAMAGED, FileStats, NotTelemetry, Truncated
from shieldwall.detect.sightings import Hit, Sightings

# Candidate observations kept per multi-observation indicator (FOLLOWEDBY, REPEATS, ...)
# between evaluations: bounded so a noisy atom cannot exhaust memory.
MAX_PENDING = 10_000


# What happened to a file: read whole (bad lines counted and skipped), read up to a stream
# cut short, skipped (holds nothing a hunt reads), or not read at all.
READ, CUT, SKIPPED, FAILED = "read", "cut", "skipped", "failed"


@dataclass
class FileReport:
    """One file of a hunt. `hits` counts single-observation matches in the file (patterns
    over several observations are judged at the end of the run, across files)."""

    file: str
    format: str = ""
    events: int = 0
    hits: int = 0
    bad_lines: int = 0
    outcome: str = READ
    note: str = ""


@dataclass
class _Pending:
    observed: list[dict[str, Any]] = field(default_factory=list)
    cands: list[tuple[Candidate, Observations, int]] = field(default_factory=list)


class Hunter:
    def __init__(self, index: IndicatorIndex, sightings: Sightings,
                 sink: Callable[[Observations], None] | None = None) -> None:
        self.index = index
        self.sightings = sightings
        self.stats: ReadStats = FileStats()
        self.files: list[FileReport] = []
        self.candidates = 0
        self.sink = sink  # e.g. the retro-hunt's Parquet writer
        self._pending: dict[str, _Pending] = defaultdict(_Pending)

    def run(self, paths: Iterable[Path], fmt: str | None = None,
            mapping: dict[str, Any] | None = None,
            progress: Callable[[int], None] | None = None) -> ReadStats:
        for f, shown, given in _walk(list(paths)):
            self.files.append(self._read_file(f, shown, given, fmt, mapping, progress))
        self.finish()
        return self.stats

    def _read_file(self, f: Path, shown: str, given: bool, fmt: str | None,
                   mapping: dict[str, Any] | None,
                   progress: Callable[[int], None] | None) -> FileReport:
        """Read one file to its end, whatever it holds; what happened is in the report.
        A file named on the command line that is not telemetry failed; one found in a
        directory was skipped."""
        st = self.stats
        rep = FileReport(shown)
        events, bad, hits = st.events, st.bad_count, self.sightings.hits
        notes: list[str] = []
        if isinstance(st, FileStats):
            st.notes = notes
        try:
            if not f.is_file():
                raise ReaderError(f"{f}: no such file or directory")
            kind = detect_format(f) if fmt in (None, "zeek") else fmt
            if fmt == "zeek" and kind not in ("zeek-tsv", "zeek-json"):
                kind = "zeek-json"
            rep.format = kind
            for obs in read(f, st, kind, mapping):
                self.feed(obs)
                if progress:
                    progress(obs.events)
        except NotTelemetry as exc:
            rep.outcome = FAILED if given else SKIPPED
            notes.append(_said(exc, f))
        except Truncated as exc:
            rep.outcome = CUT
            notes.append(exc.note)
        except (ReaderError, pa.ArrowException, ValueError, *DAMAGED) as exc:
            rep.outcome = FAILED
            notes.append(_said(exc, f) if isinstance(exc, ReaderError)
                         else f"{type(exc).__name__}: {exc}")
        rep.events, rep.bad_lines = st.events - events, st.bad_count - bad
        rep.hits = self.sightings.hits - hits
        rep.note = "; ".join(notes)
        return rep

    def feed(self, obs: Observations) -> int:
        """Match one batch; returns the number of hits it produced."""
        if self.sink is not None:
            self.sink(obs)
        return self.judge(obs, self.index.candidates(obs.table))

    def judge(self, obs: Observations, cands: list[Candidate]) -> int:
        """Exact verdicts on the index's candidates of `obs` (the retro-hunt's too).

        Candidates are grouped by line (`Observations.event`): a line whose values hit an
        indicator several times (three SANs of one certificate) is one hit, explained by
        the first value that matches."""
        if not cands:
            return 0
        self.candidates += len(cands)
        # An event without a time (an unset `ts`) is recorded at 0, not read as NaN.
        ts = pc.fill_null(obs.table.column(TS), 0).to_numpy(zero_copy_only=False)
        lines = pc.fill_null(obs.table.column(LINE), 0).to_numpy(zero_copy_only=False)
        by_row: dict[tuple[int, int], list[Candidate]] = defaultdict(list)
        event = obs.event
        for c in cands:
            by_row[(c.row if event is None else int(event[c.row]), id(c.indicator))].append(c)
        if obs.originals is None:
            obs.prefetch(sorted({c.row for c in cands}))
        od_cache: dict[int, dict[str, Any]] = {}

        def observed(row: int) -> dict[str, Any]:
            od = od_cache.get(row)
            if od is None:
                od = od_cache[row] = obs.observed_data(row)
            return od

        hits = 0
        for cs in by_row.values():
            comp = cs[0].indicator
            # Each row of the line with a candidate, once (most lines: one row).
            rows: dict[int, Candidate] = {}
            for c in cs:
                rows.setdefault(c.row, c)
            if comp.multi:
                p = self._pending[comp.id]
                for row, c in rows.items():
                    if len(p.observed) < MAX_PENDING:
                        p.observed.append(observed(row))
                        p.cands.append((c, obs, row))
                continue
            # A `direct` pattern needs no evaluator when the value equals its literal: 2-3 us
            # per hit instead of ~60 us for building the observed-data and evaluating it.
            winner = next((c for c in cs if comp.direct and _direct(c)), None)
            if winner is None:
                winner = next((c for row, c in rows.items()
                               if exact.matches(comp.pattern, [observed(row)])), None)
            if winner is not None:
                row = winner.row
                self._hit(comp, winner, obs, row, lambda row=row: observed(row), ts, lines)
                hits += 1
        return hits

    def _hit(self, comp: Compiled, c: Candidate, obs: Observations, row: int,
             od: dict[str, Any] | Callable[[], dict[str, Any]], ts: Any = None,
             lines: Any = None) -> None:
        t = obs.table.column(TS)[row].as_py() if ts is None else ts[row]
        line = obs.table.column(LINE)[row].as_py() if lines is None else lines[row]
        self.sightings.add(Hit(
            comp.id, comp.name, comp.pattern, int(t or 0), od, c.atom.text, c.column,
            str(c.value), obs.source, int(line or 0),
        ))

    def finish(self) -> None:
        """Evaluate multi-observation patterns on their collected candidates."""
        for iid, p in list(self._pending.items()):
            if p.cands and exact.matches(p.cands[0][0].indicator.pattern, p.observed):
                seen: set[tuple[int, int]] = set()  # a line counts once
                for (c, obs, row), od in zip(p.cands, p.observed, strict=True):
                    line = (id(obs), obs.event_of(row))
                    if line not in seen:
                        seen.add(line)
                        self._hit(c.indicator, c, obs, row, od)
            del self._pending[iid]

    def objects(self, only_changed: bool = True) -> list[dict[str, Any]]:
        return self.sightings.objects(only_changed)


def _walk(paths: list[Path]) -> Iterable[tuple[Path, str, bool]]:
    """(file, name shown in the report, named on the command line): directories walked in
    name order (hidden files skipped), their files shown relative to the directory."""
    for p in paths:
        if p.is_dir():
            for f in iter_files([p]):
                yield f, str(f.relative_to(p)), False
        else:
            yield p, p.name, True


def _said(exc: Exception, f: Path) -> str:
    return str(exc).removeprefix(f"{f}: ")


def _direct(c: Candidate) -> bool:
    """The candidate's value satisfies its atom on an object of the atom's type."""
    if not c.is_string or not exact.direct_match(c.atom, c.value):
        return False
    if c.column == c.atom.path:
        return True
    # An address column aliased by `ipv4-addr:value` / `ipv6-addr:value` / `domain-name:value`:
    # the object built for it is typed by its value (readers.base._ref_type).
    want = c.atom.path.partition(":")[0]
    return (want in ("ipv4-addr", "ipv6-addr", "domain-name")
            and _ref_type(c.column.rpartition(".")[0].rpartition(":")[2].removesuffix("[*]"),
                          c.value) == want)
