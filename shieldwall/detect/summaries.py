"""Per-day summaries of the stored telemetry: each distinct value once, with where it was.

A retro-hunt asks "was this new indicator in the last 90 days?". Matching it against every
stored event costs the events; matching it against each day's distinct values costs the
distinct values, which logs repeat heavily (one address in millions of connections). So
beside every Parquet file of events, `TelemetryStore` writes its summary:

    day, type, value, ip4, count, first_seen, last_seen, sources

`type` is the column's STIX path (`network-traffic:dst_ref.value`, `domain-name:value`: more
precise than the object type, since a pattern on `dst_ref` must not meet a `src_ref`), `value`
its canonical text (what the readers wrote), `ip4` the value as an IPv4 integer on address
columns (the plan's CIDR and address joins), `first_seen` / `last_seen` in microseconds, and
`sources` the event files (relative to the telemetry root) that hold the value: a hit drills
into those files only. A summary of many files keeps at most `MAX_SOURCES` of them; past that
`sources` is null and the drill reads the whole day.

Layout: `<telemetry>/_summary/day=YYYY-MM-DD/*.parquet` (the leading `_` keeps Spark and Hive
partition discovery off it); each file's footer names the event files it covers
(`shieldwall.covers`), so the summaries a day lacks are known without reading data:
`ensure` builds them (the retro-hunt calls it, lazily, for the days it reads), `compact`
merges a day's many small summaries into one sorted file (`shieldwall telemetry summarise`).
Summaries are derived data: each file is written whole under a temporary name and renamed,
and a lost one is rebuilt from its events.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shieldwall.detect.index import ipv4_ints
from shieldwall.detect.readers.base import IP_COLUMNS, TS
from shieldwall.detect.retro_plan import plan_columns

SUMMARY_DIR = "_summary"
MAX_SOURCES = 64
COVERS = b"shieldwall.covers"
TYPES = b"shieldwall.types"
# Sorted by (type, ip4, value) in row groups of this many rows: an equality or a CIDR probe
# reads the row groups whose min/max hold the value (DuckDB's zone maps, Spark's pushdown).
ROW_GROUP = 65_536

SCHEMA = pa.schema([
    ("day", pa.string()), ("type", pa.string()), ("value", pa.string()), ("ip4", pa.int64()),
    ("count", pa.int64()), ("first_seen", pa.int64()), ("last_seen", pa.int64()),
    ("sources", pa.list_(pa.string())),
])


def summary_root(root: Path) -> Path:
    return root / SUMMARY_DIR


def summarise(table: pa.Table, day: str, source: str) -> pa.Table:
    """One events table's distinct values per column, with counts and first/last time.

    Columns summarised are those the retro-hunt plan matches (`retro_plan.plan_columns`),
    so summary-first and a full scan look at the same values."""
    ts = table.column(TS) if TS in table.column_names else pa.nulls(table.num_rows, pa.int64())
    parts = []
    for col in plan_columns(table.column_names):
        values = table.column(col)
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            continue
        t = pa.table({"value": values.cast(pa.string()), "ts": ts.cast(pa.int64())})
        t = t.filter(pc.is_valid(t.column("value")))
        if t.num_rows == 0:
            continue
        g = t.group_by("value", use_threads=False).aggregate(
            [("ts", "count", pc.CountOptions(mode="all")), ("ts", "min"), ("ts", "max")])
        n = g.num_rows
        ip4 = pa.nulls(n, pa.int64())
        if col in IP_COLUMNS:
            pos, ints = ipv4_ints(g.column("value"))
            full = np.zeros(n, dtype=np.int64)
            full[pos] = ints
            mask = np.ones(n, dtype=bool)
            mask[pos] = False
            ip4 = pa.array(full, mask=mask)
        parts.append(pa.table({
            "day": pa.array([day] * n, pa.string()),
            "type": pa.array([col] * n, pa.string()),
            "value": g.column("value"),
            "ip4": ip4,
            "count": g.column("ts_count"),
            "first_seen": g.column("ts_min"),
            "last_seen": g.column("ts_max"),
            "sources": pa.array([[source]] * n, pa.list_(pa.string())),
        }, schema=SCHEMA))
    return pa.concat_tables(parts) if parts else SCHEMA.empty_table()


def sorted_summary(table: pa.Table, covers: list[str]) -> pa.Table:
    """A summary as it is written: sorted by (type, ip4, value), its footer naming the event
    files it covers and the types it holds."""
    table = table.sort_by([("type", "ascending"), ("ip4", "ascending"),
                           ("value", "ascending")])
    types = sorted(set(table.column("type").to_pylist())) if table.num_rows else []
    return table.replace_schema_metadata({COVERS: orjson.dumps(covers),
                                          TYPES: orjson.dumps(types)})


def _write(path: Path, table: pa.Table, covers: list[str]) -> None:
    """Whole or not at all: a reader never sees half a summary."""
    table = sorted_summary(table, covers)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP)
    os.replace(tmp, path)


def write_for(root: Path, raw: Path, table: pa.Table) -> None:
    """The summary of one event file just written (`TelemetryStore.write` calls it)."""
    rel = raw.relative_to(root).as_posix()
    day = raw.parent.name.removeprefix("day=")
    _write(summary_root(root) / raw.parent.name / raw.name, summarise(table, day, rel),
           [rel])


def _footer(path: Path) -> dict[bytes, bytes]:
    return pq.read_schema(path).metadata or {}


def covered(root: Path, day_dir: str) -> tuple[list[Path], set[str], list[str]]:
    """A day's summary files, the event files they cover, and the types they hold."""
    files = sorted((summary_root(root) / day_dir).glob("*.parquet"))
    covers: set[str] = set()
    types: set[str] = set()
    for f in files:
        meta = _footer(f)
        covers.update(orjson.loads(meta.get(COVERS, b"[]")))
        types.update(orjson.loads(meta.get(TYPES, b"[]")))
    return files, covers, sorted(types)


