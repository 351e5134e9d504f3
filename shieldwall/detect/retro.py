"""Retro-hunt: normalised telemetry kept as Parquet by day, matched as one relational plan.

`TelemetryStore` writes every batch a hunt reads to `<home>/telemetry/day=YYYY-MM-DD/` (the
same STIX-path columns, plus `_file`, plus `_ip4:<column>`: each address column's canonical
IPv4 addresses as integers, parsed once at write time so that no retro-hunt parses strings),
each file whole (written under a temporary name, then renamed), and beside it the file's
summary of distinct values (`detect.summaries`). `retro_hunt` runs `detect.retro_run`:
summary-first by default, the plan's SQL in `detect.retro_plan`, on DuckDB or Spark
(`detect.engines`). Candidate rows come back as Arrow and go through the streaming hunt's
verdicts (`_judge`, `Hunter.judge`). List-valued columns (DNS answers) are matched by
streaming hunts only.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shieldwall.detect import summaries
from shieldwall.detect.index import IndicatorIndex, ipv4_ints
from shieldwall.detect.readers.base import IP_COLUMNS, LINE, TS, Observations
from shieldwall.detect.retro_plan import FETCH_SQL, IP4, atom_tables, plan_sql

__all__ = ["FETCH_SQL", "IP4", "TelemetryStore", "atom_tables", "plan_sql", "retro_hunt"]

DAY_US = 86_400 * 1_000_000


class TelemetryStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, obs: Observations) -> None:
        table = obs.table
        if table.num_rows == 0:
            return
        table = table.append_column("_file", pa.array([obs.source] * table.num_rows,
                                                      pa.string()))
        for name in IP_COLUMNS:
            if name in table.column_names and "[*]" not in name:
                col = table.column(name).combine_chunks()
                if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                    pos, ints = ipv4_ints(col)
                    full = np.zeros(table.num_rows, dtype=np.int64)
                    full[pos] = ints
                    mask = np.ones(table.num_rows, dtype=bool)
                    mask[pos] = False
                    table = table.append_column(IP4 + name, pa.array(full, mask=mask))
        days = pc.divide(pc.fill_null(table.column(TS), 0), DAY_US).to_numpy()
        for day in np.unique(days).tolist():
            part = table.filter(pa.array(days == day)) if len(np.unique(days)) > 1 else table
            name = np.datetime64(int(day), "D").astype(str)
            d = self.root / f"day={name}"
            d.mkdir(parents=True, exist_ok=True)
            raw = d / f"{obs.kind}-{uuid.uuid4().hex}.parquet"
            tmp = raw.with_name(f".{raw.name}.tmp")  # a killed hunt leaves no half file
            pq.write_table(part, tmp, compression="zstd")
            os.replace(tmp, raw)
            summaries.write_for(self.root, raw, part)


def retro_hunt(root: Path | str, index: IndicatorIndex, hunter: Any, since_us: int,
               now: int | None = None, timings: dict[str, Any] | None = None,
               engine: Any = "duckdb", master: str | None = None,
               summary_first: bool = True) -> int:
    """Match stored telemetry of the last `since_us` against the index; returns hits.

    Summary-first on DuckDB by default; `detect.retro_run` runs it (and a full scan, and
    Spark).
    """
    from shieldwall.detect.retro_run import retro_hunt as run

    return run(root, index, hunter, since_us, now, timings, engine, master, summary_first)


def _judge(res: pa.Table, index: IndicatorIndex, hunter: Any) -> int:
    """The plan's rows through the streaming hunt's verdicts, one file at a time; an event
    met through several columns or atoms of one indicator counts once. The rows of one
    (time, line) are one event (`Observations.event`): a line's further values are stored in
    rows of their own (`readers.elements`), and the verdicts try each until one matches."""
    if res.num_rows == 0:
        return 0
    res = res.sort_by([("_file", "ascending"), (LINE, "ascending"), (TS, "ascending")])
    event_cols = [c for c in res.column_names
                  if c not in ("slot", "atom", "_col", "_file", "_i") and not c.startswith(IP4)]
    files = res.column("_file").combine_chunks()
    bounds = np.flatnonzero(pc.not_equal(files.slice(1), files.slice(0, len(files) - 1))
                            .to_numpy(zero_copy_only=False)) + 1
    hits = 0
    for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), res.num_rows], strict=True):
        part = res.slice(lo, hi - lo)
        ts = pc.fill_null(part.column(TS), 0).to_numpy(zero_copy_only=False)
        line = pc.fill_null(part.column(LINE), 0).to_numpy(zero_copy_only=False)
        starts = np.ones(part.num_rows, dtype=bool)
        starts[1:] = (line[1:] != line[:-1]) | (ts[1:] != ts[:-1])
        event = np.maximum.accumulate(np.where(starts, np.arange(part.num_rows), 0))
        obs = Observations(part.select(event_cols), str(files[lo]), "retro", event=event)
        slots = part.column("slot").to_numpy()
        atoms = part.column("atom").to_numpy()
        cols = part.column("_col").to_pylist()
        values: list[Any] = [None] * part.num_rows
        strings = [True] * part.num_rows
        for name in set(cols):
            idx = [i for i, c in enumerate(cols) if c == name]
            col = part.column(name)
            is_str = pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
            for i, v in zip(idx, col.take(pa.array(idx)).to_pylist(), strict=True):
                values[i] = v if is_str else str(v)
                strings[i] = is_str
        cands = [c for i in range(part.num_rows)
                 if (c := index.candidate(int(slots[i]), int(atoms[i]), i, cols[i], values[i],
                                          strings[i])) is not None]
        hits += hunter.judge(obs, cands)
    return hits
