"""Blind sets in a retro-hunt: the telemetry the node kept, matched against the sets held.

Summary-first, as the plain retro-hunt (`detect.retro_run`): the per-day summaries of the
kept telemetry (`detect.summaries`) already hold each column's distinct values, so they are
what the ally resolves with the owners (a value repeated over months costs one lookup);
only when a resolved value hits are the event files that hold it (the summary's `sources`,
or the whole day) read, and their rows matched by the event path (`BlindMatcher.feed`: one
`is_in` per column). `summary_first=False` (`hunt --since --full-scan`) learns from every
event since the cutoff instead, so list-valued columns (DNS answers), which summaries leave
out, are matched too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shieldwall.blind.hits import BlindMatcher
from shieldwall.blind.sets import BLIND_SET_TYPE, held_sets
from shieldwall.detect import summaries
from shieldwall.detect.readers.base import LINE, TS, Observations
from shieldwall.detect.retro_run import drill_files
from shieldwall.stix.timestamps import now_us

DAY_US = 86_400 * 1_000_000
FILE = "_file"


@dataclass
class RetroResult:
    days: int = 0
    values: int = 0  # distinct values resolved (cache or owner)
    files: int = 0  # event files read for the event path


def retro(matcher: BlindMatcher, root: Path, since_us: int, now: int | None = None, *,
          summary_first: bool = True) -> RetroResult:
    """Match the telemetry kept under `root` of the last `since_us` against the matcher's
    sets; hits go to the matcher's `on_hit`. The matcher must not learn as it feeds
    (`learn=False`): the learning is done here, from the summaries or the events."""
    start = (now_us() if now is None else now) - since_us
    days = summaries.day_dirs(root, str(np.datetime64(start // DAY_US, "D")))
    result = RetroResult(days=len(days))
    if not days or not matcher.paths:
        return result
    if summary_first:
        summaries.ensure(root, days)
        for table in _summaries(matcher, root, days, start):
            for column in set(table.column("type").to_pylist()):
                values = table.filter(pc.equal(table.column("type"), column)).column("value")
                matcher.learn_column(column, values.combine_chunks())
    else:
        for f in _event_files(root, days):
            matcher.learn(_events(f, start))
    result.values = matcher.flush()
    if not matcher.hitting:
        return result
    if not summary_first and matcher.match_kept():  # the events learnt were kept
        return result
    files = (_drill(matcher, root, days, start) if summary_first
             else _event_files(root, days))
    for f in files:
        matcher.feed(_events(f, start))
    result.files = len(files)
    return result


def _summaries(matcher: BlindMatcher, root: Path, days: list[str], start: int,
               hits: bool = False) -> list[pa.Table]:
    """The summary rows since `start` of the columns the matcher reads (with `hits`, only
    the rows of values that hit), a table per summary file."""
    out = []
    for day in days:
        files, _, types = summaries.covered(root, day)
        read = [t for t in types if matcher.reads(t)]
        if not read:
            continue
        for f in files:
            t = pq.read_table(f, columns=["day", "type", "value", "last_seen", "sources"],
                              filters=[("type", "in", read), ("last_seen", ">=", start)])
            if hits and t.num_rows:
                keep = pa.array(np.zeros(t.num_rows, dtype=bool))
                for column in read:
                    wanted = matcher.hit_values(column)
                    if wanted:
                        keep = pc.or_(keep, pc.and_(
                            pc.equal(t.column("type"), column),
                            pc.is_in(t.column("value"), value_set=pa.array(wanted, pa.string()))))
                t = t.filter(keep)
            if t.num_rows:
                out.append(t)
    return out


def _drill(matcher: BlindMatcher, root: Path, days: list[str], start: int) -> list[Path]:
    """The event files that hold a value that hit (`retro_run.drill_files`: the summaries'
    `sources`, or the whole day where a summary of many files kept none)."""
    tables = _summaries(matcher, root, days, start, hits=True)
    return drill_files(root, pa.concat_tables(tables)) if tables else []


def _event_files(root: Path, days: list[str]) -> list[Path]:
    return [f for day in days for f in summaries.event_files(root, day)]


def _events(path: Path, start: int) -> Observations:
    """A kept event file's rows since `start`, as the batch its hunt read (the file it came
    from, its lines), without the columns the store added."""
    table = pq.read_table(path)
    if TS in table.column_names:
        table = table.filter(pc.greater_equal(pc.fill_null(table.column(TS), 0), start))
    source = (table.column(FILE)[0].as_py() if FILE in table.column_names and table.num_rows
              else None) or path.name
    table = table.select([c for c in table.column_names if not c.startswith("_")
                          or c in (TS, LINE)])
    return Observations(table, source, "retro")


# ---- blind sets that arrive ------------------------------------------------------------------


@dataclass
class ArrivedResult:
    sets: int = 0  # new sets hunted
    hits: int = 0
    objects: list[dict[str, Any]] | None = None  # the sightings stored (new or changed)
    failed: dict[str, str] | None = None  # set id -> why it was not resolved


class ArrivedSets:
    """The retro-hunt of blind sets as they arrive. `detect.arrivals` calls it with the ids
    of the set objects stored since its cursor (`serve` and `sync` hand it in: `detect`
    does not know blind matching). The kept telemetry of the last `since_us` is matched
    against the sets among them this node holds (another owner's, its newest epoch),
    resolving with each owner over `send_for(owner)` (the peer's credentials, read when
    asked, so a peer added to a serving node is used); the hits become sightings for each
    owner alone, merged with the stored ones (a re-run records nothing new), stored with
    `identity`.

    `spawn` inside `serve`: its workers are started afresh (a process full of threads is
    not forked), so a large first resolution (~270 us of CPU a value) runs beside the
    server, not in its process.
    """

    types = (BLIND_SET_TYPE,)

    def __init__(self, send_for: Callable[[str], Any], *, processes: int = 1,
                 spawn: bool = False) -> None:
        self.send_for = send_for
        self.processes = processes
        self.spawn = spawn

    def __call__(self, store: Any, telemetry: Path, arrived: set[str], *,
                 member: str, identity: dict[str, Any], since_us: int,
                 now: int | None = None) -> ArrivedResult:
        from shieldwall.blind.hits import BlindSightings
        from shieldwall.blind.resolve import resolvers_for
        from shieldwall.store import Provenance

        sets = [s for s in held_sets(store, exclude_owner=member) if s.id in arrived]
        result = ArrivedResult(len(sets), 0, [], {})
        if not sets:
            return result
        resolvers = resolvers_for(store, sets, self.send_for, processes=self.processes,
                                  spawn=self.spawn)
        sightings = BlindSightings(member)
        matcher = BlindMatcher(sets, resolvers, sightings.add, learn=False)
        retro(matcher, telemetry, since_us, now)
        result.hits, result.failed = matcher.hits, dict(matcher.failed)

        def stored(sid: str) -> dict[str, Any] | None:
            row = store.get(sid)
            return row.obj() if row is not None else None

        result.objects = sightings.objects(stored)
        if result.objects:
            store.put_many([identity, *result.objects], Provenance(member, "detect"))
        return result
