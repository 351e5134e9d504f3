"""Rapid reaction at scale: the case list, a case page and the case statistics over many
cases (issue 15: 20,000 cases of 15 observables, 30 events and 5 tasks each).

The store holds the cases as the coordination cell's node does: each case is the incident,
its assistance request, the cell's dispatch, 15 observables, 30 events and 5 tasks, every
item linked to the case and named (AMBER+STRICT) to the requester, the cell and the team
(`bench.case_bench._case_objects`, built with `respond.model`'s constructors and written
with `Store.put_many` in batches of 20,000; 103 objects a case). Building stops at
`--cases` or when `--budget` seconds are spent, whichever comes first, and the scale
reached is what is printed.

Timed, each read through a pooled store as a serving node's (the dashboard), for two
readers: the cell (`coordination`, which lists and dispatches) and a team member
(`cert-north`):

- case list: `assist.list_requests` (what `shieldwall assist list` calls, with the
  campaigns and consultation), a page of 50, keyset-paged: random cursors (`after_seq`)
  over the whole store, and the first page;
- case page: `cases.load_case` on a random case (what `shieldwall case show` reads);
- case statistics: `cases.statistics` (requests, dispatches and tasks by status).

On PostgreSQL the tables are ANALYZEd after the build, as autovacuum would after a bulk
load (the server the project tests against runs with autovacuum off, and unanalyzed
tables made the planner hash a million audience rows for each case page: 1.3-1.6 s).

`--profile` prints the top of a cProfile of one call of each; `--stats-only` times only
the statistics (wall and CPU time) of the store as it is, e.g. after an upgrade.

    .venv/bin/python -m bench.respond_scale_bench --cases 20000 --budget 600 --repeats 100 \
        [--keep DIR | --db-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_respond]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.case_bench import _case_objects, _load, _p95
from shieldwall.policy import Member
from shieldwall.respond.assist import list_requests
from shieldwall.respond.cases import load_case
from shieldwall.respond.cases import statistics as case_statistics
from shieldwall.respond.model import published_objects
from shieldwall.store import Provenance, Query, Store
from shieldwall.taxii.app import access_for

MEMBER, CELL, TEAM = "cert-south", "coordination", ["cert-north:alice"]
PAGE = 50


def build(store: Store, n: int, budget: float) -> tuple[int, float]:
    """Write up to `n` cases (fewer when `budget` seconds run out; none when it is 0); the
    cases the store holds."""
    have = store.count(Query(types=["incident"]))
    t0 = time.perf_counter()
    if budget <= 0:
        return have, 0.0
    if have == 0:
        store.put_many(published_objects(), Provenance(CELL, "local"))
    batch: list[dict[str, Any]] = []
    i = have
    while i < n:
        batch += _case_objects(i, MEMBER, CELL, TEAM)
        i += 1
        if len(batch) >= 20_000 or i == n:
            store.put_many(batch, Provenance(MEMBER, "taxii"), batch_size=20_000)
            batch = []
            if time.perf_counter() - t0 > budget:
                break
    return i, time.perf_counter() - t0


def _timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _profile(what: str, fn: Callable[[], Any]) -> None:
    prof = cProfile.Profile()
    prof.runcall(fn)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(18)
    print(f"--- profile: {what}\n{buf.getvalue()}", flush=True)


def stats_only(store: Store, repeats: int) -> None:
    """`cases.statistics` alone, wall and CPU time (user+sys of this process) per run."""
    for reader in (CELL, TEAM[0].split(":")[0]):
        access = access_for(Member(reader, "ally"))
        walls, cpus = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            got = case_statistics(store, access)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        print(f"reader {reader}: case statistics ({sum(got['task'].values()) // 5:,} cases): "
              f"wall median {statistics.median(walls) * 1000:.0f} ms, CPU median "
              f"{statistics.median(cpus) * 1000:.0f} ms ({repeats} runs; load average "
              f"{_load()})", flush=True)


def _line(what: str, xs: list[float]) -> str:
    return (f"{what}: median {statistics.median(xs) * 1000:.1f} ms, "
            f"p95 {_p95(xs) * 1000:.1f} ms ({len(xs)} samples)")


def measure(store: Store, n: int, repeats: int, profile: bool) -> None:
    case_ids = [r.id for r in store.iter_query(Query(types=["incident"]))]
    assert len(case_ids) == n, (len(case_ids), n)
    rng = random.Random(15)
    with store.engine.connect() as conn:
        low, top = conn.exec_driver_sql("SELECT min(seq), max(seq) FROM objects").one()
    for reader in (CELL, TEAM[0].split(":")[0]):
        access = access_for(Member(reader, "ally"))
        first = list_requests(store, access, limit=PAGE)
        assert len(first) == min(PAGE, n), len(first)

        def page_at_random_cursor(access: Any = access) -> None:
            views = list_requests(store, access, limit=PAGE, after_seq=rng.randrange(low, top))
            assert len(views) <= PAGE and all(v.dispatch for v in views)

        def case_page(access: Any = access) -> None:
            case = load_case(store, rng.choice(case_ids), access)
            assert (len(case.events), len(case.observed), len(case.tasks)) == (30, 15, 5)
            assert case.dispatch is not None

        def stats(access: Any = access) -> None:
            got = case_statistics(store, access)
            assert sum(got["task"].values()) == 5 * n, got

        def first_page(access: Any = access) -> None:
            list_requests(store, access, limit=PAGE)

        print(f"reader {reader} (load average {_load()}):", flush=True)
        print("  " + _line(f"case list, a page of {PAGE} at a random cursor",
                           _timed(page_at_random_cursor, repeats)), flush=True)
        print("  " + _line(f"case list, the first page of {PAGE}",
                           _timed(first_page, max(5, repeats // 5))), flush=True)
        print("  " + _line("case page (load_case: 30 events, 15 observables, 5 tasks)",
                           _timed(case_page, repeats)), flush=True)
        print("  " + _line(f"case statistics ({n:,} cases)", _timed(stats, 3)), flush=True)
        if profile:
            _profile(f"{reader}: list page", page_at_random_cursor)
            _profile(f"{reader}: case page", case_page)
            _profile(f"{reader}: statistics", stats)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--budget", type=float, default=600,
                    help="Seconds to spend building (0: measure what the store holds).")
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--keep", type=Path, help="Keep (and extend) the SQLite store in DIR.")
    ap.add_argument("--db-url", help="A database to build in (PostgreSQL: an empty database "
                    "of its own; it is extended on the next run).")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--stats-only", action="store_true",
                    help="Time only the statistics (wall and CPU) of what the store holds.")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = a.db_url or f"sqlite:///{(a.keep or Path(tmp)) / 'respond-scale.db'}"
        store = Store.open(url, pooled=True)
        try:
            print(f"{url.split(':')[0]}; load average {_load()}", flush=True)
            if a.stats_only:
                stats_only(store, a.repeats)
                return
            n, took = build(store, a.cases, a.budget)
            if store.dialect == "postgresql":
                # What autovacuum does after a bulk load; without it the planner guesses
                # (the project's test server runs with autovacuum off).
                with store.engine.connect() as conn:
                    conn.exec_driver_sql("ANALYZE objects")
                    conn.exec_driver_sql("ANALYZE audience")
                    conn.commit()
            print(f"{n:,} cases, {store.count(Query()):,} objects in the store "
                  f"(this run wrote for {took:.0f} s; load average {_load()})", flush=True)
            measure(store, n, a.repeats, a.profile)
        finally:
            store.close()


if __name__ == "__main__":
    main()
