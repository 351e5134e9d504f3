"""Correlation cost per new object on a store of 1,000,000 indicators and 100,000 sightings.

    .venv/bin/python bench/correlation_bench.py          # 1M indicators, 100k sightings
    .venv/bin/python bench/correlation_bench.py --indicators 100000 --sightings 10000  # quicker

Synthetic but shaped like shared intelligence: indicators name IPs, domains and file
hashes drawn from pools smaller than the indicator count (so infrastructure is shared
across indicators), sightings by `--members` members over 90 days pick indicators with a
Zipf-like skew (a few are sighted thousands of times and must hit the cap), and 1% of
sightings also observe 8.8.8.8 (a public resolver). Sightings are stored first, then
correlated the way a coordination node does it: `Correlator.update_from_store` in
increments of `--step`, each object processed on its own (no rebuild). The figure per
object is reported for the first and last increment (does it grow with the index?), and
`add()` of single sightings, one transaction each, gives the latency of one new object.
Memory: peak RSS of the process and the size the correlation tables add to the database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shieldwall.assess.correlation import CorrelationConfig, Correlator  # noqa: E402
from shieldwall.node import member_identity_id  # noqa: E402
from shieldwall.stix.timestamps import format_ts, parse_ts  # noqa: E402
from shieldwall.store import Provenance, Store  # noqa: E402

T0 = parse_ts("2024-01-01T00:00:00Z")
DAY = 86_400 * 1_000_000


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def indicators(n: int, rng: random.Random) -> list[dict[str, Any]]:
    pool = max(1, n // 3)
    out = []
    for i in range(n):
        kind = i % 3
        v = rng.randrange(pool)
        if kind == 0:
            pattern = f"[ipv4-addr:value = '10.{v >> 16 & 255}.{v >> 8 & 255}.{v & 255}']"
        elif kind == 1:
            pattern = f"[domain-name:value = 'd{v}.example']"
        else:
            pattern = f"[file:hashes.'SHA-256' = '{v:064x}']"
        out.append({"type": "indicator", "spec_version": "2.1",
                    "id": f"indicator--{_uid(rng)}", "created": "2023-06-01T00:00:00.000Z",
                    "modified": "2023-06-01T00:00:00.000Z", "pattern": pattern,
                    "pattern_type": "stix", "valid_from": "2023-06-01T00:00:00Z"})
    return out


def sightings(n: int, ind_ids: list[str], members: int, rng: random.Random
              ) -> list[tuple[str, list[dict[str, Any]]]]:
    """(member, [objects]) per sighting; Zipf-like choice of indicators."""
    out = []
    resolver_sco = {"type": "ipv4-addr", "spec_version": "2.1",
                    "id": "ipv4-addr--" + str(uuid.uuid5(uuid.NAMESPACE_DNS, "8.8.8.8")),
                    "value": "8.8.8.8"}
    for _ in range(n):
        idx = min(len(ind_ids) - 1, int(rng.paretovariate(0.6)) - 1)
        if rng.random() < 0.7:  # most sightings are of the long tail
            idx = rng.randrange(len(ind_ids))
        member = f"member-{rng.randrange(members):02d}"
        ts = format_ts(T0 + int(rng.uniform(0, 90) * DAY))
        s: dict[str, Any] = {
            "type": "sighting", "spec_version": "2.1", "id": f"sighting--{_uid(rng)}",
            "created": ts, "modified": ts, "created_by_ref": member_identity_id(member),
            "sighting_of_ref": ind_ids[idx], "first_seen": ts, "last_seen": ts, "count": 1,
            "where_sighted_refs": [member_identity_id(member)],
        }
        objs = [s]
        if rng.random() < 0.01:
            od = {"type": "observed-data", "spec_version": "2.1",
                  "id": f"observed-data--{_uid(rng)}", "created": ts, "modified": ts,
                  "first_observed": ts, "last_observed": ts, "number_observed": 1,
                  "object_refs": [resolver_sco["id"]]}
            s["observed_data_refs"] = [od["id"]]
            objs = [resolver_sco, od, s]
        out.append((member, objs))
    return out


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--indicators", type=int, default=1_000_000)
    ap.add_argument("--sightings", type=int, default=100_000)
    ap.add_argument("--members", type=int, default=30)
    ap.add_argument("--step", type=int, default=5_000, help="objects per incremental run")
    ap.add_argument("--single", type=int, default=500, help="single add() calls timed")
    ap.add_argument("--cap", type=int, default=50)
    ap.add_argument("--window-days", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="sw-corr-")
    db = args.db or Path(tmp) / "bench.db"
    store = Store.open(f"sqlite:///{db}")
    res: dict[str, Any] = {"indicators": args.indicators, "sightings": args.sightings,
                           "members": args.members, "cap": args.cap,
                           "window_days": args.window_days,
                           "machine": f"{platform.machine()} {os.cpu_count()} CPUs, "
                                      f"Python {platform.python_version()}, SQLite"}

    t = time.perf_counter()
    ind_ids: list[str] = []
    for start in range(0, args.indicators, 50_000):
        batch = indicators(min(50_000, args.indicators - start), rng)
        store.put_many(batch, Provenance("feed"))
        ind_ids += [o["id"] for o in batch]
    res["load_indicators_s"] = round(time.perf_counter() - t, 1)
    print(f"indicators stored: {len(ind_ids):,} in {res['load_indicators_s']} s", flush=True)

    single_n = min(args.single, args.sightings // 10)
    all_s = sightings(args.sightings, ind_ids, args.members, rng)
    stored_part, single_part = all_s[:-single_n], all_s[-single_n:]
    t = time.perf_counter()
    for member in sorted({m for m, _ in stored_part}):
        store.put_many([o for m, objs in stored_part if m == member for o in objs],
                       Provenance(member, "taxii"))
    res["load_sightings_s"] = round(time.perf_counter() - t, 1)
    size_before = _db_bytes(db)
    print(f"sightings stored: {len(stored_part):,} in {res['load_sightings_s']} s", flush=True)

    corr = Correlator(store, CorrelationConfig(window_days=args.window_days,
                                               max_objects=args.cap))
    per_step: list[float] = []
    done = 0
    t_all = time.perf_counter()
    while True:
        t = time.perf_counter()
        r = corr.update_from_store(limit=args.step)
        n = corr.stats()["objects"] - done
        if n <= 0:
            break
        done += n
        per_step.append((time.perf_counter() - t) / n * 1e3)
        print(f"  correlated {done:,}: {per_step[-1]:.3f} ms/object, links +{r.new_links}",
              flush=True)
    res["correlate_total_s"] = round(time.perf_counter() - t_all, 1)
    res["ms_per_object_first_step"] = round(per_step[0], 3)
    res["ms_per_object_last_step"] = round(per_step[-1], 3)
    res["ms_per_object_mean"] = round(res["correlate_total_s"] * 1e3 / max(done, 1), 3)

    lat = []
    for member, objs in single_part:
        t = time.perf_counter()
        corr.add(objs[-1], member, objs[:-1])
        lat.append((time.perf_counter() - t) * 1e3)
    lat.sort()
    res["single_add_ms_p50"] = round(statistics.median(lat), 2)
    res["single_add_ms_p95"] = round(lat[int(len(lat) * 0.95) - 1], 2)
    stats = corr.stats()
    res.update({f"index_{k}": v for k, v in stats.items()})
    res["capped_top"] = [(c.kind, c.value[:40], c.objects, c.reason) for c in corr.capped(5)]
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["correlation_tables_mb"] = round((_db_bytes(db) - size_before) / 2**20, 1)
    res["db_mb"] = round(_db_bytes(db) / 2**20, 1)
    groups = corr.groups(min_members=2)
    res["candidate_campaigns"] = len(groups)
    res["largest_group"] = max((len(g.objects) for g in groups), default=0)
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    store.close()


if __name__ == "__main__":
    main()
