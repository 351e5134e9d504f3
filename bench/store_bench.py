"""Store benchmark (issue 2): import rate, flat reads from 10k to 1M objects, bytes per indicator,
streamed imports of a million objects and of a 1 GB file with their peak memory.

    .venv/bin/python bench/store_bench.py [--pg URL] [--repeat 3] [--big 1000000]
        [--skip import,reads,stream]

Import: a 100,000-indicator STIX bundle through `import_file` (schema + pattern
validation, TLP, provenance, batches of 5,000), on SQLite and PostgreSQL. In the same
run, the OASIS tooling path on a sample (stix2-validator per object, then stix2.parse
into a stix2 MemoryStore), extrapolated to 100,000, and a floor: orjson parse plus a
bare SQLite executemany of the same rows. The machine is shared, so ratios from one
run mean more than absolute figures.

CPU per object is reported beside each import rate (this process and the import's
worker, from getrusage): unlike objects/s it hardly moves when other work shares the
machine. PostgreSQL's own server CPU is not in it.

Streamed: a bundle of 1,000,000 indicators (~460 MB) and a 1 GB bundle (indicators
with a 4 KB description), each imported by a child process through `import_file`;
peak RSS of the importer and of its worker is read from getrusage.

Reads: latest-version read by id and a keyset page of 1,000 objects, at 10,000 and at
1,000,000 stored objects (filled with put_many directly: the reads, not the import,
are measured there). Medians of many calls.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shieldwall.ingest.runner import import_file
from shieldwall.node import member_identity
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.store import Provenance, Query, Store


def indicators(n: int, offset: int = 0) -> list[dict]:
    out = []
    kinds = ["ipv4-addr:value", "domain-name:value", "url:value", "file:hashes.'SHA-256'"]
    for i in range(offset, offset + n):
        k = kinds[i % 4]
        if k == "ipv4-addr:value":
            v = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        elif k == "domain-name:value":
            v = f"host{i}.example-c2.net"
        elif k == "url:value":
            v = f"http://bad{i}.example.org/payload/{i}.bin"
        else:
            v = f"{i:064x}"
        out.append({
            "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "name": f"shared indicator {i}", "pattern": f"[{k} = '{v}']", "pattern_type": "stix",
            "valid_from": "2024-01-01T00:00:00Z", "indicator_types": ["malicious-activity"],
            "object_marking_refs": [tlp_marking_ref(TLP.GREEN)],
        })
    return out


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench_import(url_for, bundle: Path, n: int, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median objects/s over `repeat` imports, and median CPU µs per object."""
    rates, cpus = [], []
    for _ in range(repeat):
        url, cleanup = url_for()
        store = Store.open(url)
        c0 = _cpu()
        dt = timed(lambda s=store: import_file(s, bundle, source="bench",
                                               producer=member_identity("bench"),
                                               default_tlp=TLP.AMBER))
        cpus.append((_cpu() - c0) / n * 1e6)
        assert store.count(Query(types=["indicator"])) == n
        store.close()
        cleanup()
        rates.append(n / dt)
    return statistics.median(rates), statistics.median(cpus)


def bench_reference(objs: list[dict], sample: int = 1_000) -> float:
    """OASIS tooling: stix2-validator on each object, then stix2.parse into a MemoryStore."""
    import stix2
    from stix2validator import ValidationOptions, validate_instance

    opts = ValidationOptions(version="2.1")
    mem = stix2.MemoryStore()
    part = objs[:sample]

    def run() -> None:
        for o in part:
            assert validate_instance(o, opts).is_valid
            mem.add(stix2.parse(o, allow_custom=True))

    return sample / timed(run)


def bench_floor(bundle: Path, n: int, tmp: Path) -> float:
    """orjson parse + bare sqlite executemany of (id, json): what no importer can beat."""
    db = tmp / "floor.db"

    def run() -> None:
        objs = orjson.loads(bundle.read_bytes())["objects"]
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE t (id TEXT PRIMARY KEY, json TEXT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", ((o["id"], orjson.dumps(o).decode())
                                                        for o in objs))
        con.commit()
        con.close()

    rate = n / timed(run)
    for f in tmp.glob("floor.db*"):
        f.unlink()
    return rate


def bench_reads(store: Store, ids: list[str], calls: int = 300) -> tuple[float, float]:
    by_id = []
    for oid in random.sample(ids, min(calls, len(ids))):
        by_id.append(timed(lambda o=oid: store.get(o)))
    total = store.count(Query())
    pages = []
    for _ in range(60):
        after = random.randrange(0, max(1, total - 1_000))
        pages.append(timed(lambda a=after: store.query(Query(after_seq=a, limit=1_000))))
    return statistics.median(by_id) * 1e3, statistics.median(pages) * 1e3


