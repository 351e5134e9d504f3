"""Detection benchmark: Zeek conn logs against indicator sets of growing size.

    .venv/bin/python bench/detect_bench.py --events 1000000 --indicators 1000 100000 1000000

Prints events/s end to end (TSV read included), compile time, peak RSS, and the ratio against
stix2-matcher (one `match` per indicator per event, timed on a sample and extrapolated).
"""

from __future__ import annotations

import argparse
import random
import resource
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--indicators", type=int, nargs="+", default=[1000, 100_000])
    args = ap.parse_args()
    rng = random.Random(4)
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "conn.log"
        gen_conn(log, args.events, rng)
        for n in args.indicators:
            inds = indicators(n, rng)
            t0 = time.perf_counter()
            ix = IndicatorIndex()
            for i in inds:
                ix.add(i)
            compile_s = time.perf_counter() - t0
            h = Hunter(ix, Sightings("identity--00000000-0000-4000-8000-000000000001", TLP.AMBER))
            t0 = time.perf_counter()
            h.run([log])
            el = time.perf_counter() - t0
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"indicators={n:,} compile={compile_s:.1f}s ({compile_s / n * 1e6:.0f} us/ind) "
                  f"events={h.stats.events:,} time={el:.2f}s "
                  f"rate={h.stats.events / el:,.0f} ev/s hits={h.sightings.hits} "
                  f"rejected={len(ix.rejected)} peak_rss={rss:,.0f} MiB")
            if n <= 10_000:
                from shieldwall.detect.exact import matches as exact_matches

                from shieldwall.detect.readers import ReadStats, read
                obs = next(read(log, ReadStats()))
                ods = [obs.observed_data(i) for i in range(20)]
                t0 = time.perf_counter()
                for od in ods:
                    for ind in inds[:50]:
                        exact_matches(ind["pattern"], [od])
                per = (time.perf_counter() - t0) / (20 * 50)
                ref = per * n * h.stats.events
                print(f"  stix2-matcher (extrapolated from 1,000 match calls): {ref:,.0f}s "
                      f"for the same work; ratio {ref / el:,.0f}x")


if __name__ == "__main__":
    main()
