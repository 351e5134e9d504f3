"""Pattern evaluation: Shieldwall's matcher against the OASIS reference (stix2-matcher).

Both evaluate every indicator pattern of a realistic mix against the same batch of observed
data (STIX 2.1 bundle: DNS names, connections, URLs, files) and must reach the same verdicts.
Compilation is timed apart from evaluation: both libraries compile once per indicator.

    .venv/bin/python bench/pattern_bench.py --sizes 1000 10000 --events 500 --repeat 3

Where the reference would take too long, it runs on a random sample of the patterns and its
time is extrapolated linearly (printed as such).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stix2matcher.matcher import Pattern as ReferencePattern

from shieldwall.detect import ObservationSet, compile_pattern

STAMP = "2026-03-01T10:{:02d}:{:02d}Z"


def _ip(rng: random.Random) -> str:
    a, b, c, d = rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)
    return f"{a}.{b}.{c}.{d}"


def _domain(rng: random.Random) -> str:
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(5, 12)))
    return f"{word}.{rng.choice(['com', 'net', 'org', 'info', 'ru', 'cn'])}"


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def make_events(rng: random.Random, count: int):
    """Observed data as readers emit it: one event, a few SCOs, one observed-data each."""
    objects = []
    truth = {"ips": [], "domains": [], "urls": [], "sha256": []}
    for i in range(count):
        stamp = STAMP.format((i // 60) % 60, i % 60)
        kind = i % 4
        if kind == 0:  # conn
            ip = _ip(rng)
            scos = [
                {"type": "ipv4-addr", "id": f"ipv4-addr--{i:08d}-0000-4000-8000-000000000001",
                 "value": ip},
                {"type": "network-traffic",
                 "id": f"network-traffic--{i:08d}-0000-4000-8000-000000000002",
                 "dst_ref": f"ipv4-addr--{i:08d}-0000-4000-8000-000000000001",
                 "dst_port": rng.choice([80, 443, 53, 8080, 22]), "protocols": ["tcp"]},
            ]
            truth["ips"].append(ip)
        elif kind == 1:  # dns
            name = _domain(rng)
            scos = [{"type": "domain-name",
                     "id": f"domain-name--{i:08d}-0000-4000-8000-000000000001", "value": name}]
            truth["domains"].append(name)
        elif kind == 2:  # http
            url = f"http://{_domain(rng)}/{rng.choice(['index', 'wp-admin/x', 'a/b'])}.php"
            scos = [{"type": "url", "id": f"url--{i:08d}-0000-4000-8000-000000000001",
                     "value": url}]
            truth["urls"].append(url)
        else:  # files
            digest = _hex(rng, 64)
            scos = [{"type": "file", "id": f"file--{i:08d}-0000-4000-8000-000000000001",
                     "name": f"doc{i}.exe", "hashes": {"SHA-256": digest, "MD5": _hex(rng, 32)}}]
            truth["sha256"].append(digest)
        objects.append({
            "type": "observed-data", "id": f"observed-data--{i:08d}-0000-4000-8000-000000000000",
            "first_observed": stamp, "last_observed": stamp, "number_observed": 1,
            "object_refs": [s["id"] for s in scos],
        })
        objects.extend(scos)
    return [{"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000",
             "objects": objects}], truth


def make_patterns(rng: random.Random, count: int, truth) -> list[str]:
    """Mostly equality on IPs, domains, URLs and hashes; some CIDR, suffixes, regexes,
    compound patterns. About 1 in 50 is planted to hit."""
    out = []
    for _ in range(count):
        hit = rng.random() < 0.02
        r = rng.random()
        if r < 0.28:
            ip = rng.choice(truth["ips"]) if hit else _ip(rng)
            out.append(f"[ipv4-addr:value = '{ip}']")
        elif r < 0.48:
            name = rng.choice(truth["domains"]) if hit else _domain(rng)
            out.append(f"[domain-name:value = '{name}']")
        elif r < 0.62:
            url = rng.choice(truth["urls"]) if hit else f"http://{_domain(rng)}/x.php"
            out.append(f"[url:value = '{url}']")
        elif r < 0.82:
            digest = rng.choice(truth["sha256"]) if hit else _hex(rng, 64)
            out.append(f"[file:hashes.'SHA-256' = '{digest}']")
        elif r < 0.87:
            out.append(f"[ipv4-addr:value ISSUBSET '{rng.randint(1, 223)}.{rng.randint(0, 255)}"
                       f".0.0/16']")
        elif r < 0.91:
            out.append(f"[domain-name:value LIKE '%.{_domain(rng)}']")
        elif r < 0.94:
            out.append(f"[url:value MATCHES '^https?://[^/]*{_domain(rng).split('.')[0]}"
                       f"[^/]*/wp-admin/.*\\\\.php$']")
        elif r < 0.97:
            ip = rng.choice(truth["ips"]) if hit else _ip(rng)
            out.append(f"[network-traffic:dst_ref.value = '{ip}' AND "
                       f"network-traffic:dst_port = 443]")
        else:
            out.append(f"[domain-name:value = '{_domain(rng)}'] FOLLOWEDBY "
                       f"[url:value LIKE 'http://{_domain(rng)}/%'] WITHIN 300 SECONDS")
    return out


def run(size: int, events: int, repeat: int, ref_budget: int, seed: int) -> dict:
    rng = random.Random(seed)
    observed, truth = make_events(rng, events)
    patterns = make_patterns(rng, size, truth)

    t = time.perf_counter()
    compiled = [compile_pattern(p) for p in patterns]
    ours_compile = time.perf_counter() - t

    ours_times, ours_hits = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        data = ObservationSet(observed)
        ours_hits = sum(c.matches(data) for c in compiled)
        ours_times.append(time.perf_counter() - t)

    sample = patterns if len(patterns) <= ref_budget else rng.sample(patterns, ref_budget)
    t = time.perf_counter()
    reference = [ReferencePattern(p, "2.1") for p in sample]
    ref_compile = (time.perf_counter() - t) * len(patterns) / len(sample)
    ref_times, ref_hits = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        ref_hits = sum(bool(r.match(observed)) for r in reference)
        ref_times.append((time.perf_counter() - t) * len(patterns) / len(sample))
    sample_ours = sum(compile_pattern(p).matches(observed) for p in sample)
    if sample_ours != ref_hits:
        raise SystemExit(f"verdicts differ on the sample: ours {sample_ours}, ref {ref_hits}")

    return {
        "size": size, "events": events, "sampled": len(sample), "hits": ours_hits,
        "ours_eval": statistics.median(ours_times), "ref_eval": statistics.median(ref_times),
        "ours_compile": ours_compile, "ref_compile": ref_compile,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ref-budget", type=int, default=1000,
                        help="at most this many patterns go through the reference")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, events per batch: {args.events}, median of {args.repeat}")
    print("| indicators | hits | Shieldwall eval | reference eval | ratio | Shieldwall compile |"
          " reference compile |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        r = run(size, args.events, args.repeat, args.ref_budget, args.seed)
        note = "" if r["sampled"] == size else f" (extrapolated from {r['sampled']})"
        print(f"| {size:,} | {r['hits']} | {r['ours_eval']:.3f} s | {r['ref_eval']:.1f} s{note} |"
              f" {r['ref_eval'] / r['ours_eval']:,.0f}× | {r['ours_compile']:.2f} s |"
              f" {r['ref_compile']:.2f} s{note} |", flush=True)


if __name__ == "__main__":
    main()
