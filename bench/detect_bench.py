"""Detection benchmark: Zeek conn / dns / http logs against indicator sets of growing size.

One indicator-set size per process (so peak RSS is that size's), e.g.:

    .venv/bin/python bench/detect_bench.py --indicators 1000000 --kinds conn dns http
    .venv/bin/python bench/detect_bench.py --indicators 1000 10000 --kinds conn --reference
    .venv/bin/python bench/detect_bench.py --indicators 1000 --kinds --retro-events 100000000
    .venv/bin/python bench/detect_bench.py --indicators 1000000 --compile-breakdown

Prints, per size: compile time and RSS per indicator; per log kind: events/s end to end (TSV
read included; median of `--runs`), the same-run ratio to the reader alone, and the cost per
million events of each step (read, index lookup, verdicts and sightings) measured on batches
held in memory; peak RSS. `--reference` samples stix2-matcher on the same patterns and events
and extrapolates (the full run would take hours). `--retro-events N` generates N stored events
with DuckDB (Parquet by day, as `hunt` keeps them) and times the retro-hunt over them.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shieldwall.detect.hunt import Hunter
from shieldwall.detect.index import IndicatorIndex
from shieldwall.detect.sightings import Sightings
from shieldwall.stix.markings import TLP

MEMBER = "identity--00000000-0000-4000-8000-000000000001"
_HEAD = ("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
         "#path\t{path}\n#fields\t{fields}\n#types\t{types}\n")
_CONN_ID = (("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
            ("id.resp_h", "addr"), ("id.resp_p", "port"))
SCHEMAS = {
    "conn": (*_CONN_ID, ("proto", "enum"), ("service", "string"), ("duration", "interval"),
             ("orig_bytes", "count"), ("resp_bytes", "count"), ("conn_state", "string")),
    "dns": (*_CONN_ID, ("proto", "enum"), ("trans_id", "count"), ("query", "string"),
            ("qtype_name", "string"), ("rcode_name", "string"), ("answers", "vector[string]"),
            ("TTLs", "vector[interval]")),
    "http": (*_CONN_ID, ("trans_depth", "count"), ("method", "string"), ("host", "string"),
             ("uri", "string"), ("user_agent", "string"), ("status_code", "count")),
}


def _header(kind: str) -> str:
    cols = SCHEMAS[kind]
    return _HEAD.format(path=kind, fields="\t".join(c for c, _ in cols),
                        types="\t".join(t for _, t in cols))


def _ip(rng: random.Random) -> str:
    return (f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}."
            f"{rng.randrange(256)}")


def gen_log(kind: str, path: Path, n: int, rng: random.Random, n_indicators: int) -> None:
    """`n` lines: 50,000 servers and 50,000 host names; ~0.1 % of dns/http lines name a
    domain, suffix or URL of the indicator set (planted hits), the rest are random."""
    servers = [_ip(rng) for _ in range(50_000)]
    names = [f"h{k}.example.com" for k in range(50_000)]
    planted = [i for i in range(max(n_indicators, 100)) if 60 <= i % 100 < 98]
    with path.open("w") as fh:
        fh.write(_header(kind))
        t = 1_700_000_000.0
        for i in range(n):
            t += 0.001
            head = (f"{t:.6f}\tC{i:x}\t10.{i % 256}.{(i >> 8) % 256}.{rng.randrange(256)}\t"
                    f"{rng.randrange(1024, 65535)}\t{rng.choice(servers)}\t")
            if kind == "conn":
                fh.write(f"{head}443\ttcp\tssl\t0.5\t600\t4000\tSF\n")
                continue
            host = rng.choice(names)
            if rng.random() < 0.001:
                k = rng.choice(planted)
                host = f"d{k}.example.net" if k % 100 < 80 else f"x.s{k}.example.org"
            if kind == "dns":
                fh.write(f"{head}53\tudp\t{i % 65536}\t{host}\tA\tNOERROR\t"
                         f"{rng.choice(servers)},{rng.choice(servers)}\t60.0,60.0\n")
            else:
                fh.write(f"{head}80\t1\tGET\t{host}\t/p/{rng.randrange(1000)}\t"
                         f"Mozilla/5.0\t200\n")


def indicators(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """60 % IPv4 `=`, 20 % domain `=`, 10 % SHA-256 `=`, 5 % CIDR, 3 % domain suffix, 1 %
    MATCHES on URLs, 1 % compound (address AND port)."""
    out = []
    for i in range(n):
        r = i % 100
        if r < 60:
            p = f"[ipv4-addr:value = '{_ip(rng)}']"
        elif r < 80:
            p = f"[domain-name:value = 'd{i}.example.net']"
        elif r < 90:
            p = f"[file:hashes.'SHA-256' = '{rng.getrandbits(256):064x}']"
        elif r < 95:
            p = f"[ipv4-addr:value ISSUBSET '{rng.randrange(1, 224)}.{rng.randrange(256)}.0.0/24']"
        elif r < 98:
            p = f"[domain-name:value LIKE '%.s{i}.example.org']"
        elif r < 99:
            p = f"[url:value MATCHES '^https?://m{i}\\\\.example/']"
        else:
            p = (f"[network-traffic:dst_ref.value = '192.0.2.{i % 256}' AND "
                 f"network-traffic:dst_port = 443]")
        out.append({"type": "indicator", "id": f"indicator--00000000-0000-4000-8000-{i:012d}",
                    "pattern": p, "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00Z",
                    "modified": "2020-01-01T00:00:00Z", "name": f"i{i}"})
    return out


def hit_digest(s: Sightings) -> str:
    """Hits per indicator, condensed: how many indicators hit and a hash of the sorted
    (indicator, hits) pairs, so two runs (before and after a change) compare at a glance."""
    per = sorted((iid, hits) for iid, (_, hits, _) in s.by_indicator().items())
    digest = hashlib.sha256(repr(per).encode()).hexdigest()[:12]
    return f"{len(per):,} indicators hit, digest {digest}"


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _read_only(log: Path) -> float:
    """The baseline measured in the same run: the reader alone, no matching."""
    from shieldwall.detect.readers import ReadStats, read

    return _timed(lambda: sum(1 for _ in read(log, ReadStats())))[0]


def _steps(log: Path, ix: IndicatorIndex) -> str:
    """Seconds per million events of each step, on batches held in memory."""
    from shieldwall.detect.readers import ReadStats, read

    read_s, batches = _timed(lambda: list(read(log, ReadStats())))
    events = sum(len(b) for b in batches)
    cand_s, cands = _timed(lambda: [ix.candidates(b.table) for b in batches])
    h = Hunter(ix, Sightings(MEMBER, TLP.AMBER))
    judge_s, _ = _timed(lambda: [h.judge(b, c) for b, c in zip(batches, cands, strict=True)])
    m = events / 1e6
    return (f"per 1M events: read {read_s / m:.2f} s, index lookup {cand_s / m:.2f} s, "
            f"verdicts+sightings {judge_s / m:.2f} s ({sum(map(len, cands)):,} candidates)")


def _reference_ratio(log: Path, inds: list[dict[str, Any]], n: int, events: int,
                     el: float) -> None:
    """stix2-matcher, one `match` per indicator per event, timed on a sample of 2,000 calls
    and extrapolated linearly (the full run would take hours: say so in the figures)."""
    from stix2matcher.matcher import match

    from shieldwall.detect.readers import ReadStats, read
    from shieldwall.detect.sightings import observed_data_objects

    obs = next(read(log, ReadStats()))
    # STIX 2.1 as the reference reads it: the SCOs and an observed-data with object_refs.
    ods = [[{"type": "bundle", "id": f"bundle--00000000-0000-4000-8000-{i:012d}",
             "objects": observed_data_objects(obs.observed_data(i), MEMBER)}]
           for i in range(10)]
    sample = inds[:: max(1, len(inds) // 200)][:200]
    t0 = time.perf_counter()
    for od in ods:
        for ind in sample:
            match(ind["pattern"], od, stix_version="2.1")
    per = (time.perf_counter() - t0) / (len(ods) * len(sample))
    ref = per * n * events
    print(f"  stix2-matcher: {per * 1e6:,.0f} us per match call (sampled, {len(ods) * len(sample)}"
          f" calls); extrapolated {ref:,.0f} s = {ref / 3600:,.1f} h for {n:,} x {events:,}; "
          f"Shieldwall {el:.1f} s end to end; ratio {ref / el:,.0f}x", flush=True)


def gen_telemetry(root: Path, n: int) -> float:
    """`n` conn/dns-like events as Parquet by day over 30 days, written by DuckDB from
    range(): addresses with their `_ip4:` integers, as `TelemetryStore` writes them;
    a third of the rows carry a DNS name. Returns the seconds it took."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    step = 30 * 86_400_000_000 // n
    srv = "(hash(i % 50000) % 4294967296)"
    src4 = "(10 * 16777216 + (i % 256) * 65536 + ((i >> 8) % 256) * 256 + (i * 7) % 256)"
    dst4 = (f"((({srv} >> 24) % 223 + 1) * 16777216 + (({srv} >> 16) % 256) * 65536"
            f" + (({srv} >> 8) % 256) * 256 + {srv} % 256)")

    def text(e: str) -> str:
        return (f"concat_ws('.', ({e}) >> 24, (({e}) >> 16) % 256, (({e}) >> 8) % 256, "
                f"({e}) % 256)")

    t0 = time.perf_counter()
    con.execute(f"""
        COPY (
          SELECT 1790000000000000 + i * {step} AS _ts, i % 1000000 + 9 AS _line,
                 {text(src4)} AS "network-traffic:src_ref.value",
                 {text(dst4)} AS "network-traffic:dst_ref.value",
                 CAST({src4} AS BIGINT) AS "_ip4:network-traffic:src_ref.value",
                 CAST({dst4} AS BIGINT) AS "_ip4:network-traffic:dst_ref.value",
                 CAST(1024 + (i * 13) % 60000 AS BIGINT) AS "network-traffic:src_port",
                 CAST(443 AS BIGINT) AS "network-traffic:dst_port",
                 CASE WHEN i % 3 = 0 THEN 'd' || (hash(i) % 100000000) || '.example.net'
                 END AS "domain-name:value",
                 'conn-' || (i // 1000000) || '.log' AS _file,
                 strftime(make_timestamp(1790000000000000 + i * {step}), '%Y-%m-%d') AS day
          FROM range({n}) t(i)
        ) TO '{root}' (FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd)
    """)
    return time.perf_counter() - t0


