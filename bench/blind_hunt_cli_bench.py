"""What `shieldwall hunt` pays for the allies' blind sets it holds, beside the plain hunt.

The hunt's wiring (shieldwall/cli/hunt.py): the `BlindMatcher` learns every distinct value
of the protected paths' columns as the one reading pass goes, resolves them after it (here
from a warm cache: the steady state of a node that hunts every day; a cold value costs a
round trip to its owner, measured by `bench.blind_bench --resolve`), and, when a value
hits, matches the protected columns it kept of each batch (the files are read again only
past `blind.hits.KEEP_BYTES`). Same run, medians; the log is `bench.detect_bench`'s
conn log, with `--hosts N` internal clients instead of a new client every line.

    .venv/bin/python -m bench.blind_hunt_cli_bench --events 200000 --runs 5 --hosts 2000
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _site(log: Path, hosts: int) -> None:
    """Rewrite the clients to `hosts` internal addresses (a site, not a random source)."""
    out = []
    for k, ln in enumerate(log.read_text().splitlines()):
        if not ln.startswith("#"):
            f = ln.split("\t")
            f[2] = f"10.0.{(k % hosts) >> 8}.{(k % hosts) & 255}"
            ln = "\t".join(f)
        out.append(ln)
    log.write_text("\n".join(out) + "\n")


def main() -> None:
    from bench.blind_bench import OWNER, _ips
    from bench.detect_bench import MEMBER, gen_log, indicators
    from shieldwall.blind.hits import BlindMatcher
    from shieldwall.blind.resolve import CacheKeys, OutputCache, Resolver
    from shieldwall.blind.sets import BlindSet, oprf_input
    from shieldwall.detect.hunt import Hunter
    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.sightings import Sightings
    from shieldwall.keys.oprf import oprf_key
    from shieldwall.stix.markings import TLP

    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--indicators", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--hosts", type=int, default=0, help="internal clients (0: random)")
    a = ap.parse_args()
    rng = random.Random(5)
    root = Path(tempfile.mkdtemp(prefix="blind-hunt-"))
    log = root / "conn.log"
    gen_log("conn", log, a.events, rng, a.indicators)
    if a.hosts:
        _site(log, a.hosts)
    ix = IndicatorIndex()
    ix.add_many(indicators(a.indicators, rng))
    rows = [ln.split("\t") for ln in log.read_text().splitlines() if ln[0] != "#"]
    servers = sorted({r[4] for r in rows})
    seen = {r[2] for r in rows} | set(servers)
    key = oprf_key(root)
    ev = key.evaluator()

    def f(v: str) -> bytes:
        return bytes(ev.evaluate_known_input(oprf_input("ipv4-addr:value", v)))[:16]

    def blind_set(hits: int) -> BlindSet:
        protected = rng.sample(servers, hits) + _ips(a.indicators - hits, seed=3)
        return BlindSet("x-shieldwall-blind-set--1", OWNER, 1, key.key_id, key.public_key,
                        {"ipv4-addr:value": {f(v): f"{i:016x}"
                                             for i, v in enumerate(protected)}})

    keys = CacheKeys.of(None)
    cache = OutputCache.of(keys, [oprf_input("ipv4-addr:value", v) for v in seen],
                           [f(v) for v in seen])

    def send(epoch: int, body: bytes) -> tuple[int, bytes, str]:
        raise AssertionError("every value is cached")

    def plain() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        Hunter(ix, Sightings(MEMBER, TLP.AMBER)).run([log])
        return time.perf_counter() - t0, time.process_time() - c0

    def wired(s: BlindSet) -> tuple[float, float, int]:
        r = Resolver(None, s.public_key, 1, send, keys=keys)
        r.mem = cache  # the warm cache
        hits: list[Any] = []
        m = BlindMatcher([s], {s.public_key.hex(): r}, hits.append, learn=False)
        t0, c0 = time.perf_counter(), time.process_time()
        Hunter(ix, Sightings(MEMBER, TLP.AMBER), sink=m.learn).run([log])
        m.flush()
        if m.hitting and not m.match_kept():
            Hunter(IndicatorIndex(), Sightings(MEMBER, TLP.AMBER), sink=m.feed).run([log])
        return time.perf_counter() - t0, time.process_time() - c0, len(hits)

    quiet, hit = blind_set(0), blind_set(50)
    p: list[tuple[float, float]] = []
    q: list[tuple[float, float]] = []
    h: list[tuple[float, float]] = []
    n_hits = 0
    for _ in range(a.runs):
        p.append(plain())
        q.append(wired(quiet)[:2])
        *took, n_hits = wired(hit)
        h.append((took[0], took[1]))
    # each run's ratio to the plain hunt of the same run, wall and CPU; their medians
    wall = [statistics.median(p[i][0] / x[i][0] for i in range(a.runs)) for x in (q, h)]
    cpu = [statistics.median(p[i][1] / x[i][1] for i in range(a.runs)) for x in (q, h)]
    mp = statistics.median(a.events / w for w, _ in p)
    print(f"{a.events:,} conn events ({len(seen):,} distinct addresses), {a.indicators:,} "
          f"plain indicators: plain {mp:,.0f} ev/s, {statistics.median(c for _, c in p):.3f}"
          f" CPU-s; with a blind set of {a.indicators:,} values (warm cache), events/s "
          f"ratio to plain, wall / CPU: no value hitting {wall[0]:.2f} / {cpu[0]:.2f}; "
          f"50 servers protected ({n_hits:,} blind hits) {wall[1]:.2f} / "
          f"{cpu[1]:.2f} (medians of {a.runs} runs' ratios)")


if __name__ == "__main__":
    main()
