"""Rapid reaction: request and dispatch across the alliance, and cases at scale (issue 15).

- `flow`: N nodes (`shieldwall serve`, full mesh, the federation bench's setup). A sample
  stores an assistance request in node00's store (as `assist request` does, AMBER+STRICT
  named to node00 and the cell node01) and times until node01 stored it; then stores the
  cell's dispatch (team from node02) in node01's and times until node00 stored it. By the
  receiving node's own `date_added` (one machine, one clock).
- `cases`: one store (SQLite, or PostgreSQL with `--db-url`) holding C cases as the cell
  holds them (each: the incident, its request, a dispatch, 15 observables, 30 events, 5
  tasks, every item linked and named to the case's audience; requesters and teams of one
  to three responders drawn from twelve members: 781 different audiences at 20,000; three
  cases in five closed). Built through the store's import path (`build_cases`: a worker
  process makes and prepares the rows, this one writes them with `put_prepared`; on
  PostgreSQL then VACUUM ANALYZE, as autovacuum would). Timed as the cell and as one
  member (cert-north, on about a quarter of the cases): the case page (`cases.load_case`,
  what `case show` reads), the case list (`assist.list_requests`, a page of 50 at a random
  cursor), and the statistics (`cases.statistics`, 5 runs, wall and CPU time).

    .venv/bin/python -m bench.case_bench --part flow --nodes 32 --samples 20
    .venv/bin/python -m bench.case_bench --part cases --cases 20000 --repeats 200 \
        [--keep DIR | --db-url postgresql+psycopg://postgres@127.0.0.1:5432/DB]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from shieldwall.config import load_config
from shieldwall.policy import Member
from shieldwall.respond.assist import list_requests
from shieldwall.respond.cases import load_case
from shieldwall.respond.cases import statistics as case_statistics
from shieldwall.respond.model import (
    Marking,
    assistance_request,
    case_audience,
    dispatch,
    event,
    link,
    observable,
    published_objects,
    task,
)
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Query, Store
from shieldwall.taxii.app import access_for


def _p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _incident(member: str, mark: Marking) -> dict[str, Any]:
    ts = "2026-12-01T00:00:00.000Z"
    return {"type": "incident", "spec_version": "2.1", "id": new_id("incident"),
            "created": ts, "modified": ts, "created_by_ref": member_identity_id(member),
            "name": "bench case", **mark.props()}


def _wait(store: Store, oid: str, t0: float) -> float:
    while True:
        row = store.get(oid)
        if row is not None:
            return row.date_added_us / 1e6 - t0
        if time.time() - t0 > 60:
            raise SystemExit(f"{oid} never arrived")
        time.sleep(0.05)


def flow(n: int, samples: int) -> tuple[list[float], list[float]]:
    from bench.federation_bench import _nodes
    from shieldwall.federation.sync import PULL_RATE

    with tempfile.TemporaryDirectory() as tmp:
        homes, procs, _ = _nodes(Path(tmp), n)
        stores = [Store.open(load_config(h).db_url) for h in homes]
        member, cell, team = homes[0].name, homes[1].name, [f"{homes[2].name}:alice"]
        try:
            time.sleep(3 + (n - 1) / PULL_RATE)
            requests, dispatches = [], []
            for _ in range(samples):
                mark = Marking(TLP.AMBER_STRICT, case_audience(member, cell))
                inc = _incident(member, mark)
                req = assistance_request(requester=member, cell=cell, incident_id=inc["id"],
                                         needs=["forensics"], marking=mark)
                t0 = time.time()
                stores[0].put_many([inc, req, link(req, inc["id"])],
                                   Provenance(member, "local"))
                requests.append(_wait(stores[1], req["id"], t0))
                d = dispatch(request=req, cell=cell, team=team, lead=team[0], reason="bench")
                t0 = time.time()
                stores[1].put_many([d, link(d, inc["id"]), link(d, req["id"])],
                                   Provenance(cell, "local"))
                dispatches.append(_wait(stores[0], d["id"], t0))
                time.sleep(0.3)
            return requests, dispatches
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)
            for st in stores:
                st.close()


# The alliance a cell's cases come from: each case's requester and team are drawn from
# twelve members (`alliance_case`), so the cases carry as many different audiences as a
# cell's do (a case is named to its requester, the cell and its team's members), and its
# requests, dispatches and tasks are at the states a working cell has (most cases closed).
ALLIANCE = ("cert-south", "cert-north", "cert-east", "cert-west", "cert-alps", "cert-baltic",
            "cert-coast", "cert-delta", "cert-isles", "cert-plains", "cert-ridge", "cert-vale")
CELL, READER = "coordination", "cert-north"
CHUNK = 500  # cases a worker prepares at a time (~53,000 objects)


def alliance_case(i: int) -> tuple[str, list[str]]:
    """Case `i`'s requester and team (one to three responders of other members)."""
    rng = random.Random(i)
    requester = rng.choice(ALLIANCE)
    helpers = rng.sample([m for m in ALLIANCE if m != requester], rng.randint(1, 3))
    return requester, [f"{m}:responder{rng.randrange(4)}" for m in helpers]