def _retro(inds: list[dict[str, Any]], ix: IndicatorIndex, n_events: int, root: Path) -> None:
    from shieldwall.detect.retro import retro_hunt

    gen_s = gen_telemetry(root, n_events)
    size = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 2**20
    h = Hunter(ix, Sightings(MEMBER, TLP.AMBER))
    tm: dict[str, float] = {}
    el, hits = _timed(lambda: retro_hunt(root, ix, h, 10 * 365 * 86_400 * 1_000_000,
                                         timings=tm, summary_first=False))  # the full scan
    print(f"retro-hunt: {n_events:,} stored events ({size:,.0f} MiB Parquet, {gen_s:.0f} s to "
          f"generate), {len(inds):,} indicators: {el:.1f} s ({n_events / el:,.0f} events/s): "
          f"plan {tm.get('plan', 0):.1f} s (DuckDB), verdicts {tm.get('verdicts', 0):.1f} s, "
          f"{int(tm.get('candidates', 0)):,} candidates, {hits:,} hits, "
          f"{len(h.sightings.windows):,} sightings", flush=True)


def compile_breakdown(n: int) -> None:
    """Compile time and RSS per indicator of each shape of the mix, compiled on its own."""
    import gc

    inds = indicators(n, random.Random(4))

    def simple_eq(i: dict[str, Any]) -> bool:
        return " = '" in i["pattern"] and " AND " not in i["pattern"]

    parts = [("all", inds), ("[path = 'literal'] (bulk RE2 read)",
                             [i for i in inds if simple_eq(i)]),
             ("MATCHES (one Hyperscan database)", [i for i in inds if "MATCHES" in i["pattern"]]),
             ("CIDR, suffix, compound (per pattern)",
              [i for i in inds if not simple_eq(i) and "MATCHES" not in i["pattern"]])]
    for name, part in parts:
        gc.collect()
        rss0 = _rss_mib()
        ix = IndicatorIndex()
        el, _ = _timed(lambda ix=ix, part=part: ix.add_many(part))
        gc.collect()
        print(f"{name}: {len(part):,} indicators, {el:.1f} s ({el / len(part) * 1e6:.1f} us "
              f"each), {(_rss_mib() - rss0) * 2**20 / len(part):,.0f} B each", flush=True)
        del ix


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--indicators", type=int, nargs="+", default=[1000])
    ap.add_argument("--kinds", nargs="*", default=["conn", "dns", "http"])
    ap.add_argument("--runs", type=int, default=3, help="hunt runs per kind (median quoted)")
    ap.add_argument("--reference", action="store_true", help="sample stix2-matcher (<= 10,000)")
    ap.add_argument("--retro-events", type=int, default=0,
                    help="retro-hunt over this many generated stored events")
    ap.add_argument("--data", type=Path, help="keep generated logs here between runs")
    ap.add_argument("--compile-breakdown", action="store_true",
                    help="only compile, each shape of the mix on its own")
    args = ap.parse_args()
    if args.compile_breakdown:
        for n in args.indicators:
            compile_breakdown(n)
        return
    with tempfile.TemporaryDirectory() as d:
        data = args.data or Path(d)
        data.mkdir(parents=True, exist_ok=True)
        for n in args.indicators:
            inds = indicators(n, random.Random(4))
            rss0 = _rss_mib()
            ix = IndicatorIndex()
            compile_s, _ = _timed(lambda ix=ix, inds=inds: ix.add_many(inds))
            rss1 = _rss_mib()
            print(f"indicators={n:,} compile={compile_s:.1f}s ({compile_s / n * 1e6:.1f} us/ind, "
                  f"{(rss1 - rss0) * 2**20 / n:,.0f} B/ind RSS) rejected={len(ix.rejected)} "
                  f"{ix.stats()}", flush=True)
            for kind in args.kinds:
                log = data / f"{kind}-{args.events}-{n}.log"
                if not log.exists():
                    gen_log(kind, log, args.events, random.Random(1), n)  # not the indicators' seed
                rates, ratios = [], []
                for _ in range(args.runs):
                    base = _read_only(log)
                    h = Hunter(ix, Sightings(MEMBER, TLP.AMBER))
                    el, _ = _timed(lambda h=h, log=log: h.run([log]))
                    rates.append(h.stats.events / el)
                    ratios.append(base / el)
                print(f"  {kind}: {h.stats.events:,} events, median {statistics.median(rates):,.0f}"
                      f" events/s end to end (runs {', '.join(f'{r:,.0f}' for r in rates)}), "
                      f"{statistics.median(ratios):.2f} of the reader alone, "
                      f"{h.sightings.hits:,} hits ({hit_digest(h.sightings)}); {_steps(log, ix)}",
                      flush=True)
                if args.reference and n <= 10_000:
                    _reference_ratio(log, inds, n, h.stats.events,
                                     h.stats.events / statistics.median(rates))
            if args.retro_events:
                root = data / f"telemetry-{args.retro_events}"
                shutil.rmtree(root, ignore_errors=True)
                try:
                    _retro(inds, ix, args.retro_events, root)
                finally:
                    shutil.rmtree(root, ignore_errors=True)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"  peak RSS {rss:,.0f} MiB", flush=True)
            del ix


if __name__ == "__main__":
    main()
