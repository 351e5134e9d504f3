"""Case exports and imports (issue 15, part 7): how long one export takes, per format.

One SQLite store holds a case the size of the case bench's (15 observables, 30 events,
5 tasks) with 3 evidence items and 10 custody events, all AMBER+STRICT named to the case's
audience; each format is exported for a team member's Access (`export_case`: the case
read through the store, then written) `--repeats` times, and the median is printed. The
import is the IRIS API reference's example case (95 objects) into a fresh store each time.

    .venv/bin/python -m bench.case_exports_bench --repeats 15
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

from shieldwall.assess.incidents import IncidentFields, new_incident
from shieldwall.keys.signing import node_keys
from shieldwall.policy import Member
from shieldwall.respond import cases, model
from shieldwall.respond.custody import custody_event, heads
from shieldwall.respond.evidence import evidence_item
from shieldwall.respond.exports import FORMATS, export_case
from shieldwall.respond.imports import import_file
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Store
from shieldwall.taxii.app import access_for

IRIS = Path(__file__).resolve().parents[1] / "tests" / "data" / "respond" / "iris-case-export.json"
SOUTH, CELL, NORTH = "cert-south", "cell", "cert-north"


def build(store: Store, home: Path) -> str:
    inc = new_incident(member_identity_id(SOUTH), IncidentFields(name="bench case"),
                       tlp=TLP.AMBER)[0]
    store.put(inc, Provenance(SOUTH, "local"))
    cid = str(inc["id"])
    team = model.Marking(TLP.AMBER_STRICT, (SOUTH, CELL, NORTH))
    items = [model.task(creator=SOUTH, name=f"task {i}", marking=team) for i in range(5)]
    items += [model.event(creator=SOUTH, name=f"event {i}", marking=team,
                          start=f"2026-12-01T{i % 24:02d}:00:00Z") for i in range(30)]
    items += [model.observable(f"ipv4-addr:198.51.100.{i}", creator=SOUTH, marking=team)
              for i in range(15)]
    cases.add_to_case(store, SOUTH, cid, *items)
    keys = node_keys(home, SOUTH)
    events: list[dict] = []
    objs: list[dict] = []
    for j in range(3):
        ev = evidence_item(creator=SOUTH, case_id=cid, name=f"image {j}", sha256=f"{j:02d}" * 32,
                           size=1000, kept_at="locker", collected_by=f"{SOUTH}:carol",
                           collected_how="dd", marking=team)
        objs += [ev, model.link(ev, cid)]
        for k in range(4 if j else 2):
            c = custody_event(keys=keys, case_id=cid, evidence=ev,
                              action="collected" if k == 0 else "analysed",
                              actor=f"{SOUTH}:carol", chain_heads=heads(events))
            events.append(c)
            objs += [c, model.link(c, cid)]
    store.put_many(objs, Provenance(SOUTH, "local"))
    return cid


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    store = Store.open(f"sqlite:///{tmp / 'store.db'}")
    cid = build(store, tmp / "home")
    access = access_for(Member(NORTH, "ally"))
    for fmt in FORMATS:
        times = []
        for _ in range(args.repeats):
            buf = io.StringIO()
            t0 = time.perf_counter()
            n = export_case(store, cid, access, fmt, buf, reader=NORTH)
            times.append(time.perf_counter() - t0)
        print(f"export {fmt:<11} {n:>4} items {len(buf.getvalue()):>7,} bytes  "
              f"median {statistics.median(times) * 1000:6.1f} ms")
    times = []
    for i in range(max(3, args.repeats // 3)):
        fresh = Store.open(f"sqlite:///{tmp / f'import{i}.db'}")
        t0 = time.perf_counter()
        import_file(fresh, SOUTH, IRIS, "iris")
        times.append(time.perf_counter() - t0)
        fresh.close()
    print(f"import iris (95 objects, fresh store) median {statistics.median(times) * 1000:.1f} ms")
    store.close()


if __name__ == "__main__":
    main()