def _case_objects(i: int, member: str, cell: str, team: list[str],
                  rng: random.Random | None = None) -> list[dict[str, Any]]:
    """Case `i`: incident, request, dispatch, 15 observables, 30 events, 5 tasks and the
    links. With `rng`, the case is closed (request, dispatch and tasks finished) three times
    in five and under way otherwise; without, every request open and tasks in a fixed mix."""
    mark = Marking(TLP.AMBER_STRICT, case_audience(member, cell, team))
    inc = _incident(member, mark)
    req = assistance_request(requester=member, cell=cell, incident_id=inc["id"],
                             needs=["forensics"], marking=mark)
    d = dispatch(request=req, cell=cell, team=team, lead=team[0], reason="bench")
    outcomes: tuple[str, ...] = ("pending", "ongoing", "successful")
    if rng is not None and rng.random() < 0.6:
        req["status"] = d["status"] = "closed"
        outcomes = ("successful", "successful", "failed", "cancelled")
    doer = team[0].split(":")[0]
    items: list[dict[str, Any]] = [req, d]
    items += [observable(f"ipv4-addr:10.{i >> 8 & 255}.{i & 255}.{k}", creator=doer,
                         marking=mark) for k in range(15)]
    items += [event(creator=doer, name=f"event {k}", marking=mark,
                    start=f"2026-11-{1 + k % 28:02d}T10:00:00Z", fidelity="minute")
              for k in range(30)]
    items += [task(creator=doer, name=f"task {k}", marking=mark,
                   outcome=rng.choice(outcomes) if rng else outcomes[k % 3])
              for k in range(5)]
    return [inc, *items, *(link(x, inc["id"]) for x in items), link(d, req["id"])]


def _prepared_cases(span: tuple[int, int]) -> dict[str, list[tuple[Any, ...]]]:
    """The store rows of cases [start, stop) by requester (the member whose node delivered
    them to the cell): built and prepared (`store.prepare`, the CPU half of an import) in a
    worker process, as `shieldwall import` prepares in one while the other writes."""
    from shieldwall.stix.timestamps import now_us
    from shieldwall.store.prepare import prepare_many

    out: dict[str, list[tuple[Any, ...]]] = {}
    for i in range(*span):
        member, team = alliance_case(i)
        rows = prepare_many(_case_objects(i, member, CELL, team, random.Random(-i)), now_us())
        out.setdefault(member, []).extend(tuple(r) for r in rows)
    return out


def build_cases(store: Store, n: int) -> float:
    """Write cases [held, n) into `store` through `put_prepared` (one transaction per
    requester per chunk of 500 cases), prepared in a worker; the seconds it took."""
    import multiprocessing

    t0 = time.perf_counter()
    have = store.count(Query(types=["incident"]))
    if have == 0:
        store.put_many(published_objects(), Provenance(CELL, "local"))
    spans = [(i, min(i + CHUNK, n)) for i in range(have, n, CHUNK)]
    with multiprocessing.get_context("fork").Pool(1) as pool:
        for k, by_member in enumerate(pool.imap(_prepared_cases, spans), 1):
            for member, rows in by_member.items():
                got = store.put_prepared(rows, Provenance(member, "taxii"))
                assert not got.rejected, got.rejected[:3]
            if k % 8 == 0:
                print(f"  {spans[k - 1][1]:,} cases, {time.perf_counter() - t0:.0f} s",
                      flush=True)
    if store.dialect == "postgresql":
        # What autovacuum does after a bulk load (the project's server runs without it):
        # statistics for the planner, and the visibility map index-only scans need.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    return time.perf_counter() - t0


