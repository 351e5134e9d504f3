"""A retro-hunt run: summary-first (the default) or a full scan, on DuckDB or Spark.

Summary-first: the atoms are joined with the per-day summaries of distinct values
(`detect.summaries`) of the days since the cutoff; only the hit values' event files are
then read, by an equi-join on those exact values, and the candidate events go through the
same verdicts as a full scan's. Both ways run `retro_plan`'s SQL, so the candidates are the
same rows (the differential tests compare the sightings). Days lacking summaries (telemetry
kept before summaries existed) are summarised first, lazily, from their events.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shieldwall.detect.engines import Engine, open_engine
from shieldwall.detect.engines.storage import LocalTelemetry, RemoteTelemetry, open_telemetry
from shieldwall.detect.index import IndicatorIndex
from shieldwall.detect.readers.base import TS
from shieldwall.detect.retro_plan import (
    EVENT_KEYS,
    SUMMARY_KEYS,
    atom_tables,
    drill_sql,
    fetch_rows_sql,
    fetch_sql,
    plan_sql,
    values_sql,
)
from shieldwall.stix.timestamps import now_us

DAY_US = 86_400 * 1_000_000


def candidates(engine: Engine, root: Path | str, index: IndicatorIndex, start: int,
               summary_first: bool = True, info: dict[str, Any] | None = None,
               ) -> pa.Table | None:
    """The candidate events (whole, with slot, atom and _col) since `start`, or None.
    `root`: a directory, or an object store's URI (`s3://bucket/prefix`,
    `engines.storage`)."""
    info = {} if info is None else info
    d = engine.dialect
    tel = open_telemetry(root)
    fs = tel.filesystem
    # Over Arrow datasets (an object store) there are no file and row numbers to name an
    # event by: time and line then.
    keys = EVENT_KEYS if fs is not None else getattr(engine, "row_keys", EVENT_KEYS)
    first_day = str(np.datetime64(start // DAY_US, "D"))
    days = tel.day_dirs(first_day)
    if not days:
        return None
    since = f"{d.ident(TS)} >= {int(start)}"
    if summary_first:
        info["summarised"] = tel.ensure(days)
        sfiles: list[Any] = []
        types: set[str] = set()
        for day in days:
            files, _, day_types = tel.covered(day)
            sfiles += files
            types.update(day_types)
        info["summary_files"] = len(sfiles)
        if not sfiles or not types:
            return None
        _view(engine, "summary", sfiles, f"last_seen >= {int(start)}", fs)
        sql = _plan(engine, index, sorted(types), "summary", SUMMARY_KEYS)
        if not sql:
            return None
        hits = engine.arrow(sql)
        info["summary_hits"] = hits.num_rows
        if hits.num_rows == 0:
            return None
        files = _drill(tel, hits)
        info["drill_files"] = len(files)
        if not files:
            return None
        columns = list(_view(engine, "events", files, since, fs))
        distinct = hits.select(["_col", "value", "slot", "atom"]).group_by(
            ["_col", "value", "slot", "atom"], use_threads=False).aggregate([])
        engine.register("hits", distinct.select(["_col", "value", "slot", "atom"]))
        sql = drill_sql(d, columns, sorted(set(distinct.column("_col").to_pylist())), keys)
    else:
        files = [f for day in days for f in tel.event_files(day)]
        if not files:
            return None
        types = _view(engine, "events", files, since, fs)
        sql = _plan(engine, index, list(types),
                    lambda only, ip: values_sql(d, types, only, keys, ip), keys)
    if not sql:
        return None
    cands = engine.arrow(sql)
    info["candidates"] = cands.num_rows
    if cands.num_rows == 0:
        return None
    engine.register("cands", cands)
    return engine.arrow(fetch_sql(d, cands.num_rows) if keys == EVENT_KEYS
                       else fetch_rows_sql(cands))


def _view(engine: Engine, name: str, files: list[Any], where: str, fs: Any) -> dict[str, str]:
    """Files as relation `name`: local paths, or paths of an object store's filesystem."""
    if fs is None:
        return engine.view(name, files, where)
    return engine.view(name, files, where, filesystem=fs)


def _plan(engine: Engine, index: IndicatorIndex, columns: list[str], relation: Any,
          keys: tuple[str, ...]) -> str:
    """The atom tables sent to the engine, and the plan over `relation`."""
    tables = atom_tables(index, columns)
    for name, t in tables.items():
        engine.register(name, t)
    return plan_sql(tables, engine.dialect, relation, keys)


def drill_files(root: Path, hits: pa.Table) -> list[Path]:
    """The event files behind the hits: their `sources`, or the whole day where a summary
    of many files kept none."""
    return _drill(LocalTelemetry(root), hits)


def _drill(tel: LocalTelemetry | RemoteTelemetry, hits: pa.Table) -> list[Any]:
    files: set[Any] = set()
    whole = pc.is_null(hits.column("sources"))
    for day in set(pc.filter(hits.column("day"), whole).to_pylist()):
        files.update(tel.event_files(f"day={day}"))
    named = pc.list_flatten(pc.filter(hits.column("sources"), pc.invert(whole)))
    files.update(tel.named(set(named.to_pylist())))
    return sorted(files)


def retro_hunt(root: Path | str, index: IndicatorIndex, hunter: Any, since_us: int,
               now: int | None = None, timings: dict[str, Any] | None = None,
               engine: str | Engine = "duckdb", master: str | None = None,
               summary_first: bool = True) -> int:
    """Match stored telemetry of the last `since_us` against the index; returns hits.

    `engine` is a name (`duckdb`, `spark`: started here and stopped after) or a running
    `Engine`. `timings`, when given, receives the seconds spent in the plan ("plan") and in
    the verdicts ("verdicts"), and what the run read (summaries built, hits, files drilled,
    candidates).
    """
    from shieldwall.detect.retro import _judge

    t0 = time.perf_counter()
    start = (now_us() if now is None else now) - since_us
    info: dict[str, Any] = {}
    eng = open_engine(engine, master) if isinstance(engine, str) else engine
    try:
        res = candidates(eng, root, index, start, summary_first, info)
    finally:
        if isinstance(engine, str):
            eng.close()
    t1 = time.perf_counter()
    hits = _judge(res, index, hunter) if res is not None else 0
    if timings is not None:
        timings.update(info, plan=t1 - t0, verdicts=time.perf_counter() - t1)
        timings.setdefault("candidates", 0)
    return hits