def fill(store: Store, n: int, chunk: int = 50_000) -> list[str]:
    ids: list[str] = []
    done = store.count(Query())
    while done < n:
        objs = indicators(min(chunk, n - done), offset=done)
        store.put_many(objs, Provenance("bench"), batch_size=chunk)
        ids.extend(o["id"] for o in objs[:: max(1, chunk // 2_000)])
        done += len(objs)
    return ids


def db_bytes(path: Path) -> int:
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = con.execute("PRAGMA page_count").fetchone()[0] * con.execute(
        "PRAGMA page_size").fetchone()[0]
    con.close()
    return size


_STREAM_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from shieldwall.ingest.runner import import_file
from shieldwall.node import member_identity
from shieldwall.stix.markings import TLP
from shieldwall.store import Store
store = Store.open(sys.argv[2])
t = time.perf_counter()
r = import_file(store, Path(sys.argv[1]), source="bench", producer=member_identity("bench"),
                default_tlp=TLP.AMBER)
dt = time.perf_counter() - t
store.close()
# VmHWM, not RUSAGE_SELF: after exec, Linux's ru_maxrss still counts the bench process
# this child was forked from.
me = int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"stored": r.stored, "rejected": len(r.rejected), "seconds": dt,
                  "rss_kb": me, "worker_rss_kb": kids}))
