"""PostgreSQL at ten million objects (issue 17, part 3): import, reads and TAXII paging.

    createdb -h 127.0.0.1 -U postgres sw_scale10m
    .venv/bin/python bench/pg_scale_bench.py \
        --db-url postgresql+psycopg://postgres@127.0.0.1:5432/sw_scale10m \
        --work /tmp/sw-scale10m [--n 10000000] [--phases import,analyze,store,taxii]
        [--fill 9500000 --phases fill] [--phases search] [--workers 1,2] [--no-walk]

Phases (each may be run alone; `--work` keeps what a later phase needs):

- import: `--n` objects in streamed bundles (the first of 100,000 objects into the empty
  store, then `--bundle` objects each), each bundle written to a file and imported
  through `import_file` (the path of `shieldwall import`: streamed read, schema and
  pattern validation, TLP, provenance, batches of 5,000 written with COPY). The mix: 80 %
  indicators (the store bench's IPv4, domain, URL and SHA-256 patterns, TLP:GREEN), 10 %
  sightings of those indicators by 30 members, 10 % `related-to` relationships between
  them. Per bundle: objects/s, CPU of the importer and its worker, CPU of the PostgreSQL
  backends serving it, and the load average.
- fill: rows up to `--fill`, made inside PostgreSQL (`INSERT ... SELECT`) in the same
  mix and shape as the import writes them: on a busy machine ten million objects through
  the import take hours, and what is measured at that size is the next import and reads.
  The import phase goes on from however many objects the store holds.
- analyze: `ANALYZE` (the project's PostgreSQL runs with autovacuum off).
- store: `Store.get` by id and `Store.query` pages of 1,000 after a random `seq` (the
  database half of a TAXII read, without HTTP).
- search: `Store.search` for a stored IPv4 and for a SHA-256 written in upper case.
- taxii: `shieldwall serve` workers on the store (1, then 2, each on its own port as
  behind a reverse proxy), driven with OASIS taxii2-client: GET of single objects by id
  (`/objects/{id}/`), pages of 1,000 at random depths (`added_after` a random stored
  object's date_added), and paging the whole collection (pages of 5,000): one client
  with one worker, then two clients at once (each walking half) against one worker and
  against two. CPU of the clients, the server workers and the PostgreSQL backends.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.store_bench import indicators as store_indicators  # noqa: E402
from shieldwall.stix.markings import TLP, tlp_marking_ref  # noqa: E402

GREEN = tlp_marking_ref(TLP.GREEN)

BIN = Path(sys.executable).parent
MEMBERS = 30
TS = "2024-01-01T00:00:00.000Z"


# ---- data ------------------------------------------------------------------------------------


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def member_identity(k: int) -> str:
    return f"identity--{uuid.uuid5(uuid.NAMESPACE_DNS, f'member-{k:02d}.bench')}"


def objects(start: int, n: int, rng: random.Random, recent: list[str]) -> list[dict[str, Any]]:
    """Objects `start`..`start + n` of the stream: of every 10, 8 indicators, a sighting
    of a recent indicator and a relationship between two (`recent`: indicator ids kept
    by the caller across calls)."""
    out: list[dict[str, Any]] = []
    for i in range(start, start + n):
        r = i % 10
        if r < 8:
            # the store bench's indicator, numbered for distinct values
            ind = store_indicators(1, offset=i // 10 * 8 + r)[0]
            oid = ind["id"]
            out.append(ind)
            recent.append(oid)
            if len(recent) > 5_000:
                del recent[:1_000]
        elif r == 8:
            who = member_identity(rng.randrange(MEMBERS))
            out.append({
                "type": "sighting", "spec_version": "2.1", "id": f"sighting--{_uid(rng)}",
                "created": TS, "modified": TS, "created_by_ref": who,
                "sighting_of_ref": rng.choice(recent), "first_seen": TS, "last_seen": TS,
                "count": 1 + rng.randrange(20), "where_sighted_refs": [who],
                "object_marking_refs": [GREEN],
            })
        else:
            out.append({
                "type": "relationship", "spec_version": "2.1",
                "id": f"relationship--{_uid(rng)}", "created": TS, "modified": TS,
                "relationship_type": "related-to", "source_ref": rng.choice(recent),
                "target_ref": rng.choice(recent), "object_marking_refs": [GREEN],
            })
    return out


def write_bundle(path: Path, start: int, n: int, rng: random.Random, recent: list[str],
                 sample: list[str], every: int) -> None:
    """A bundle written 50,000 objects at a time (the bench stays small); every
    `every`-th id goes to `sample` (the ids the reads ask for)."""
    with path.open("wb") as fh:
        fh.write(b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode()
                 + b'","objects":[')
        done = 0
        while done < n:
            part = objects(start + done, min(50_000, n - done), rng, recent)
            sample.extend(o["id"] for o in part[::every])
            fh.write((b"," if done else b"") + b",".join(orjson.dumps(o) for o in part))
            done += len(part)
        fh.write(b"]}")


# ---- CPU -------------------------------------------------------------------------------------


def _own_cpu() -> float:
    me, kids = (resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def proc_cpu(pid: int) -> float:
    """user + system seconds of a live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Backends:
    """CPU of the PostgreSQL backends connected to the bench's database."""

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)
        self.db = self.conn.execute("SELECT current_database()").fetchone()[0]
        self.me = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.seen: dict[int, float] = {}

    def pids(self) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
            (self.db, self.me))]

    def start(self) -> None:
        self.seen = {p: proc_cpu(p) for p in self.pids()}

    def cpu(self) -> float:
        """CPU since `start` of the backends alive now (new ones count from zero)."""
        return sum(proc_cpu(p) - self.seen.get(p, 0.0) for p in self.pids())


