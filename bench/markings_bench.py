"""Import cost of custom TLP marking definitions (issue 13): a 100,000-indicator bundle
through `import_file`, with its indicators marked by a producer's own TLP:RED definition
placed first, last, or absent (the indicators then carry FIRST's GREEN ref, as in
store_bench.py).

    .venv/bin/python bench/markings_bench.py [--repeat 3] [--layouts none,first,last]
        [--root PATH]

`--root` runs another checkout's `shieldwall` (a `git archive` of an older commit) for a
before/after comparison in one session. CPU per object (importer + worker, getrusage)
moves far less than objects/s when other work shares the machine. The level of the
stored indicators is printed: before issue 13, a definition placed last came after the
first batch of 5,000 had been stored at the default.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

CUSTOM = "marking-definition--0c5e1a3b-8f0d-4b6e-9a7c-2d4f6b8a0e13"
DEFINITION = {"type": "marking-definition", "spec_version": "2.1", "id": CUSTOM,
              "created": "2024-01-01T00:00:00.000Z", "name": "TLP:RED",
              "definition_type": "statement", "definition": {"statement": "custom"}}


def _cpu() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--layouts", default="none,first,last")
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    args = ap.parse_args()
    # The root's own store_bench (which puts its root first on the path) and package.
    sys.path[:0] = [args.root, str(Path(args.root) / "bench")]
    from store_bench import indicators

    from shieldwall.ingest.runner import import_file
    from shieldwall.node import member_identity
    from shieldwall.stix.markings import TLP
    from shieldwall.store import Query, Store

    tmp = Path(tempfile.mkdtemp(prefix="sw-markings-bench-"))
    print(f"{args.root}: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for layout in args.layouts.split(","):
        objs = indicators(100_000)
        if layout != "none":
            for o in objs:
                o["object_marking_refs"] = [CUSTOM]
            objs = [DEFINITION, *objs] if layout == "first" else [*objs, DEFINITION]
        bundle = tmp / "bundle.json"
        bundle.write_bytes(orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                         "objects": objs}))
        rates, cpus, levels = [], [], set()
        for i in range(args.repeat):
            store = Store.open(f"sqlite:///{tmp / f'{layout}{i}.db'}")
            cpu, t = _cpu(), time.perf_counter()
            report = import_file(store, bundle, source="bench",
                                 producer=member_identity("bench"), default_tlp=TLP.AMBER)
            elapsed, cpu = time.perf_counter() - t, _cpu() - cpu
            assert report.stored >= 100_000, report
            levels = {TLP(r.tlp).label for r in store.iter_query(Query(types=["indicator"]))}
            store.close()
            rates.append(100_000 / elapsed)
            cpus.append(cpu / 100_000 * 1e6)
        print(f"  definition {layout}: {statistics.median(rates):,.0f} objects/s, "
              f"CPU {statistics.median(cpus):.1f} us per object (median of {args.repeat}); "
              f"indicators held at {', '.join(sorted(levels))}", flush=True)
        for f in tmp.iterdir():
            f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
