"""Rapid reaction across the alliance: a request made on a member's node reaches the cell, and
the cell's dispatch reaches the member, through federation (issue 15).

The federation bench's setup (`bench.federation_bench._nodes`: N `shieldwall serve`
processes on 127.0.0.1, SQLite homes, full mesh, push on record). node00 is the requesting
member, node01 the coordination cell, node02's responders are dispatched. A sample:

1. node00 stores its own AMBER+STRICT incident (not timed), then `assist.request_assistance`
   (what `shieldwall assist request` calls) writes the request on node00; timed from the
   write until node01's store holds it (node01's own `date_added`).
2. On node01, `assist.dispatch_team` (what `shieldwall assist dispatch` calls: roster check,
   the decision in the consultation log, the dispatch and its links); timed from the call
   until node00's store holds the dispatch.

One machine, one clock: the receiving node's `date_added` is compared with the writer's
wall clock. The responders go back to available after each sample (not timed).

    .venv/bin/python -m bench.respond_federation_bench --nodes 32 --samples 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench.case_bench import _incident, _load, _p95, _wait
from bench.federation_bench import _nodes
from shieldwall.config import load_config
from shieldwall.federation.sync import PULL_RATE
from shieldwall.policy import Member
from shieldwall.respond import roster
from shieldwall.respond.assist import dispatch_team, request_assistance
from shieldwall.respond.model import Marking, case_audience
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Store
from shieldwall.taxii.app import access_for


@contextmanager
def alliance(root: Path, n: int, opened: Sequence[int]) -> Iterator[tuple[list[Path],
                                                                          list[Store]]]:
    """N serving nodes (`federation_bench._nodes`) and the stores of those `opened`
    (indexes), all stopped and closed on the way out."""
    homes, procs, _ = _nodes(root, n)
    stores = [Store.open(load_config(homes[i]).db_url) for i in opened]
    try:
        yield homes, stores
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        for st in stores:
            st.close()


def flow(n: int, samples: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp, \
            alliance(Path(tmp), n, (0, 1)) as (homes, stores):
        member, cell = homes[0].name, homes[1].name
        team = [f"{homes[2].name}:alice", f"{homes[2].name}:bob"]
        for handle in team:
            roster.add(stores[1], handle, name=handle, skills=["forensics"])
        mine, cells = access_for(Member(member, "ally")), access_for(Member(cell, "ally"))
        # Every node has finished one background round, as a running alliance has.
        time.sleep(3 + (n - 1) / PULL_RATE)
        requests, dispatches = [], []
        for k in range(samples):
            inc = _incident(member, Marking(TLP.AMBER_STRICT, case_audience(member, cell)))
            stores[0].put(inc, Provenance(member, "local"))
            t0 = time.time()
            req = request_assistance(stores[0], member=member, cell=cell,
                                     incident_id=inc["id"], needs=["forensics"],
                                     access=mine, description=f"bench sample {k}")
            requests.append(_wait(stores[1], req["id"], t0))
            t0 = time.time()
            d = dispatch_team(stores[1], cell=cell, request_id=req["id"], team=team,
                              lead=team[0], reason="bench", by=cell, access=cells)
            dispatches.append(_wait(stores[0], d["id"], t0))
            roster.set_availability(stores[1], team, "available")
            time.sleep(0.3)
        return requests, dispatches


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--samples", type=int, default=20)
    a = ap.parse_args()
    print(f"load average before: {_load()}", flush=True)
    req, disp = flow(a.nodes, a.samples)
    for what, lat in (("request (member's node) -> stored on the cell", req),
                      ("dispatch (cell) -> stored on the member's node", disp)):
        print(f"{what} ({a.nodes} nodes, {len(lat)} samples): median "
              f"{statistics.median(lat) * 1000:.0f} ms, p95 {_p95(lat) * 1000:.0f} ms, "
              f"max {max(lat) * 1000:.0f} ms (load average {_load()})", flush=True)


if __name__ == "__main__":
    main()
