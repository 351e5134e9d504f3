"""Federation benchmark: sighting propagation latency (3 and 32 nodes) and pull throughput.

Nodes are separate `shieldwall serve` processes on 127.0.0.1 (the demo's light launcher:
the serve command alone), each with its own SQLite home, full mesh of peers. A sample
records one sighting in node 0's store (as `hunt` does) and times until the last of the
other nodes stored it (its `date_added`; all nodes share the machine's clock). Push on
record: each serve polls its newest seq every 100 ms.

Throughput: node A holds a backlog of N indicators (written to its store directly, not
timed); node B pulls it once through `Federation.pull` (pages of 10,000; past two pages a
worker process fetches and judges while B's store writes).

    .venv/bin/python -m bench.federation_bench --nodes 3 32 --samples 12 --backlog 1000000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from shieldwall.cli.demo import _SERVE
from shieldwall.config import init_home, load_config
from shieldwall.federation import Federation, add_peer
from shieldwall.federation.sync import PULL_RATE
from shieldwall.policy import Members, member_identity_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.store import Provenance, Query, Store


def _nodes(
    root: Path, n: int, federate: bool = True
) -> tuple[list[Path], list[subprocess.Popen[bytes]], list[str]]:
    import re

    homes = [root / f"node{i:02d}" for i in range(n)]
    for h in homes:
        init_home(h, h.name)
    for h in homes:
        s = Store.open(load_config(h).db_url)
        reg = Members(s.engine)
        for o in homes:
            if o != h:
                (o / f"token-at-{h.name}").write_text(reg.add(o.name, "ally"))
        s.close()
    procs = []
    for h in homes:
        log = open(h / "serve.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen([sys.executable, "-c", _SERVE, "serve", "--home", str(h),
                                       "--port", "0", "--rate-limit", "0",
                                       *([] if federate else ["--no-federate"])],
                                      stdout=log, stderr=subprocess.STDOUT))
    urls = [""] * n
    while not all(urls):
        for i, h in enumerate(homes):
            m = re.search(r"serving TAXII 2\.1 on (http://[\d.]+:\d+)/",
                          (h / "serve.log").read_text())
            if m:
                urls[i] = m.group(1)
        time.sleep(0.2)
    for h in homes:
        cfg = load_config(h)
        for j, o in enumerate(homes):
            if o != h:
                add_peer(cfg, o.name, urls[j], h / f"token-at-{o.name}", replace=True)
    return homes, procs, urls


def _sighting(member: str) -> dict:
    ident = member_identity_id(member)
    return {"type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
            "created": "2024-03-01T00:00:00.000Z", "modified": "2024-03-01T00:00:00.000Z",
            "created_by_ref": ident, "sighting_of_ref": f"indicator--{uuid.uuid4()}",
            "where_sighted_refs": [ident], "count": 1,
            "object_marking_refs": [tlp_marking_ref(TLP.GREEN)]}


def propagation(n: int, samples: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        homes, procs, _ = _nodes(Path(tmp), n)
        stores = [Store.open(load_config(h).db_url) for h in homes]
        try:
            # Let every node finish one background round (each peer pulled once, its
            # writable collections known): what a node that has been running looks like.
            time.sleep(3 + (n - 1) / PULL_RATE)
            out = []
            for _ in range(samples):
                s = _sighting(homes[0].name)
                t0 = time.time()
                stores[0].put(s, Provenance(homes[0].name, "detect"))
                pending, added = set(range(1, n)), []
                while pending:
                    time.sleep(0.05)  # this watcher must not take the CPU the nodes need
                    for i in list(pending):
                        row = stores[i].get(s["id"])
                        if row is not None:
                            pending.discard(i)
                            added.append(row.date_added_us / 1e6)
                    if time.time() - t0 > 60:
                        raise SystemExit(f"{len(pending)} nodes never received the sighting")
                out.append(max(added) - t0)  # when the last node stored it, by its own clock
                time.sleep(0.3)
            return out
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)
            for st in stores:
                st.close()


def throughput(backlog: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        homes, procs, _ = _nodes(Path(tmp), 2, federate=False)
        try:
            sa = Store.open(load_config(homes[0]).db_url)
            t0 = time.perf_counter()
            batch = []
            for i in range(backlog):
                batch.append({
                    "type": "indicator", "spec_version": "2.1",
                    "id": f"indicator--{uuid.UUID(int=i + 1, version=4)}",
                    "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
                    "pattern": f"[ipv4-addr:value = '10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}']",
                    "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z",
                    "object_marking_refs": [tlp_marking_ref(TLP.GREEN)]})
                if len(batch) == 20_000:
                    sa.put_many(batch, Provenance("node00", "import"), batch_size=20_000)
                    batch = []
            if batch:
                sa.put_many(batch, Provenance("node00", "import"), batch_size=20_000)
            fill = time.perf_counter() - t0
            sa.close()
            cfg = load_config(homes[1])
            sb = Store.open(cfg.db_url)
            fed = Federation(homes[1], sb)
            t0 = time.perf_counter()
            got = fed.pull(fed.peers()[0]).stored
            took = time.perf_counter() - t0
            assert got == backlog == sb.count(Query()), (got, backlog)
            fed.close()
            sb.close()
            return backlog / took, fill
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, nargs="*", default=[3, 32])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--backlog", type=int, default=200_000)
    a = ap.parse_args()
    for n in a.nodes:
        lat = sorted(propagation(n, a.samples))
        p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
        print(f"propagation to all of {n - 1} other nodes ({n} nodes, {len(lat)} samples): "
              f"median {statistics.median(lat) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms "
              f"(load average {_load()})", flush=True)
    if a.backlog:
        rate, fill = throughput(a.backlog)
        print(f"pull throughput, {a.backlog:,} objects between two nodes: {rate:,.0f} objects/s "
              f"(backlog written in {fill:.1f}s; load average {_load()})", flush=True)


if __name__ == "__main__":
    main()
