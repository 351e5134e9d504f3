"""Run every benchmark in `bench/`, one after another, at the sizes docs/benchmarks.md quotes.

`make bench` calls this. Benchmarks run sequentially because the figures are only comparable
when nothing else competes for the machine's two cores; each script prints its own table,
and the figures in docs/benchmarks.md name the exact command that produced them.

    python -m bench.run_all                 # all of them (hours at full size)
    python -m bench.run_all store taxii     # a chosen few, by short name
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

BENCHES: dict[str, str] = {
    "store": "bench.store_bench",
    "taxii": "bench.taxii_bench",
    "detect": "bench.detect_bench",
    "pattern": "bench.pattern_bench",
    "federation": "bench.federation_bench",
    "correlation": "bench.correlation_bench",
    "attribution": "bench.attribution_eval",
    "pledge": "bench.pledge_bench",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*",
                    help=f"benchmarks to run, of {', '.join(BENCHES)} (default: all)")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHES)}")
    names = args.names or list(BENCHES)
    failed: list[str] = []
    for name in names:
        print(f"== {name}: python -m {BENCHES[name]}", flush=True)
        start = time.monotonic()
        code = subprocess.call([sys.executable, "-m", BENCHES[name]])
        print(f"== {name}: exit {code} after {time.monotonic() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