def dsn_of(url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def p99(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(0.99 * len(s)))]


def ms(xs: list[float]) -> str:
    return (f"median {statistics.median(xs) * 1e3:.2f} ms, p99 {p99(xs) * 1e3:.2f} ms, "
            f"max {max(xs) * 1e3:.2f} ms ({len(xs)} calls)")


# ---- phases ----------------------------------------------------------------------------------


def phase_import(args: argparse.Namespace, state: dict[str, Any]) -> None:
    from shieldwall.ingest.runner import import_file
    from shieldwall.node import member_identity as producer
    from shieldwall.store import Query, Store

    store = Store.open(args.db_url)
    backends = Backends(dsn_of(args.db_url))
    sample: list[str] = state.setdefault("sample", [])
    runs: list[dict[str, Any]] = state.setdefault("import", [])
    done = store.count(Query())  # after a fill, the import goes on from there
    rng = random.Random(f"import-{done}")  # ids never those of an earlier import
    # what the first sightings and relationships refer to, when the stream starts mid-ten
    recent = [r.id for r in store.query(Query(types=["indicator"], limit=100)).rows]
    every = max(1, args.n // 20_000)
    bundle = args.work / "bundle.json"
    t_all = time.perf_counter()
    while done < args.n:
        n = min(100_000 if done == 0 else args.bundle, args.n - done)
        t = time.perf_counter()
        write_bundle(bundle, done, n, rng, recent, sample, every)
        made = time.perf_counter() - t
        backends.start()
        c0, la = _own_cpu(), os.getloadavg()[0]
        t = time.perf_counter()
        rep = import_file(store, bundle, source="bench", producer=producer("bench"),
                          default_tlp=TLP.AMBER)
        wall = time.perf_counter() - t
        cpu, pg = _own_cpu() - c0, backends.cpu()
        assert rep.stored == n and not rep.rejected, (rep.stored, rep.rejected[:3])
        done += n
        run = {"at": done, "objects": n, "wall_s": round(wall, 2), "rate": round(n / wall),
               "cpu_us": round(cpu / n * 1e6, 1), "pg_cpu_us": round(pg / n * 1e6, 1),
               "load": f"{la:.1f}/{os.getloadavg()[0]:.1f}", "bundle_mb":
               round(bundle.stat().st_size / 1e6), "generate_s": round(made, 1)}
        runs.append(run)
        print(f"  {done:>11,}: {run['rate']:,} objects/s, {wall:.1f} s; CPU {run['cpu_us']} "
              f"us/object (importer + worker), PostgreSQL backends {run['pg_cpu_us']} us; "
              f"load {run['load']}", flush=True)
        bundle.unlink()
        save(args, state)
    state["import_wall_s"] = round(time.perf_counter() - t_all, 1)
    store.close()


def _uuid_sql(prefix: str, expr: str) -> str:
    """A v4-shaped UUID text derived from `expr` (the same text for the same number)."""
    return (f"overlay(overlay(md5('{prefix}' || ({expr})) placing '4' from 13) placing '8' "
            f"from 17)::uuid::text")


def _fill_sql() -> str:
    ind = "'indicator--' || " + _uuid_sql("i", "{}")
    j = "(g / 10 * 8 + g % 10)"
    member = "'identity--' || " + _uuid_sql("m", "g % 30")
    q = "''"  # a quote inside the SQL literal
    return f"""
    INSERT INTO objects (id, type, spec_version, version_us, date_added_us, is_latest, revoked,
                         tlp, created_by_ref, name, source, channel, collection, json)
    SELECT x.id, x.type, '2.1', 1704067200000000, %(base)s + g - %(lo)s, true, false, 1,
           x.creator, x.name, 'bench', 'import', NULL, x.json
    FROM generate_series(%(lo)s, %(hi)s - 1) AS g, LATERAL (SELECT
      CASE WHEN g % 10 < 8 THEN {ind.format('g')}
           WHEN g % 10 = 8 THEN 'sighting--' || {_uuid_sql('s', 'g')}
           ELSE 'relationship--' || {_uuid_sql('r', 'g')} END AS id,
      CASE WHEN g % 10 < 8 THEN 'indicator' WHEN g % 10 = 8 THEN 'sighting'
           ELSE 'relationship' END AS type,
      CASE WHEN g % 10 = 8 THEN {member} END AS creator,
      CASE WHEN g % 10 < 8 THEN 'shared indicator ' || {j} END AS name,
      CASE WHEN g % 10 < 8 THEN
        '{{"created":"{TS}","id":"' || {ind.format('g')} || '","indicator_types":'
        || '["malicious-activity"],"modified":"{TS}","name":"shared indicator ' || {j}
        || '","object_marking_refs":["{GREEN}"],"pattern":"[' || CASE {j} % 4
          WHEN 0 THEN 'ipv4-addr:value = {q}10.' || ({j} >> 16 & 255) || '.'
                      || ({j} >> 8 & 255) || '.' || ({j} & 255) || '{q}'
          WHEN 1 THEN 'domain-name:value = {q}host' || {j} || '.example-c2.net{q}'
          WHEN 2 THEN 'url:value = {q}http://bad' || {j} || '.example.org/payload/' || {j}
                      || '.bin{q}'
          ELSE 'file:hashes.{q}SHA-256{q} = {q}' || lpad(to_hex({j}), 64, '0') || '{q}' END
        || ']","pattern_type":"stix","spec_version":"2.1","type":"indicator",'
        || '"valid_from":"2024-01-01T00:00:00Z"}}'
      WHEN g % 10 = 8 THEN
        '{{"count":' || (1 + g % 20) || ',"created":"{TS}","created_by_ref":"' || {member}
        || '","first_seen":"{TS}","id":"sighting--' || {_uuid_sql('s', 'g')}
        || '","last_seen":"{TS}","modified":"{TS}","object_marking_refs":["{GREEN}"],'
        || '"sighting_of_ref":"' || {ind.format('g - 1')} || '","spec_version":"2.1",'
        || '"type":"sighting","where_sighted_refs":["' || {member} || '"]}}'
      ELSE
        '{{"created":"{TS}","id":"relationship--' || {_uuid_sql('r', 'g')}
        || '","modified":"{TS}","object_marking_refs":["{GREEN}"],'
        || '"relationship_type":"related-to","source_ref":"' || {ind.format('g - 2')}
        || '","spec_version":"2.1","target_ref":"' || {ind.format('g - 5')}
        || '","type":"relationship"}}' END AS json) AS x
    """.replace(" % ", " %% ")  # a modulo, not a parameter


def phase_fill(args: argparse.Namespace, state: dict[str, Any]) -> None:
    """Fill the store to `--fill` rows inside PostgreSQL (`INSERT ... SELECT`), rows shaped
    as the import writes them (the same mix, canonical JSON, the same columns): ten million
    objects through the import would take hours on a busy two-core machine, and what is
    measured at that size is the import of the next bundle and the reads, not the filling."""
    import psycopg

    sql = _fill_sql()
    with psycopg.connect(dsn_of(args.db_url)) as conn:
        have = int(conn.execute("SELECT count(*) FROM objects").fetchone()[0])
        conn.commit()
        t_all = time.perf_counter()
        while have < args.fill:
            n = min(500_000, args.fill - have)
            t = time.perf_counter()
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (0x5348_4C44,))
            base = int(conn.execute("SELECT coalesce(max(date_added_us), 0) + 1 FROM objects"
                                    ).fetchone()[0])
            conn.execute(sql, {"base": base, "lo": have, "hi": have + n})
            conn.commit()
            have += n
            print(f"  filled to {have:>11,}: {n / (time.perf_counter() - t):,.0f} rows/s; "
                  f"load {load()}", flush=True)
        state["fill"] = {"rows": have, "wall_s": round(time.perf_counter() - t_all, 1)}


