"""Detection benchmark: Zeek conn logs against indicator sets of growing size.

    .venv/bin/python bench/detect_bench.py --events 1000000 --indicators 1000 100000 1000000
    .venv/bin/python bench/detect_bench.py --indicators 1000 10000 --runs 1 --reference
    .venv/bin/python bench/detect_bench.py --indicators 100000 --runs 1 --retro 10

Prints events/s end to end (TSV read included; median of `--runs`), the same-run ratio to the
reader alone (the figure to judge on a shared machine), compile time and RSS per indicator,
peak RSS, the stix2-matcher ratio (sampled and extrapolated) and the retro-hunt time.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

from shieldwall.detect.hunt import Hunter
from shieldwall.detect.index import IndicatorIndex
from shieldwall.detect.sightings import Sightings
from shieldwall.stix.markings import TLP

HEADER = ("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
          "#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\t"
          "service\tduration\torig_bytes\tresp_bytes\tconn_state\n#types\ttime\tstring\taddr\t"
          "port\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\n")


def gen_conn(path: Path, n: int, rng: random.Random) -> None:
    servers = [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}."
               f"{rng.randrange(256)}" for _ in range(50_000)]
    with path.open("w") as fh:
        fh.write(HEADER)
        t = 1_700_000_000.0
        for i in range(n):
            t += 0.001
            fh.write(f"{t:.6f}\tC{i:x}\t10.{i % 256}.{(i >> 8) % 256}.{rng.randrange(256)}\t"
                     f"{rng.randrange(1024, 65535)}\t{rng.choice(servers)}\t443\ttcp\tssl\t"
                     f"0.5\t600\t4000\tSF\n")


def indicators(n: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(n):
        r = i % 100
        if r < 60:
            p = (f"[ipv4-addr:value = '{rng.randrange(1, 224)}.{rng.randrange(256)}."
                 f"{rng.randrange(256)}.{rng.randrange(256)}']")
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


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _read_only(log: Path) -> float:
    """The baseline measured in the same run: the reader alone, no matching."""
    from shieldwall.detect.readers import ReadStats, read

    t0 = time.perf_counter()
    for _ in read(log, ReadStats()):
        pass
    return time.perf_counter() - t0


def _reference_ratio(log: Path, inds: list[dict], n: int, events: int, el: float) -> None:
    """stix2-matcher, one `match` per indicator per event, timed on a sample and extrapolated
    (the full run would take hours: say so in the figures)."""
    from stix2matcher.matcher import match

    from shieldwall.detect.readers import ReadStats, read

    obs = next(read(log, ReadStats()))
    ods = [obs.observed_data(i) for i in range(10)]
    sample = inds[:: max(1, len(inds) // 100)][:100]
    t0 = time.perf_counter()
    for od in ods:
        for ind in sample:
            match(ind["pattern"], [od], stix_version="2.1")
    per = (time.perf_counter() - t0) / (len(ods) * len(sample))
    ref = per * n * events
    print(f"  stix2-matcher: {per * 1e6:,.0f} us per match call (sampled, {len(ods) * len(sample)}"
          f" calls); extrapolated {ref:,.0f} s = {ref / 3600:,.1f} h for {n:,} x {events:,}; "
          f"ratio {ref / el:,.0f}x")


def _retro(log: Path, inds: list[dict], copies: int, root: Path) -> None:
    """Retro-hunt over `copies` x the log's events, stored as Parquet by day (as `hunt` does)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from shieldwall.detect.readers import ReadStats, read
    from shieldwall.detect.retro import TelemetryStore, retro_hunt

    store = TelemetryStore(root)
    batches = list(read(log, ReadStats()))
    total = 0
    t0 = time.perf_counter()
    for c in range(copies):
        for obs in batches:
            t = obs.table
            i = t.column_names.index("_ts")
            t = t.set_column(i, "_ts", pc.add(t.column("_ts"), pa.scalar(c * 3_600_000_000)))
            store.write(type(obs)(t, obs.source, obs.kind))
            total += t.num_rows
    write_s = time.perf_counter() - t0
    ix = IndicatorIndex()
    for i in inds:
        ix.add(i)
    h = Hunter(ix, Sightings("identity--00000000-0000-4000-8000-000000000001", TLP.AMBER))
    t0 = time.perf_counter()
    hits = retro_hunt(root, ix, h, 10 * 365 * 86_400 * 1_000_000)
    el = time.perf_counter() - t0
    print(f"retro-hunt: {total:,} stored events ({write_s:.0f} s to write), {len(inds):,} "
          f"indicators: {el:.1f} s ({total / el:,.0f} events/s), {hits} hits")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--indicators", type=int, nargs="+", default=[1000, 100_000])
    ap.add_argument("--runs", type=int, default=3, help="hunt runs per size (median quoted)")
    ap.add_argument("--reference", action="store_true", help="sample stix2-matcher (<= 10,000)")
    ap.add_argument("--retro", type=int, default=0, help="retro-hunt over N copies of the log")
    args = ap.parse_args()
    rng = random.Random(4)
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "conn.log"
        gen_conn(log, args.events, rng)
        for n in args.indicators:
            inds = indicators(n, rng)
            rss0 = _rss_mib()
            t0 = time.perf_counter()
            ix = IndicatorIndex()
            for i in inds:
                ix.add(i)
            compile_s = time.perf_counter() - t0
            rss1 = _rss_mib()
            rates, ratios = [], []
            for _ in range(args.runs):
                base = _read_only(log)
                h = Hunter(ix, Sightings("identity--00000000-0000-4000-8000-000000000001",
                                         TLP.AMBER))
                t0 = time.perf_counter()
                h.run([log])
                el = time.perf_counter() - t0
                rates.append(h.stats.events / el)
                ratios.append(base / el)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"indicators={n:,} compile={compile_s:.1f}s ({compile_s / n * 1e6:.0f} us/ind, "
                  f"{(rss1 - rss0) * 1024 * 1024 / n:,.0f} B/ind RSS) events={h.stats.events:,} "
                  f"rate median={statistics.median(rates):,.0f} ev/s "
                  f"(runs {', '.join(f'{r:,.0f}' for r in rates)}) "
                  f"vs read-only baseline={statistics.median(ratios):.2f} "
                  f"hits={h.sightings.hits} rejected={len(ix.rejected)} peak_rss={rss:,.0f} MiB",
                  flush=True)
            if args.reference and n <= 10_000:
                _reference_ratio(log, inds, n, h.stats.events,
                                 h.stats.events / statistics.median(rates))
            if args.retro and n == args.indicators[-1]:
                _retro(log, inds, args.retro, Path(d) / "telemetry")
            del ix


if __name__ == "__main__":
    main()
