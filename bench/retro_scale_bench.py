"""Retro-hunt at scale: summary-first over many days, the full scan, and Spark against DuckDB.

1. Generates `--days` days of `--events-per-day` connection events (Parquet by day, written
   by DuckDB as a hunt would keep them, `_ip4:` integers included) and builds each day's
   summary with the product's own summariser (`summaries.summarise_file`, then `compact`),
   timing the build.
2. Summary-first: one new indicator (an address planted on 3 days) against all the days,
   on DuckDB: the answer time (summaries, drill into the hit files, verdicts), median of
   `--runs`.
3. Full scan of the same days (DuckDB, 2 threads): rows per CPU-second of this process.
4. Spark `local[2]` against DuckDB on the first `--spark-events` events with
   `--spark-indicators` equality indicators (full scan, same data, same run): rows/s of
   each, and the Spark session's start time.

`--scan-only`: generate the events (no summaries) and time the DuckDB full scan alone, for
indicators whose values lie inside the generated ranges (no row group can be skipped), the
plan as it runs against the plan naming events by (time, line) and fetching them by a join
of every stored event (the reference), alternated, median of `--runs` each.

Generated data is deleted at the end (`--keep` to keep it). Check `df -h` first: about
20 bytes per event.

    .venv/bin/python bench/retro_scale_bench.py --days 90 --events-per-day 1000000 \\
        --spark-events 10000000 --spark-indicators 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

DAY_US = 86_400 * 1_000_000
DAY0 = 20_000  # days since 1970: 2024-10-04
PLANT = "203.0.113.77"
PLANT_DAYS = (10, 50, 80)
MEMBER = "identity--00000000-0000-4000-8000-00000000000b"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def gen_day(con: Any, root: Path, day: int, n: int) -> None:
    """One day of `n` events: internal sources (65,536 hosts), external destinations drawn
    from 2M addresses, a name on every third event from 500,000; the planted address on a
    few events of the planted days."""
    name = str(__import__("numpy").datetime64(DAY0 + day, "D"))
    d = root / f"day={name}"
    d.mkdir(parents=True, exist_ok=True)
    step = DAY_US // n
    plant = day in PLANT_DAYS
    dst4 = (f"CASE WHEN {plant} AND i % 1000003 = 7 THEN 3405803853 "  # 203.0.113.77
            f"ELSE 1509949440 + hash(i * 7919 + {day}) % 2000000 END")
    src4 = "167772160 + hash(i * 31 + 1) % 65536"

    def text(e: str) -> str:
        return (f"concat_ws('.', ({e}) >> 24, (({e}) >> 16) % 256, (({e}) >> 8) % 256, "
                f"({e}) % 256)")

    con.execute(f"""
        COPY (
          SELECT {(DAY0 + day) * DAY_US} + i * {step} AS _ts, i + 9 AS _line,
                 {text("s")} AS "network-traffic:src_ref.value",
                 {text("t")} AS "network-traffic:dst_ref.value",
                 CAST(s AS BIGINT) AS "_ip4:network-traffic:src_ref.value",
                 CAST(t AS BIGINT) AS "_ip4:network-traffic:dst_ref.value",
                 CAST(1024 + (i * 13) % 60000 AS BIGINT) AS "network-traffic:src_port",
                 CAST(443 AS BIGINT) AS "network-traffic:dst_port",
                 CASE WHEN i % 3 = 0 THEN 'd' || (hash(i * 3 + {day}) % 500000)
                      || '.example.net' END AS "domain-name:value",
                 'conn-{name}.log' AS _file
          FROM (SELECT i, CAST({src4} AS BIGINT) AS s, CAST({dst4} AS BIGINT) AS t
                FROM range({n}) r(i))
        ) TO '{d / "zeek.conn-bench.parquet"}' (FORMAT parquet, COMPRESSION zstd)
    """)


def _generate(root: Path, args: Any, total: int, summarise: bool = True) -> None:
    import duckdb
    import pyarrow.parquet as pq

    from shieldwall.detect import summaries

    print(f"generating {args.days} days x {args.events_per_day:,} events in {root}", flush=True)
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    t0 = time.perf_counter()
    for day in range(args.days):
        gen_day(con, root, day, args.events_per_day)
    con.close()
    gen_s = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 2**20
    if not summarise:
        print(f"events: {total:,} ({size:,.0f} MiB Parquet, {gen_s:.0f} s to generate)",
              flush=True)
        return
    t0, c0 = time.perf_counter(), _cpu()
    days = summaries.day_dirs(root)
    summaries.ensure(root, days)
    for day in days:
        summaries.compact(root, day)
    build_s, build_cpu = time.perf_counter() - t0, _cpu() - c0
    sfiles = list(summaries.summary_root(root).rglob("*.parquet"))
    srows = sum(pq.read_metadata(f).num_rows for f in sfiles)
    ssize = sum(f.stat().st_size for f in sfiles)
    print(f"events: {total:,} ({size:,.0f} MiB Parquet, {gen_s:.0f} s to generate); "
          f"summaries: {srows:,} rows ({srows / args.days:,.0f} a day, "
          f"{ssize / 2**20:,.0f} MiB), built in {build_s:.0f} s "
          f"({build_cpu:.0f} CPU-s, {total / build_s:,.0f} events/s)", flush=True)


def _cpu_run(label: str, root: Path, ix: Any, since: int, now: int, total: int,
             summary_first: bool) -> None:
    from shieldwall.detect.retro_run import retro_hunt

    t0, c0 = time.perf_counter(), _cpu()
    hits = retro_hunt(root, ix, _hunter(ix), since, now=now, summary_first=summary_first)
    el, cpu = time.perf_counter() - t0, _cpu() - c0
    print(f"{label}: {el:.1f} s, {cpu:.1f} CPU-s: {total / cpu:,.0f} rows per CPU-second "
          f"({total / el:,.0f} rows/s wall); {hits} hits", flush=True)


def _hunter(ix: Any) -> Any:
    from shieldwall.detect.hunt import Hunter
    from shieldwall.detect.sightings import Sightings
    from shieldwall.stix.markings import TLP

    return Hunter(ix, Sightings(MEMBER, TLP.AMBER))


def _indicator(n: int, pattern: str) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1",
            "id": f"indicator--00000000-0000-4000-8000-{n:012d}", "name": f"b{n}",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2010-01-01T00:00:00Z"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--events-per-day", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--spark-events", type=int, default=10_000_000)
    ap.add_argument("--spark-indicators", type=int, default=1_000_000)
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--spark-only", action="store_true",
                    help="Spark against DuckDB alone (on --reuse telemetry: no summaries)")
    ap.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                    help="a Spark setting for the bench's session (repeatable)")
    ap.add_argument("--scan-only", action="store_true",
                    help="the DuckDB full scan against the (time, line) reference alone")
    ap.add_argument("--dir", type=Path, default=None, help="where to generate (default: tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--reuse", type=Path, default=None,
                    help="a telemetry root a --keep run generated (summaries built)")
    args = ap.parse_args()

    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.retro_run import retro_hunt

    base = Path(tempfile.mkdtemp(prefix="retro-scale-", dir=args.dir))
    root = args.reuse or base / "telemetry"
    total = args.days * args.events_per_day
    try:
        if args.reuse is None:
            _generate(root, args, total, summarise=not args.scan_only)
        if args.scan_only:
            _scan_ab(root, args, total)
            return
        if args.spark_only:
            _spark_vs_duckdb(root, args, (args.days + 1) * DAY_US, (DAY0 + args.days) * DAY_US)
            return

        ix = IndicatorIndex()
        ix.add(_indicator(1, f"[ipv4-addr:value = '{PLANT}']"))
        since = (args.days + 1) * DAY_US
        now = (DAY0 + args.days) * DAY_US
        times, info = [], {}
        for _ in range(args.runs):
            info = {}
            t0 = time.perf_counter()
            hits = retro_hunt(root, ix, _hunter(ix), since, now=now, timings=info)
            times.append(time.perf_counter() - t0)
        print(f"summary-first, 1 new indicator, {args.days} days: median "
              f"{statistics.median(times):.2f} s of {args.runs} "
              f"({', '.join(f'{t:.2f}' for t in times)}); {hits} hits, "
              f"{info.get('summary_hits')} summary hits, {info.get('drill_files')} files "
              f"drilled, plan {info.get('plan', 0):.2f} s, verdicts "
              f"{info.get('verdicts', 0):.2f} s", flush=True)

        _cpu_run("full scan, same indicator", root, ix, since, now, total, False)

        # Values inside the generated ranges, so that no row group can be skipped by its
        # min/max (the planted address lies above every generated one: a best case).
        mix = IndicatorIndex()
        for n, pat in enumerate(["[ipv4-addr:value = '90.0.48.57']",
                                 "[domain-name:value = 'd12345.example.net']",
                                 "[ipv4-addr:value ISSUBSET '90.0.7.0/24']"], 2):
            mix.add(_indicator(n, pat))
        for first in (True, False):
            _cpu_run(f"{'summary-first' if first else 'full scan'}, 3 indicators inside "
                     "the generated ranges (address, name, /24)", root, mix, since, now,
                     total, first)

        if not args.no_spark:
            _spark_vs_duckdb(root, args, since, now)
    finally:
        if args.keep or args.reuse:
            print(f"kept {root}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def _scan_ab(root: Path, args: Any, total: int) -> None:
    """The DuckDB full scan as it runs (events named by file and row number, the candidates'
    rows fetched from their files) against the reference plan (events named by time and
    line, fetched by a join of every stored event), alternated, `--runs` each."""
    from shieldwall.detect.engines.duckdb_engine import DuckDBEngine
    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.retro_plan import EVENT_KEYS
    from shieldwall.detect.retro_run import retro_hunt

    class Reference(DuckDBEngine):
        row_keys = EVENT_KEYS

    since = (args.days + 1) * DAY_US
    now = (DAY0 + args.days) * DAY_US
    sets = {"1 address inside the ranges": ["[ipv4-addr:value = '90.0.48.57']"],
            "3 indicators inside the ranges (address, name, /24)": [
                "[ipv4-addr:value = '90.0.48.57']",
                "[domain-name:value = 'd12345.example.net']",
                "[ipv4-addr:value ISSUBSET '90.0.7.0/24']"]}
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    for label, patterns in sets.items():
        ix = IndicatorIndex()
        for n, pat in enumerate(patterns, 2):
            ix.add(_indicator(n, pat))
        cpu: dict[str, list[float]] = {"plan": [], "reference": []}
        wall: dict[str, list[float]] = {"plan": [], "reference": []}
        hits = {}
        for _ in range(args.runs):
            for name, cls in (("plan", DuckDBEngine), ("reference", Reference)):
                eng = cls()
                try:
                    t0, c0 = time.perf_counter(), _cpu()
                    hits[name] = retro_hunt(root, ix, _hunter(ix), since, now=now, engine=eng,
                                            summary_first=False)
                    wall[name].append(time.perf_counter() - t0)
                    cpu[name].append(_cpu() - c0)
                finally:
                    eng.close()
        for name in ("plan", "reference"):
            c, w = statistics.median(cpu[name]), statistics.median(wall[name])
            print(f"full scan, {label}, {name}: median {c:.2f} CPU-s "
                  f"({', '.join(f'{x:.2f}' for x in cpu[name])}), {total / c:,.0f} rows per "
                  f"CPU-second; wall {w:.2f} s ({total / w:,.0f} rows/s); {hits[name]} hits",
                  flush=True)
        ratios = [r / p for p, r in zip(cpu["plan"], cpu["reference"], strict=True)]
        print(f"  same-run CPU ratio reference/plan: median {statistics.median(ratios):.2f} "
              f"({', '.join(f'{x:.2f}' for x in ratios)}); load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)


def _spark_vs_duckdb(root: Path, args: Any, since: int, now: int) -> None:
    """Full scan of the first days holding `--spark-events` events, `--spark-indicators`
    equality indicators (1 in 100 present in the data), on DuckDB then Spark."""
    from shieldwall.detect import summaries
    from shieldwall.detect.engines.duckdb_engine import DuckDBEngine
    from shieldwall.detect.engines.spark_engine import SparkEngine
    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.retro_run import retro_hunt

    n_days = max(1, args.spark_events // args.events_per_day)
    sub = Path(tempfile.mkdtemp(prefix="retro-spark-", dir=args.dir)) / "telemetry"
    for day in summaries.day_dirs(root)[:n_days]:
        shutil.copytree(root / day, sub / day)
    events = n_days * args.events_per_day
    t0 = time.perf_counter()
    ix = IndicatorIndex()
    base4 = 1509949440
    inds = []
    for k in range(args.spark_indicators):
        # 1 in 100 names an address of the destination pool; the rest are absent.
        a = base4 + ((k * 2) % 2_000_000 if k % 100 == 0 else 3_000_000 + k)
        ip = f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"
        inds.append(_indicator(k + 10, f"[ipv4-addr:value = '{ip}']"))
    ix.add_many(inds)
    print(f"Spark vs DuckDB: {events:,} events ({n_days} days), {len(ix):,} indicators "
          f"(compiled in {time.perf_counter() - t0:.0f} s)", flush=True)
    out = {}
    for name in ("duckdb", "spark"):
        if name == "spark":
            t0 = time.perf_counter()
            conf = dict(kv.split("=", 1) for kv in args.spark_conf)
            eng: Any = SparkEngine.start("local[2]", conf=conf)
            print(f"  Spark session start (local[2], driver 1g{', ' if conf else ''}"
                  f"{', '.join(args.spark_conf)}): {time.perf_counter() - t0:.1f} s",
                  flush=True)
        else:
            eng = DuckDBEngine()
        try:
            tm: dict[str, Any] = {}
            h = _hunter(ix)
            t0 = time.perf_counter()
            hits = retro_hunt(sub, ix, h, since, now=now, timings=tm, engine=eng,
                              summary_first=False)
            el = time.perf_counter() - t0
        finally:
            eng.close()
        out[name] = (el, hits)
        print(f"  {name}: {el:.1f} s ({events / el:,.0f} rows/s): plan {tm['plan']:.1f} s, "
              f"verdicts {tm['verdicts']:.1f} s, {tm['candidates']:,} candidates, "
              f"{hits:,} hits", flush=True)
    print(f"  same hits: {out['spark'][1] == out['duckdb'][1]}; Spark/DuckDB time "
          f"{out['spark'][0] / out['duckdb'][0]:.1f}x", flush=True)
    shutil.rmtree(sub.parent, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYSPARK_PYTHON", __import__("sys").executable)
    main()
