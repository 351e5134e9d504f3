"""Blind-matching benchmark (docs/blind.md, figures in docs/benchmarks.md).

    .venv/bin/python -m bench.blind_bench --publish 1000000
    .venv/bin/python -m bench.blind_bench --resolve 1000000
    .venv/bin/python -m bench.blind_bench --hunt 500000 --indicators 10000 --runs 3
    .venv/bin/python -m bench.blind_bench --latency 20

- `--publish N`: an owner publishes N protected IPv4 values (OPRF evaluation in a process
  per core, set objects and handle rows stored in SQLite).
- `--resolve N`: an ally resolves N distinct values against a real owner node (`shieldwall
  serve` on 127.0.0.1): blinding, HTTP, evaluation, proof verification, cache writes. Bytes
  are counted on the wire as HTTP carries them (bodies and headers, both ways).
- `--hunt EVENTS`: a Zeek conn log against `--indicators` plain indicators, alone and with
  a blind set of as many values loaded (its values resolved beforehand, as `blind resolve`
  does in its first pass): events/s of each, same run, median of `--runs`, and the ratio.
- `--latency K`: two real nodes; the ally records K blind sightings one at a time; the time
  until each is in the owner's store (p50, p95).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SHIELDWALL = str(Path(sys.executable).with_name("shieldwall"))
OWNER, ALLY = "cert-north", "cert-east"


def _ips(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    picked = rng.sample(range(1 << 24, 224 << 24), n)
    return [f"{v >> 24}.{v >> 16 & 255}.{v >> 8 & 255}.{v & 255}" for v in picked]


def _home(root: Path, member: str, **settings: Any) -> Path:
    from shieldwall.config import init_home
    from shieldwall.store import Store

    home = root / member
    init_home(home, member, **settings)
    Store.open(f"sqlite:///{home / 'shieldwall.db'}").close()
    return home


def _serve(home: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([SHIELDWALL, "serve", "--home", str(home), "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=os.environ | (env or {}))
    assert proc.stderr is not None
    for line in proc.stderr:
        m = re.search(r"serving TAXII 2\.1 on (https?://[\d.]+:\d+)/", line)
        if m:
            def drain() -> None:
                for ln in proc.stderr:  # type: ignore[union-attr]
                    if "Traceback" in ln or "Error" in ln or "error" in ln:
                        print("server:", ln.rstrip(), file=sys.stderr)

            threading.Thread(target=drain, daemon=True).start()
            return proc, m.group(1)
    raise RuntimeError("shieldwall serve did not start")


class _Load:
    """The machine's 1-minute load average while a measurement runs (sampled every 2 s):
    on a shared machine it says how much of the wall time was the work's."""

    def __init__(self) -> None:
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(2):
            self.samples.append(os.getloadavg()[0])

    def done(self) -> str:
        self._stop.set()
        self.samples.append(os.getloadavg()[0])
        return (f"load {min(self.samples):.1f}-{max(self.samples):.1f} "
                f"(median {statistics.median(self.samples):.1f}) on {os.cpu_count()} cores")


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_publish(n: int) -> None:
    from shieldwall.blind.sets import Entry, publish
    from shieldwall.keys.oprf import oprf_key
    from shieldwall.store import Store

    with tempfile.TemporaryDirectory(prefix="blind-bench-") as tmp:
        root = Path(tmp)
        store = Store.open(f"sqlite:///{root / 'owner.db'}")
        entries = [Entry("ipv4-addr:value", v, f"indicator--00000000-0000-4000-8000-{i:012d}")
                   for i, v in enumerate(_ips(n))]
        key = oprf_key(root)
        load = _Load()
        t, cpu0 = time.perf_counter(), time.process_time()
        children0 = os.times().children_user + os.times().children_system
        pub = publish(store, OWNER, key, entries)
        total = time.perf_counter() - t
        said = load.done()
        cpu = time.process_time() - cpu0 + os.times().children_user + \
            os.times().children_system - children0
        size = sum(len(str(o)) for o in pub.objects)
        print(f"publish: {pub.values:,} values in {total:.1f} s "
              f"({pub.values / total:,.0f}/s, {os.cpu_count()} processes), "
              f"{len(pub.objects) - 1} set objects, {size / 1e6:.1f} MB of STIX; CPU "
              f"{cpu:.1f} s in all ({cpu / pub.values * 1e6:.0f} us/value); {said}; "
              f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")
        store.close()


def _cpu_all() -> float:
    """CPU seconds of this process and its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def bench_resolve(n: int, batch: int, processes: int) -> None:
    import httpx

    from shieldwall.blind.resolve import Resolver
    from shieldwall.blind.sets import oprf_input
    from shieldwall.config import load_config
    from shieldwall.keys.oprf import oprf_key
    from shieldwall.policy import Members
    from shieldwall.store import Store

    with tempfile.TemporaryDirectory(prefix="blind-bench-") as tmp:
        root = Path(tmp)
        home = _home(root, OWNER)
        cfg = load_config(home)
        cfg.blind.daily_quota = n * 2
        cfg.blind.alarm_floor = n * 2
        cfg.save()
        s = Store.open(cfg.db_url)
        token = Members(s.engine).add(ALLY, "ally")
        s.close()
        key = oprf_key(home)
        proc, url = _serve(home)
        ally = Store.open(f"sqlite:///{root / 'ally.db'}")
        from shieldwall.taxii.blind_routes import RemoteEvaluate
        from shieldwall.taxii.client import Credentials

        send = RemoteEvaluate(url, Credentials("bearer", token))
        # the headers of one request and its answer, as HTTP/1.1 carries them
        probe = httpx.post(f"{url}/api/blind/evaluate/", params={"epoch": "1"},
                           content=b"", headers={"Authorization": f"Bearer {token}",
                                                 "Content-Type": "application/octet-stream"})
        head = sum(len(k) + len(v) + 4 for k, v in probe.request.headers.raw) + len(
            probe.request.url.raw_path) + 30 + sum(
            len(k) + len(v) + 4 for k, v in probe.headers.raw) + 20

        try:
            inputs = [oprf_input("ipv4-addr:value", v) for v in _ips(n, seed=11)]
            res = Resolver(ally, key.public_key, key.epoch, send, batch=batch,
                           processes=processes)
            load = _Load()
            cpu0, srv0 = _cpu_all(), _cpu(proc.pid)
            t = time.perf_counter()
            out = res.resolve(inputs)
            total = time.perf_counter() - t
            said = load.done()
            cpu, srv = _cpu_all() - cpu0, _cpu(proc.pid) - srv0
            wire = res.stats.bytes_sent + res.stats.bytes_received + res.stats.requests * head
            assert len(out) == n
            print(f"resolve: {n:,} distinct values in {total:.1f} s ({n / total:,.0f}/s), "
                  f"{res.stats.requests} requests of {batch:,} from {processes} processes, "
                  f"{wire / 1e6:.1f} MB on the wire ({wire / n:.0f} B/value); CPU: ally "
                  f"{cpu:.1f} s "
                  f"({cpu / n * 1e6:.0f} us/value), owner {srv:.1f} s "
                  f"({srv / n * 1e6:.0f} us/value); {said}; "
                  f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")
            t = time.perf_counter()
            again = Resolver(ally, key.public_key, key.epoch, send, batch=batch)
            again.resolve(inputs)
            print(f"resolve again (cache, new process state): {time.perf_counter() - t:.1f} s, "
                  f"{again.stats.requests} requests")
        finally:
            proc.terminate()
            proc.wait(10)
            ally.close()


def bench_hunt(events: int, n_ind: int, runs: int) -> None:
    from bench.detect_bench import MEMBER, gen_log, indicators
    from shieldwall.blind.hits import BlindMatcher
    from shieldwall.blind.sets import BlindSet, oprf_input
    from shieldwall.detect.hunt import Hunter
    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.sightings import Sightings
    from shieldwall.keys.oprf import oprf_key
    from shieldwall.stix.markings import TLP

    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        log = root / "conn.log"
        gen_log("conn", log, events, rng, n_ind)
        inds = indicators(n_ind, rng)
        ix = IndicatorIndex()
        ix.add_many(inds)
        lines = [ln.split("\t") for ln in log.read_text().splitlines() if ln[0] != "#"]
        servers = sorted({r[4] for r in lines})
        # as rare as the plain run's planted hits: 50 of the log's 50,000 servers (~0.1 %)
        protected = rng.sample(servers, 50) + _ips(n_ind - 50, seed=3)
        key = oprf_key(root)
        ev = key.evaluator()
        outs = {bytes(ev.evaluate_known_input(oprf_input("ipv4-addr:value", v)))[:16]:
                f"{i:016x}" for i, v in enumerate(protected[:n_ind])}
        bset = BlindSet("x-shieldwall-blind-set--1", OWNER, 1, key.key_id, key.public_key,
                        {"ipv4-addr:value": outs})

        # The first pass: the log's distinct values for the set's paths, collected (their
        # resolution is what --resolve measures). The event path needs only the values that
        # hit, which this benchmark knows: the protected servers of the log.
        t = time.perf_counter()
        pre = BlindMatcher([bset], {}, lambda h: None, learn=False)
        Hunter(IndicatorIndex(), Sightings(MEMBER, TLP.AMBER), sink=pre.learn).run([log])
        distinct = pre.flush()  # folded and counted (no resolver: nothing is asked)
        first_pass = time.perf_counter() - t
        for v in protected[:50]:
            out = bytes(ev.evaluate_known_input(oprf_input("ipv4-addr:value", v)))[:16]
            pre._hit["ipv4-addr:value"][v] = [(bset, outs[out])]

        def plain() -> float:
            h = Hunter(ix, Sightings(MEMBER, TLP.AMBER))
            t0 = time.perf_counter()
            h.run([log])
            return events / (time.perf_counter() - t0)

        def blind() -> tuple[float, int]:
            m = BlindMatcher([bset], {}, lambda h: None, learn=False)
            m._hit = pre._hit  # the first pass's results
            h = Hunter(ix, Sightings(MEMBER, TLP.AMBER), sink=m.feed)
            t0 = time.perf_counter()
            h.run([log])
            return events / (time.perf_counter() - t0), m.hits

        p, b, hits = [], [], 0
        for _ in range(runs):
            p.append(plain())
            rate, hits = blind()
            b.append(rate)
        mp, mb = statistics.median(p), statistics.median(b)
        print(f"hunt: {events:,} conn events, {n_ind:,} indicators; plain {mp:,.0f} ev/s, "
              f"with a blind set of {len(outs):,} values {mb:,.0f} ev/s: ratio {mb / mp:.2f} "
              f"(median of {runs}, same run; {hits:,} blind hits); first pass (collecting "
              f"{distinct:,} distinct values) {first_pass:.1f} s")


def bench_latency(k: int) -> None:
    from shieldwall.blind.hits import BlindHit, BlindSightings
    from shieldwall.config import load_config
    from shieldwall.federation import add_peer
    from shieldwall.policy import Members
    from shieldwall.store import Provenance, Store

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        homes = {m: _home(root, m) for m in (OWNER, ALLY)}
        for a, b in ((OWNER, ALLY), (ALLY, OWNER)):  # b is a member of a
            s = Store.open(load_config(homes[a]).db_url)
            (homes[b] / f"token-at-{a}").write_text(Members(s.engine).add(b, "ally") + "\n")
            s.close()
        procs = {m: _serve(h) for m, h in homes.items()}
        try:
            for a, b in ((OWNER, ALLY), (ALLY, OWNER)):
                add_peer(load_config(homes[a]), b, procs[b][1], homes[a] / f"token-at-{b}",
                         push=["alliance"])
            time.sleep(3)
            ally = Store.open(load_config(homes[ALLY]).db_url)
            owner = Store.open(load_config(homes[OWNER]).db_url)
            lat = []
            for i in range(k):
                bs = BlindSightings(ALLY)
                bs.add(BlindHit("x-shieldwall-blind-set--00000000-0000-4000-8000-000000000001",
                                OWNER, f"{i:016x}", "ipv4-addr:value",
                                "network-traffic:dst_ref.value", "conn.log", i + 1,
                                1_700_000_000_000_000 + i * 3_600_000_000))
                (obj,) = bs.objects()
                t = time.perf_counter()
                ally.put_many([obj], Provenance(ALLY, "hunt"))
                while owner.get(obj["id"]) is None:
                    if time.perf_counter() - t > 30:
                        raise RuntimeError("a blind sighting did not reach the owner in 30 s")
                    time.sleep(0.02)
                lat.append(time.perf_counter() - t)
                time.sleep(0.3)
            q = statistics.quantiles(lat, n=20)
            print(f"latency: {k} blind sightings ally -> owner: p50 {statistics.median(lat):.2f}"
                  f" s, p95 {q[18]:.2f} s, max {max(lat):.2f} s")
            ally.close()
            owner.close()
        finally:
            for proc, _ in procs.values():
                proc.terminate()
                proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--publish", type=int)
    ap.add_argument("--resolve", type=int)
    ap.add_argument("--batch", type=int, default=8_192)
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--hunt", type=int)
    ap.add_argument("--indicators", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency", type=int)
    a = ap.parse_args()
    if a.publish:
        bench_publish(a.publish)
    if a.resolve:
        bench_resolve(a.resolve, a.batch, a.processes)
    if a.hunt:
        bench_hunt(a.hunt, a.indicators, a.runs)
    if a.latency:
        bench_latency(a.latency)


if __name__ == "__main__":
    main()
