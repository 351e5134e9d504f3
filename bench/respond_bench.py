"""Rapid reaction benchmarks (issue 15). Parts, chosen with --part:

- `verify`: `case verify` on a case with 10,000 custody events (10 evidence items, each
  worked by two nodes: 20 chains), SQLite. Timed in process (`respond.verify.verify_case`,
  what the command runs: the store reads, every hash and Ed25519 signature, the chains),
  median of --repeats; and the whole command once (a process: start-up included).
- `merge`: a laptop node's 24 h of offline work on a case (500 timeline events, 50
  evidence items with their "collected" custody events, 200 observables, 100 task
  updates), made through the same functions the `case` commands call, packed by
  `case sync` and merged into the case's node by `case checkin`. Timed: the checkin
  (open, decrypt, verify, judge, store), median of --repeats, each into a fresh copy of
  the case's node; then every object version of the kit is counted on the case's node:
  lost and duplicated must be 0.

    .venv/bin/python -m bench.respond_bench --part verify merge --repeats 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from shieldwall.config import init_home
from shieldwall.keys.signing import node_keys, verify_signature
from shieldwall.node import Node
from shieldwall.policy import Member, Members
from shieldwall.respond.cases import (
    add_event,
    add_observable,
    add_task,
    add_to_case,
    load_case,
    put_items,
    update_task,
)
from shieldwall.respond.custody import Head, custody_event, heads, object_hash, signed_bytes
from shieldwall.respond.evidence import evidence_item, publish_keys, record_evidence
from shieldwall.respond.kit import NodeRef, merge, open_kit, pack, write_kit
from shieldwall.respond.model import Marking, assistance_request, dispatch, link
from shieldwall.respond.verify import store_keyring, verify_case
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Query
from shieldwall.taxii.app import access_for

CELL, TEAM = "cell", ("cert-north:alice",)


def _node(home: Path, member: str) -> Node:
    node = Node(init_home(home, member))
    node.store.put(node.identity(), Provenance(member, "local"), default_tlp=TLP.CLEAR)
    return node


def _case(node: Node) -> str:
    """The requesting member's incident, request and the cell's dispatch of TEAM."""
    me = node.member
    mark = Marking(TLP.AMBER_STRICT, tuple(sorted({me, CELL, "cert-north"})))
    ts = "2026-12-01T08:00:00.000Z"
    inc = {"type": "incident", "spec_version": "2.1", "id": new_id("incident"), "created": ts,
           "modified": ts, "name": "ransomware at srv-07",
           "created_by_ref": member_identity_id(me), **mark.props()}
    put_items(node.store, me, [inc])
    req = assistance_request(requester=me, cell=CELL, incident_id=inc["id"],
                             needs=["forensics"], marking=mark)
    add_to_case(node.store, me, inc["id"], req)
    sent = dispatch(request=req, cell=CELL, team=list(TEAM), lead=TEAM[0], reason="skills")
    node.store.put_many([sent, link(sent, inc["id"])], Provenance(CELL, "federation"))
    return str(inc["id"])


def _median(fn: Callable[[], object], repeats: int) -> tuple[float, float, list[float]]:
    """Median wall and CPU seconds of `fn` (CPU time: the machine is shared, and a loaded
    machine stretches the wall time of the same work)."""
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu), times


def bench_verify(root: Path, repeats: int, events: int = 10_000) -> None:
    home = _node(root / "south", "cert-south")
    laptop = node_keys(root / "laptop", "cert-north")
    keys = node_keys(home.config.home, "cert-south")
    case = _case(home)
    publish_keys(home.store, keys)
    home.store.put(laptop.card(), Provenance("cert-north", "federation"))
    mark = Marking(TLP.AMBER_STRICT, ("cell", "cert-north", "cert-south"))
    t0 = time.perf_counter()
    items = [evidence_item(creator="cert-south", case_id=case, name=f"item {i}",
                           sha256=f"{i:064x}", size=i, kept_at="locker",
                           collected_by="cert-south:carol", collected_how="dd", marking=mark)
             for i in range(10)]
    chain_heads: dict[tuple[str, str], Head] = {}
    objs: list[dict[str, object]] = []
    for n in range(events):
        item = items[n % 10]
        acting = keys if (n // 10) % 2 == 0 else laptop
        ev = custody_event(keys=acting, case_id=case, evidence=item,
                           action="collected" if n < 10 else "analysed",
                           actor="cert-south:carol" if acting is keys else "cert-north:alice",
                           chain_heads=chain_heads, details={"tool": f"step {n}"})
        chain_heads[(item["id"], acting.signing_public)] = Head(ev["chain_seq"],
                                                                object_hash(ev))
        objs.append(ev)
    # Stored as the nodes would hold them (the laptop's events arrive by kit or federation).
    rows = [*items, *(link(i, case) for i in items)]
    for ev in objs:
        rows += [ev, link(ev, case)]
    home.store.put_many(rows, Provenance("cert-south", "local"))
    print(f"setup: {events:,} custody events in {len(heads(objs))} chains, "
          f"{time.perf_counter() - t0:.1f} s")
    access = access_for(Member("cert-south", "ally"))
    report = verify_case(home.store, case, access, heads_file=None)
    assert report.ok and report.events == events, report.findings[:3]
    med, cpu, times = _median(lambda: verify_case(home.store, case, access, heads_file=None),
                              repeats)
    print(f"verify_case, {events:,} events: median {med:.3f} s wall, {cpu:.3f} s CPU "
          f"(runs {', '.join(f'{t:.3f}' for t in times)})")
    # What checking every event's own signature would add (the chains make it one a chain).
    signed = [(str(e["signing_key"]), str(e["signature"]), signed_bytes(e)) for e in objs]
    med_all, cpu_all, _ = _median(lambda: [verify_signature(*x) for x in signed], 1)
    print(f"for comparison, an Ed25519 check of each of the {events:,} events alone: "
          f"{med_all:.3f} s wall, {cpu_all:.3f} s CPU")
    home.close()
    env = dict(os.environ, SHIELDWALL_HOME=str(root / "south"))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "shieldwall.cli.main", "case", "verify", case],
                       env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"'shieldwall case verify' whole command (start-up included): {wall:.2f} s")


def bench_merge(root: Path, repeats: int) -> None:
    south = _node(root / "south", "cert-south")
    laptop = _node(root / "laptop", "cert-north")
    skeys = node_keys(south.config.home, "cert-south")
    lkeys = node_keys(laptop.config.home, "cert-north")
    Members(south.store.engine).add("cert-north", "ally")
    publish_keys(south.store, skeys)
    publish_keys(laptop.store, lkeys)
    south.store.put(lkeys.card(), Provenance("cert-north", "federation"))
    laptop.store.put(skeys.card(), Provenance("cert-south", "federation"))
    case_id = _case(south)
    north = access_for(Member("cert-north", "ally"))
    data, _ = pack(south.store, skeys, case_id, north,
                   NodeRef("cert-north", lkeys.signing_public, lkeys.kit_public),
                   kind="checkout")
    write_kit(root / "out.swk", data)
    from shieldwall.cli.case_custody import _judge

    kit = open_kit(root / "out.swk", lkeys, store_keyring(laptop.store))
    merge(laptop.store, kit, _judge(laptop, kit))

    t0 = time.perf_counter()
    case = load_case(laptop.store, case_id, north)
    store, me = laptop.store, "cert-north"
    for i in range(500):
        add_event(store, me, case, name=f"event {i}", start=f"2026-12-05T{i % 24:02d}:00:00Z",
                  fidelity="minute", source="edr")
    for i in range(50):
        record_evidence(store, laptop.config.home, lkeys, case, actor="cert-north:alice",
                        name=f"artefact {i}", sha256=f"{i:064x}", size=1000 + i,
                        kept_at="alice laptop", collected_by="cert-north:alice",
                        collected_how="kape")
    for i in range(200):
        add_observable(store, me, case, f"ipv4-addr:198.51.{i // 250}.{i % 250 + 1}")
        if i % 50 == 49:
            case = load_case(store, case_id, north)
    tasks = [add_task(store, me, case, name=f"task {i}") for i in range(20)]
    for step in ("ongoing", "ongoing", "ongoing", "ongoing", "successful"):
        for t in tasks:
            update_task(store, me, t["id"], north, outcome=step,
                        name=f"{t['name']} ({step})" if step == "ongoing" else None)
    print(f"setup: 24 h of work on the laptop in {time.perf_counter() - t0:.1f} s")
    data, n = pack(store, lkeys, case_id, north,
                   NodeRef("cert-south", skeys.signing_public, skeys.kit_public),
                   kind="return", created_by=me)
    back = root / "back.swk"
    write_kit(back, data)
    print(f"kit back: {n:,} objects, {len(data):,} bytes")
    laptop.close()
    south.close()

    src = root / "south"
    times: list[float] = []
    cpu: list[float] = []
    for r in range(repeats):
        copy = root / f"south-{r}"
        shutil.copytree(src, copy)
        node = Node.load(copy)
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            kit = open_kit(back, skeys, store_keyring(node.store))
            result = merge(node.store, kit, _judge(node, kit))
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            lost, doubled = _check(node, kit.objects)
        finally:
            node.close()
        print(f"  run {r + 1}: {times[-1]:.2f} s ({cpu[-1]:.2f} s CPU), {result.put.new:,} new, "
              f"{result.put.new_versions + result.put.history:,} new versions, "
              f"{len(result.refused) + len(result.put.rejected)} refused; "
              f"lost {lost}, duplicated {doubled}")
    print(f"offline merge (checkin of the kit back): median {statistics.median(times):.2f} s "
          f"wall, {statistics.median(cpu):.2f} s CPU")


def _check(node: Node, objects: list[dict[str, object]]) -> tuple[int, int]:
    """Versions of the kit missing on the node, and versions held more than once."""
    from shieldwall.stix.timestamps import parse_ts

    wanted = {(str(o["id"]), parse_ts(str(o.get("modified") or o.get("created"))))
              for o in objects}
    ids = sorted({i for i, _ in wanted})
    held: dict[tuple[str, int], int] = {}
    for i in range(0, len(ids), 500):
        for row in node.store.query(Query(ids=ids[i:i + 500], versions="all")).rows:
            key = (row.id, row.version_us)
            held[key] = held.get(key, 0) + 1
    lost = sum(1 for w in wanted if w not in held)
    doubled = sum(c - 1 for c in held.values() if c > 1)
    return lost, doubled


PARTS = {"verify": bench_verify, "merge": bench_merge}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", nargs="+", choices=sorted(PARTS), default=sorted(PARTS))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    for part in args.part:
        print(f"== {part}")
        with tempfile.TemporaryDirectory() as tmp:
            PARTS[part](Path(tmp), args.repeats)


if __name__ == "__main__":
    main()
