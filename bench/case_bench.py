"""Rapid reaction: request and dispatch across the alliance, and cases at scale (issue 15).

- `flow`: N nodes (`shieldwall serve`, full mesh, the federation bench's setup). A sample
  stores an assistance request in node00's store (as `assist request` does, AMBER+STRICT
  named to node00 and the cell node01) and times until node01 stored it; then stores the
  cell's dispatch (team from node02) in node01's and times until node00 stored it. By the
  receiving node's own `date_added` (one machine, one clock).
- `cases`: one SQLite store holding C cases as the cell holds them (each: the incident,
  its request, a dispatch, 15 observables, 30 events, 5 tasks, every item linked and
  named to the case's audience). Timed with a team member's Access: the case page
  (`cases.load_case`, what `case show` reads), the case list (`assist.list_requests`,
  a page of 50 at a random cursor), and the statistics (`cases.statistics`).

    .venv/bin/python -m bench.case_bench --part flow --nodes 32 --samples 20
    .venv/bin/python -m bench.case_bench --part cases --cases 20000 --repeats 200 [--keep DIR]
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


def _case_objects(i: int, member: str, cell: str, team: list[str]) -> list[dict[str, Any]]:
    mark = Marking(TLP.AMBER_STRICT, case_audience(member, cell, team))
    inc = _incident(member, mark)
    req = assistance_request(requester=member, cell=cell, incident_id=inc["id"],
                             needs=["forensics"], marking=mark)
    d = dispatch(request=req, cell=cell, team=team, lead=team[0], reason="bench")
    doer = team[0].split(":")[0]
    items: list[dict[str, Any]] = [req, d]
    items += [observable(f"ipv4-addr:10.{i >> 8 & 255}.{i & 255}.{k}", creator=doer,
                         marking=mark) for k in range(15)]
    items += [event(creator=doer, name=f"event {k}", marking=mark,
                    start=f"2026-11-{1 + k % 28:02d}T10:00:00Z", fidelity="minute")
              for k in range(30)]
    items += [task(creator=doer, name=f"task {k}", marking=mark,
                   outcome=("pending", "ongoing", "successful")[k % 3]) for k in range(5)]
    return [inc, *items, *(link(x, inc["id"]) for x in items), link(d, req["id"])]


def cases(n: int, repeats: int, keep: Path | None) -> None:
    member, cell, team = "cert-south", "coordination", ["cert-north:alice"]
    with tempfile.TemporaryDirectory() as tmp:
        db = (keep or Path(tmp)) / f"cases-{n}.db"
        fresh = not db.exists()
        # pooled, as a serving node's store (the dashboard's case pages): a fresh SQLite
        # connection per read would be most of what is timed
        store = Store.open(f"sqlite:///{db}", pooled=True)
        try:
            t0 = time.perf_counter()
            if fresh:
                store.put_many(published_objects(), Provenance(cell, "local"))
                batch: list[dict[str, Any]] = []
                for i in range(n):
                    batch += _case_objects(i, member, cell, team)
                    if len(batch) >= 20_000:
                        store.put_many(batch, Provenance(member, "taxii"), batch_size=20_000)
                        batch = []
                if batch:
                    store.put_many(batch, Provenance(member, "taxii"), batch_size=20_000)
            case_ids = [r.id for r in store.iter_query(Query(types=["incident"]))]
            assert len(case_ids) == n, len(case_ids)
            print(f"{n:,} cases ({store.count(Query()):,} objects) "
                  + (f"written in {time.perf_counter() - t0:.0f} s" if fresh else
                     f"kept in {db}"), flush=True)
            access = access_for(Member("cert-north", "ally"))
            rng = random.Random(15)
            page, listed = [], []
            for _ in range(repeats):
                cid = rng.choice(case_ids)
                t = time.perf_counter()
                case = load_case(store, cid, access)
                page.append(time.perf_counter() - t)
                assert len(case.events) == 30 and len(case.observed) == 15
            seqs = [v.seq for v in list_requests(store, access, limit=1, with_campaigns=False)]
            top = store.count(Query())
            for _ in range(repeats):
                after = rng.randrange(seqs[0], top) if seqs else None
                t = time.perf_counter()
                views = list_requests(store, access, limit=50, after_seq=after)
                listed.append(time.perf_counter() - t)
                assert len(views) <= 50
            t = time.perf_counter()
            stats = case_statistics(store, access)
            took = time.perf_counter() - t
            assert sum(stats["task"].values()) == 5 * n, stats
            print(f"case page (load_case, 30 events, 15 observables, 5 tasks; {repeats} "
                  f"random cases): median {statistics.median(page) * 1000:.1f} ms, "
                  f"p95 {_p95(page) * 1000:.1f} ms", flush=True)
            print(f"case list (a page of 50 requests with dispatches; {repeats} random "
                  f"cursors): median {statistics.median(listed) * 1000:.1f} ms, "
                  f"p95 {_p95(listed) * 1000:.1f} ms", flush=True)
            print(f"case statistics ({n:,} cases): {took:.2f} s (load average {_load()})",
                  flush=True)
        finally:
            store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", nargs="*", default=["flow", "cases"])
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--keep", type=Path, help="Keep (and reuse) the cases' store in this "
                    "directory.")
    a = ap.parse_args()
    if "flow" in a.part:
        req, disp = flow(a.nodes, a.samples)
        for what, lat in (("request -> the cell", req), ("dispatch -> the member", disp)):
            print(f"{what} ({a.nodes} nodes, {len(lat)} samples): median "
                  f"{statistics.median(lat) * 1000:.0f} ms, p95 {_p95(lat) * 1000:.0f} ms "
                  f"(load average {_load()})", flush=True)
    if "cases" in a.part:
        cases(a.cases, a.repeats, a.keep)


if __name__ == "__main__":
    main()