def phase_analyze(args: argparse.Namespace, state: dict[str, Any]) -> None:
    import psycopg

    with psycopg.connect(dsn_of(args.db_url), autocommit=True) as conn:
        t = time.perf_counter()
        conn.execute("ANALYZE")
        state["analyze_s"] = round(time.perf_counter() - t, 1)
        rows = conn.execute(
            "SELECT count(*), pg_total_relation_size('objects'), pg_database_size("
            "current_database()) FROM objects").fetchone()
        state["stored"], state["objects_bytes"], state["db_bytes"] = rows
    print(f"  ANALYZE {state['analyze_s']} s; {state['stored']:,} rows; objects table with "
          f"indexes {state['objects_bytes'] / 2**30:.2f} GiB, database "
          f"{state['db_bytes'] / 2**30:.2f} GiB", flush=True)


def sample_ids(fetch: Any, k: int) -> list[str]:
    """`k` ids of stored objects from blocks all over the table (so at every depth)."""
    rows = fetch("SELECT id FROM objects TABLESAMPLE SYSTEM (0.2) REPEATABLE (7)")
    return random.Random(9).sample([r[0] for r in rows], min(k, len(rows)))


def phase_store(args: argparse.Namespace, state: dict[str, Any]) -> None:
    from shieldwall.store import Query, Store

    store = Store.open(args.db_url, migrate=False)
    rng = random.Random(3)
    ids = sample_ids(lambda sql: store._fetch(sql, []), 1_000)
    lo, hi = store._fetch("SELECT min(seq), max(seq) FROM objects", [])[0]
    for oid in ids[:20]:
        store.get(oid)  # warm the pool
    c0, la = time.process_time(), load()
    by_id = []
    for oid in ids:
        t = time.perf_counter()
        row = store.get(oid)
        by_id.append(time.perf_counter() - t)
        assert row is not None and row.id == oid
    pages = []
    for _ in range(300):
        after = rng.randrange(lo - 1, hi - 1_000)
        t = time.perf_counter()
        page = store.query(Query(after_seq=after, limit=1_000))
        pages.append(time.perf_counter() - t)
        assert len(page.rows) == 1_000
    state["store"] = {"get_p50_ms": statistics.median(by_id) * 1e3, "get_p99_ms":
                      p99(by_id) * 1e3, "page_p50_ms": statistics.median(pages) * 1e3,
                      "page_p99_ms": p99(pages) * 1e3, "cpu_s": time.process_time() - c0,
                      "load": f"{la} -> {load()}"}
    print(f"  Store.get: {ms(by_id)}\n  Store.query page of 1,000 after a random seq: "
          f"{ms(pages)}; load {state['store']['load']}", flush=True)
    store.close()