"""


def breakdown(bundle: Path, n: int, tmp: Path) -> None:
    """CPU µs per object of each step of an import, each step alone, best of 3.

    CPU time, not wall time: it hardly moves when other work shares the machine. The
    worker's steps and the writer's steps run at the same time on the two cores.
    """
    import gc
    import pickle

    import ijson

    from shieldwall.stix.validate import object_error
    from shieldwall.store.prepare import prepare_many
    from shieldwall.store.write import INSERT_COLUMNS

    def cpu_us(fn) -> float:  # type: ignore[no-untyped-def]
        best = float("inf")
        for _ in range(3):
            gc.collect()
            c = time.process_time()
            fn()
            best = min(best, time.process_time() - c)
        return best / n * 1e6

    with bundle.open("rb") as fh:
        objs = list(ijson.items(fh, "objects.item", use_float=True))

    def read() -> None:
        with bundle.open("rb") as fh:
            for _ in ijson.items(fh, "objects.item", use_float=True):
                pass

    now = time.time_ns() // 1000
    rows = [tuple(p) for p in prepare_many(objs, now, TLP.AMBER, {})]
    blobs = [pickle.dumps(rows[i:i + 5_000], -1) for i in range(0, n, 5_000)]
    steps = {
        "worker: read (ijson, streamed)": read,
        "worker: validate (OASIS schemas via jsonschema-rs, pattern)":
            lambda: [object_error(o) for o in objs],
        "worker: prepare rows (canonical JSON, TLP, timestamps)":
            lambda: [tuple(p) for p in prepare_many(objs, now, TLP.AMBER, {})],
        "worker: hand over (pickle)":
            lambda: [pickle.dumps(rows[i:i + 5_000], -1) for i in range(0, n, 5_000)],
        "writer: receive (unpickle)": lambda: [pickle.loads(b) for b in blobs],
    }
    for label, fn in steps.items():
        print(f"  {label}: {cpu_us(fn):.2f} us")

    def put() -> None:
        store = Store.open(f"sqlite:///{tmp / f'bd-{uuid.uuid4().hex}.db'}")
        for i in range(0, n, 5_000):
            store.put_prepared(rows[i:i + 5_000], Provenance("bench", "import"))
        store.close()

    def bare() -> None:
        store = Store.open(f"sqlite:///{tmp / f'bd-{uuid.uuid4().hex}.db'}")
        with store.write_engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            sql = (f"INSERT INTO objects ({', '.join(INSERT_COLUMNS)}) "
                   f"VALUES ({', '.join(['?'] * len(INSERT_COLUMNS))})")
            for i in range(0, n, 5_000):
                raw.execute("BEGIN IMMEDIATE")
                raw.executemany(sql, [(r[0], r[4], r[5], r[1], now + i + j, True, r[6], r[7],
                                       r[8], r[9], "bench", "import", None, r[3])
                                      for j, r in enumerate(rows[i:i + 5_000])])
                raw.execute("COMMIT")
        store.close()

    total, sqlite_part = cpu_us(put), cpu_us(bare)
    print(f"  writer: SQLite inserts into objects and its 4 indexes, commits: {sqlite_part:.2f} us")
    print(f"  writer: lookup of held versions, latest bookkeeping, rows: "
          f"{total - sqlite_part:.2f} us")
    for f in tmp.glob("bd-*"):
        f.unlink()


def write_bundle(path: Path, n: int, pad: int = 0) -> None:
    """A bundle written object by object, so that the bench itself stays small."""
    with path.open("wb") as fh:
        fh.write(b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode()
                 + b'","objects":[')
        done = 0
        while done < n:
            part = indicators(min(50_000, n - done), offset=done)
            if pad:
                for o in part:
                    o["description"] = "x" * pad
            fh.write((b"," if done else b"") + b",".join(orjson.dumps(o) for o in part))
            done += len(part)
        fh.write(b"]}")


def bench_stream(tmp: Path, label: str, bundle: Path) -> None:
    db = tmp / f"stream-{uuid.uuid4().hex}.db"
    out = subprocess.run([sys.executable, "-c", _STREAM_CHILD, str(bundle), f"sqlite:///{db}",
                          str(Path(__file__).resolve().parents[1])],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"streamed {label} ({bundle.stat().st_size / 1e9:.2f} GB): {r['stored']:,} stored, "
          f"{r['rejected']} rejected, {r['stored'] / r['seconds']:,.0f} objects/s; peak RSS "
          f"importer {r['rss_kb'] / 1024:.0f} MB, worker {r['worker_rss_kb'] / 1024:.0f} MB")
    for f in tmp.glob(db.name + "*"):
        f.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--pg", default=os.environ.get("SHIELDWALL_TEST_DATABASE_URL"))
    ap.add_argument("--skip", default="", help="comma-separated: import, reads, stream")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    tmp = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at start")
    if "import" not in skip:
        run_imports(tmp, args)
    if "reads" not in skip:
        run_reads(tmp, args.big)
    if "stream" not in skip:
        million = tmp / "million.json"
        write_bundle(million, 1_000_000)
        bench_stream(tmp, "bundle of 1,000,000 indicators", million)
        million.unlink()
        gigabyte = tmp / "gigabyte.json"
        write_bundle(gigabyte, 230_000, pad=4_000)
        bench_stream(tmp, "1 GB bundle", gigabyte)
        gigabyte.unlink()
    print(f"load average {os.getloadavg()[0]:.1f} at end")


def run_imports(tmp: Path, args: argparse.Namespace) -> None:
    objs = indicators(args.n)
    bundle = tmp / "bundle.json"
    bundle.write_bytes(orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                     "objects": objs}))
    print(f"bundle: {args.n} indicators, {bundle.stat().st_size / 1e6:.1f} MB")

    def sqlite_url():  # type: ignore[no-untyped-def]
        p = tmp / f"imp-{uuid.uuid4().hex}.db"
        return f"sqlite:///{p}", lambda: [f.unlink() for f in tmp.glob(p.name + "*")]

    print("CPU per object, each step alone (best of 3):")
    breakdown(bundle, args.n, tmp)
    sq, sq_cpu = bench_import(sqlite_url, bundle, args.n, args.repeat)
    floor = bench_floor(bundle, args.n, tmp)
    ref = bench_reference(objs)
    print(f"import SQLite: {sq:,.0f} objects/s (median of {args.repeat}); "
          f"CPU {sq_cpu:.1f} us per object (importer + worker)")
    print(f"  floor (orjson + bare executemany, no validation/indexes): {floor:,.0f} objects/s"
          f" -> Shieldwall is {sq / floor:.2f}x the floor")
    print(f"  OASIS tooling (stix2-validator + stix2 MemoryStore): {ref:,.0f} objects/s"
          f" -> Shieldwall is {sq / ref:,.0f}x faster")
    if args.pg:
        from tests.conftest import drop_pg_schema, pg_schema_url

        def pg_url():  # type: ignore[no-untyped-def]
            url, schema = pg_schema_url("bench")
            return url, lambda: drop_pg_schema(schema)

        pg, pg_cpu = bench_import(pg_url, bundle, args.n, args.repeat)
        print(f"import PostgreSQL: {pg:,.0f} objects/s (median of {args.repeat}); "
              f"client CPU {pg_cpu:.1f} us per object")
    bundle.unlink()


def run_reads(tmp: Path, big: int) -> None:
    path = tmp / "reads.db"
    store = Store.open(f"sqlite:///{path}")
    for size in (10_000, big):
        ids = fill(store, size)
        by_id, page = bench_reads(store, ids)
        per = db_bytes(path) / size
        print(f"{size:>9,} stored: latest by id {by_id:.3f} ms, keyset page of 1,000 "
              f"{page:.2f} ms (medians); {per:,.0f} bytes per indicator on disk")
    store.close()


if __name__ == "__main__":
    main()