def _cpu_wall(fn: Any) -> tuple[Any, float, float]:
    c, t = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def time_reads(store: Store, reader: str, repeats: int, n: int) -> None:
    """Case page, case list and statistics as `reader` sees them."""
    access = access_for(Member(reader, "ally"))
    case_ids = [r.id for r in store.iter_query(Query(types=["incident"], access=access))]
    rng = random.Random(15)
    page, listed = [], []
    for _ in range(repeats):
        cid = rng.choice(case_ids)
        t = time.perf_counter()
        case = load_case(store, cid, access)
        page.append(time.perf_counter() - t)
        assert len(case.events) == 30 and len(case.observed) == 15
    seqs = [r.seq for r in store.iter_query(Query(types=["x-shieldwall-assistance-request"],
                                                  access=access))]
    for _ in range(repeats):
        after = rng.choice(seqs)
        t = time.perf_counter()
        views = list_requests(store, access, limit=50, after_seq=after)
        listed.append(time.perf_counter() - t)
        assert len(views) <= 50
    # alternated with the per-row audience lookup it replaced (as before migration 0017),
    # on the same store in the same minutes
    runs, before = [], []
    for _ in range(5):
        runs.append(_cpu_wall(lambda: case_statistics(store, access)))
        before.append(_cpu_wall(lambda: case_statistics(store, access, by_key=False)))
    stats = runs[0][0]
    assert sum(stats["task"].values()) == 5 * len(case_ids), stats
    assert before[0][0] == stats
    walls = sorted(r[1] for r in runs)
    cpus = sorted(r[2] for r in runs)
    old = sorted(r[1] for r in before)
    print(f"[{reader}: {len(case_ids):,} of {n:,} cases readable]", flush=True)
    print(f"case page (load_case, 30 events, 15 observables, 5 tasks; {repeats} "
          f"random cases): median {statistics.median(page) * 1000:.1f} ms, "
          f"p95 {_p95(page) * 1000:.1f} ms", flush=True)
    print(f"case list (a page of 50 requests with dispatches; {repeats} random "
          f"cursors): median {statistics.median(listed) * 1000:.1f} ms, "
          f"p95 {_p95(listed) * 1000:.1f} ms", flush=True)
    print(f"case statistics ({n:,} cases; 5 runs): median {walls[2] * 1000:.0f} ms wall, "
          f"{cpus[2] * 1000:.0f} ms CPU of this process (runs "
          f"{', '.join(f'{w * 1000:.0f}' for w in walls)} ms; load average {_load()})",
          flush=True)
    print(f"  the per-row audience check it replaced, alternated with it: median "
          f"{old[2] * 1000:.0f} ms wall (runs {', '.join(f'{w * 1000:.0f}' for w in old)} "
          f"ms); same-run ratio {walls[2] / old[2]:.2f}", flush=True)


def cases(n: int, repeats: int, keep: Path | None, db_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = db_url or f"sqlite:///{(keep or Path(tmp)) / f'alliance-cases-{n}.db'}"
        # pooled, as a serving node's store (the dashboard's case pages): a fresh SQLite
        # connection per read would be most of what is timed
        store = Store.open(url, pooled=True)
        try:
            have = store.count(Query(types=["incident"]))
            took = build_cases(store, n) if have < n else None
            print(f"{n:,} cases ({store.count(Query()):,} objects) "
                  + (f"written in {took:.0f} s" if took is not None else "kept")
                  + f" [{store.dialect}]", flush=True)
            for reader in (CELL, READER):
                time_reads(store, reader, repeats, n)
        finally:
            store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", nargs="*", default=["flow", "cases"])
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--keep", type=Path, help="Keep (and reuse) the cases' SQLite store in "
                    "this directory.")
    ap.add_argument("--db-url", help="The cases' store at this URL instead (PostgreSQL: an "
                    "empty database, or one this bench filled).")
    a = ap.parse_args()
    if "flow" in a.part:
        req, disp = flow(a.nodes, a.samples)
        for what, lat in (("request -> the cell", req), ("dispatch -> the member", disp)):
            print(f"{what} ({a.nodes} nodes, {len(lat)} samples): median "
                  f"{statistics.median(lat) * 1000:.0f} ms, p95 {_p95(lat) * 1000:.0f} ms "
                  f"(load average {_load()})", flush=True)
    if "cases" in a.part:
        cases(a.cases, a.repeats, a.keep, a.db_url)


if __name__ == "__main__":
    main()