def phase_search(args: argparse.Namespace, state: dict[str, Any]) -> None:
    """`Store.search` (what the dashboard's search box and `shieldwall search` call) for a
    stored IPv4 and a SHA-256 written in upper case: found, and how long it takes."""
    from shieldwall.store import Store

    store = Store.open(args.db_url, migrate=False)
    out = {}
    for label, value, want in (("ipv4", "10.0.3.32", "shared indicator 800"),
                               ("sha256-upper", f"{1_000_003:064X}",
                                "shared indicator 1000003")):
        t = time.perf_counter()
        rows = store.search(value, limit=10)
        out[label] = {"s": round(time.perf_counter() - t, 2), "found": [r.name for r in rows]}
        assert want in out[label]["found"], out[label]
        print(f"  search {value}: {out[label]['s']} s, {len(rows)} found; load {load()}",
              flush=True)
    state["search"] = out
    store.close()


class Server:
    def __init__(self, home: Path, log: Path) -> None:
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "shieldwall"), "serve", "--home", str(home), "--port", "0",
                 "--rate-limit", "0", "--no-federate"],
                stdout=subprocess.DEVNULL, stderr=out)
        deadline, self.url = time.monotonic() + 120, ""
        while not self.url and time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(r"on (http://[\d.]+:\d+)/", log.read_text(errors="replace"))
            self.url = m.group(1) if m else ""
            time.sleep(0.1)
        assert self.url, "shieldwall serve did not start: " + log.read_text()[-2000:]

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def node_home(args: argparse.Namespace) -> tuple[Path, str]:
    """A node home on the bench's database, with a reader member; the retro-hunt of
    arrivals is told the stored indicators were looked at (this home keeps no telemetry)."""
    from shieldwall.config import init_home
    from shieldwall.policy import Members
    from shieldwall.store import Store

    home = args.work / "home"
    if not (home / "bench-token").exists():
        init_home(home, "bench-node", database_url=args.db_url)
        store = Store.open(args.db_url)
        (home / "bench-token").write_text(Members(store.engine).add("reader", "ally"))
        store.close()
    store = Store.open(args.db_url, migrate=False)
    store.kv_set("retro-arrivals", str(store.newest_seq()))
    store.close()
    return home, (home / "bench-token").read_text()