def event_files(root: Path, day_dir: str) -> list[Path]:
    return sorted((root / day_dir).glob("*.parquet"))


def summarise_file(raw: Path, day: str, source: str) -> pa.Table:
    """`summarise` of an event file already on disk, by DuckDB: streamed, in memory that
    grows with its distinct values, not its events (a file another tool wrote can be big)."""
    import duckdb

    from shieldwall.detect.engines.duckdb_engine import file_list
    from shieldwall.detect.retro_plan import DUCKDB, is_string

    d = DUCKDB
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 2")
        con.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet({file_list([raw])})")
        types = {r[0]: r[1] for r in con.execute("DESCRIBE ev").fetchall()}
        ts = d.ident(TS) if TS in types else "CAST(NULL AS BIGINT)"
        parts = [f"SELECT {d.string(col)} AS type, {d.ident(col)} AS value, "
                 f"count(*) AS count, min({ts}) AS first_seen, max({ts}) AS last_seen "
                 f"FROM ev WHERE {d.ident(col)} IS NOT NULL GROUP BY {d.ident(col)}"
                 for col in plan_columns(list(types)) if is_string(types[col])]
        if not parts:
            return SCHEMA.empty_table()
        got = con.sql(" UNION ALL ".join(parts)).to_arrow_table()
    finally:
        con.close()
    n = got.num_rows
    ip4 = np.zeros(n, dtype=np.int64)
    known = np.zeros(n, dtype=bool)
    on_ip = np.asarray(pc.is_in(got.column("type"), value_set=pa.array(list(IP_COLUMNS)))
                       .to_numpy(zero_copy_only=False), dtype=bool)
    pos, ints = ipv4_ints(got.column("value"))
    ip4[pos] = ints
    known[pos] = True
    known &= on_ip
    return pa.table({
        "day": pa.array([day] * n, pa.string()), "type": got.column("type"),
        "value": got.column("value"), "ip4": pa.array(ip4, mask=~known),
        "count": got.column("count").cast(pa.int64()),
        "first_seen": got.column("first_seen").cast(pa.int64()),
        "last_seen": got.column("last_seen").cast(pa.int64()),
        "sources": pa.array([[source]] * n, pa.list_(pa.string())),
    }, schema=SCHEMA)


def ensure(root: Path, day_dirs: Iterable[str]) -> int:
    """Build the summaries the given days lack (telemetry kept before summaries existed, or
    a summary lost in a crash); returns how many event files were summarised."""
    built = 0
    for day_dir in day_dirs:
        _, covers, _ = covered(root, day_dir)
        for raw in event_files(root, day_dir):
            rel = raw.relative_to(root).as_posix()
            if rel not in covers:
                day = day_dir.removeprefix("day=")
                _write(summary_root(root) / day_dir / raw.name,
                       summarise_file(raw, day, rel), [rel])
                built += 1
    return built


def compact(root: Path, day_dir: str) -> int:
    """Merge a day's summaries into one sorted file; returns the files merged (0: nothing
    to do). The merged file is in place before the small ones go, so a crash between the
    two leaves a value summarised twice (harmless: hits are made distinct), never missing."""
    files, covers, _ = covered(root, day_dir)
    if len(files) <= 1:
        return 0
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET threads TO 2")
        names = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
        merged = con.sql(f"""
            SELECT day, type, value, any_value(ip4) AS ip4, sum(count)::BIGINT AS count,
                   min(first_seen) AS first_seen, max(last_seen) AS last_seen,
                   CASE WHEN bool_or(sources IS NULL) THEN NULL
                        ELSE list_distinct(flatten(list(sources))) END AS sources
            FROM read_parquet({names}) GROUP BY day, type, value""").to_arrow_table()
    finally:
        con.close()
    merged = merged.cast(SCHEMA)
    src = merged.column("sources")
    too_many = pc.greater(pc.list_value_length(src), MAX_SOURCES)
    merged = merged.set_column(7, "sources", pc.if_else(too_many, pa.nulls(len(merged),
                                                                            src.type), src))
    _write(summary_root(root) / day_dir / f"day-{uuid.uuid4().hex}.parquet", merged,
           sorted(covers))
    for f in files:
        f.unlink()
    return len(files)


def day_dirs(root: Path, first_day: str = "") -> list[str]:
    """The event days kept (`day=YYYY-MM-DD`), from `first_day` on."""
    if not root.exists():
        return []
    return sorted(d.name for d in root.glob("day=*") if d.is_dir()
                  and d.name.removeprefix("day=") >= first_day)