_WALKER = r"""
import json, resource, sys, time
from taxii2client.v21 import Collection, as_pages
url, token, after = sys.argv[1:4]
most, page = int(sys.argv[4]), int(sys.argv[5])
coll = Collection(url, user="reader", password=token)
kw = {"added_after": after} if after != "-" else {}
n, pages, t0 = 0, [], time.perf_counter()
t = t0
for env in as_pages(coll.get_objects, per_request=page, **kw):
    n += len(env.get("objects", []))
    now = time.perf_counter(); pages.append(now - t); t = now
    if n >= most:
        break
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"objects": n, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
                  "pages": pages}))
"""


def walk(colls: list[str], token: str, starts: list[tuple[str, int]], page: int
         ) -> list[dict[str, Any]]:
    """One walker process per (added_after, at most) in `starts`, the k-th on colls[k]."""
    procs = [subprocess.Popen([sys.executable, "-c", _WALKER, colls[k % len(colls)], token,
                               after, str(most), str(page)], stdout=subprocess.PIPE, text=True)
             for k, (after, most) in enumerate(starts)]
    out = []
    for p in procs:
        text, _ = p.communicate()
        assert p.returncode == 0, text
        out.append(json.loads(text.strip().splitlines()[-1]))
    return out


def phase_taxii(args: argparse.Namespace, state: dict[str, Any]) -> None:
    from shieldwall.stix.timestamps import format_ts

    home, token = node_home(args)
    backends = Backends(dsn_of(args.db_url))
    total = int(backends.conn.execute("SELECT count(*) FROM objects").fetchone()[0])
    rng = random.Random(5)
    lo, hi = backends.conn.execute("SELECT min(seq), max(seq) FROM objects").fetchone()
    depths = []
    while len(depths) < 300:
        row = backends.conn.execute("SELECT date_added_us FROM objects WHERE seq = %s",
                                    (rng.randrange(lo, hi - 1_000),)).fetchone()
        if row:
            depths.append(format_ts(row[0]))
    mid = backends.conn.execute("SELECT date_added_us FROM objects WHERE seq >= %s "
                                "ORDER BY seq LIMIT 1", ((lo + hi) // 2,)).fetchone()[0]
    before_mid = int(backends.conn.execute(
        "SELECT count(*) FROM objects WHERE date_added_us <= %s", (mid,)).fetchone()[0])
    ids = sample_ids(lambda sql: backends.conn.execute(sql).fetchall(), 1_000)
    results: dict[str, Any] = state.setdefault("taxii", {})
    walks = {"total": total, "mid": format_ts(mid), "before_mid": before_mid}
    for workers in args.workers:
        servers = [Server(home, args.work / f"serve-{workers}-{k}.log") for k in range(workers)]
        try:
            results[str(workers)] = Round(args, servers, token, backends).run(ids, depths, walks)
            save(args, state)
        finally:
            for s in servers:
                s.stop()


class Round:
    """The TAXII measures against one set of server workers."""

    def __init__(self, args: argparse.Namespace, servers: list[Server], token: str,
                 backends: Backends) -> None:
        from taxii2client.v21 import ApiRoot, Collection

        self.args, self.servers, self.token, self.backends = args, servers, token, backends
        self.colls = []
        for s in servers:
            api = ApiRoot(s.url + "/api/", user="reader", password=token)
            self.colls.append(next(c.url for c in api.collections if c.alias == "alliance"))
        self.clients = [Collection(u, user="reader", password=token) for u in self.colls]
        self.r: dict[str, Any] = {}

    def client(self, k: int) -> Any:
        """Requests spread over the workers in turn, as a reverse proxy would."""
        return self.clients[k % len(self.clients)]

    def measured(self, label: str, fn: Any) -> Any:
        self.backends.start()
        s0, c0, la = [s.cpu() for s in self.servers], _own_cpu(), load()
        t = time.perf_counter()
        out = fn()
        self.r[label + "_wall_s"] = round(time.perf_counter() - t, 2)
        self.r[label + "_cpu"] = {
            "servers_s": round(sum(s.cpu() - c for s, c in zip(self.servers, s0, strict=True)),
                               2),
            "clients_s": round(_own_cpu() - c0, 2), "postgres_s": round(self.backends.cpu(), 2),
            "load": f"{la} -> {load()}"}
        return out

    def gets(self, ids: list[str]) -> list[float]:
        lat = []
        for k, oid in enumerate(ids):
            t = time.perf_counter()
            env = self.client(k).get_object(oid)
            lat.append(time.perf_counter() - t)
            assert env["objects"][0]["id"] == oid
        return lat

    def deep(self, depths: list[str]) -> list[float]:
        lat = []
        for k, after in enumerate(depths):
            t = time.perf_counter()
            env = self.client(k).get_objects(added_after=after, limit=1_000)
            lat.append(time.perf_counter() - t)
            assert len(env["objects"]) == 1_000
        return lat

    def run(self, ids: list[str], depths: list[str], walks: dict[str, Any]) -> dict[str, Any]:
        r, workers = self.r, len(self.servers)
        self.gets(ids[:20])  # connections and pools warm
        lat = self.measured("get", lambda: self.gets(ids))
        r["get_p50_ms"], r["get_p99_ms"] = statistics.median(lat) * 1e3, p99(lat) * 1e3
        print(f"  {workers} worker(s), GET /objects/{{id}}/: {ms(lat)}; {r['get_cpu']}",
              flush=True)
        lat = self.measured("page", lambda: self.deep(depths))
        r["page_p50_ms"], r["page_p99_ms"] = statistics.median(lat) * 1e3, p99(lat) * 1e3
        print(f"  {workers} worker(s), page of 1,000 at a random depth: {ms(lat)}; "
              f"{r['page_cpu']}", flush=True)
        if self.args.no_walk:
            return r
        total, half = walks["total"], walks["before_mid"]
        plans = ([("walk1", [("-", total)])] if workers == 1 else []) + [
            ("walk2", [("-", half), (walks["mid"], total - half)])]
        for label, starts in plans:
            got = self.measured(label, lambda s=starts: walk(self.colls, self.token, s,
                                                               self.args.page))
            n = sum(g["objects"] for g in got)
            wall = max(g["wall"] for g in got)
            pg = [x for g in got for x in g["pages"]]
            r[label] = {"objects": n, "rate": round(n / wall),
                        "client_cpu_s": round(sum(g["cpu"] for g in got), 1),
                        "page_p50_ms": statistics.median(pg) * 1e3, "page_p99_ms": p99(pg) * 1e3}
            print(f"  {workers} worker(s), {len(starts)} client(s) paging the whole collection "
                  f"({n:,} objects, pages of {self.args.page:,}): {r[label]['rate']:,} "
                  f"objects/s in {wall:.1f} s; page p50/p99 {r[label]['page_p50_ms']:.1f}/"
                  f"{r[label]['page_p99_ms']:.1f} ms; {r[label + '_cpu']}", flush=True)
            # the first of two walkers stops at the end of the page that reaches half
            assert total <= n < total + self.args.page, (n, total)
        return r


def save(args: argparse.Namespace, state: dict[str, Any]) -> None:
    (args.work / "state.json").write_text(json.dumps(state, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db-url", required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--bundle", type=int, default=500_000)
    ap.add_argument("--page", type=int, default=5_000, help="page size of the walks")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--no-walk", action="store_true")
    ap.add_argument("--fill", type=int, default=0,
                    help="the fill phase brings the store to this many rows")
    ap.add_argument("--phases", default="import,analyze,store,taxii")
    args = ap.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    sf = args.work / "state.json"
    state = json.loads(sf.read_text()) if sf.exists() else {}
    print(f"load average {load()} on {os.cpu_count()} cores; {' '.join(sys.argv)}", flush=True)
    for phase in args.phases.split(","):
        print(f"{phase}:", flush=True)
        globals()[f"phase_{phase}"](args, state)
        save(args, state)
    print(f"load average {load()} at end", flush=True)


if __name__ == "__main__":
    main()
