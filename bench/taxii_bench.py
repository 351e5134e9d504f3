"""TAXII 2.1 read/write throughput: Shieldwall against OASIS medallion (memory backend).

Both servers get the same indicators and are driven by the same client (OASIS
taxii2-client, as a member would use it). Medallion runs only at 10,000 objects, each
measure against a freshly started server and each request given `--medallion-wait`
seconds; what does not answer in time is reported as such.

    .venv/bin/python bench/taxii_bench.py                    # 10k (both) and 1M (Shieldwall)
    .venv/bin/python bench/taxii_bench.py --sizes 10000 --no-medallion --repeat 1
    .venv/bin/python bench/taxii_bench.py --data /tmp/taxii-data --json out.json
    .venv/bin/python bench/taxii_bench.py --report a.json b.json   # one table from runs

Each Shieldwall figure is the median of `--repeat` runs, each against a fresh copy of
the loaded store (`--data` keeps the loaded stores between invocations: loading
1,000,000 indicators is not what is measured). Shieldwall is started with
`--rate-limit 0 --no-federate`: the per-member limit (default 200 req/s) would
otherwise be what the concurrent-readers figure measures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from taxii2client.v21 import ApiRoot, Collection, as_pages

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
PAGE = 5_000
TLP_GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"


def indicator(i: int, salt: int = 0) -> dict[str, Any]:
    ts = "2024-01-01T00:00:00.000Z"
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=(salt << 64) | (i + 1), version=4)}",
        "created": ts,
        "modified": ts,
        "name": f"bench indicator {i}",
        "pattern": f"[ipv4-addr:value = '10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}']",
        "pattern_type": "stix",
        "valid_from": ts,
        "object_marking_refs": [TLP_GREEN],
    }


def p99(samples: list[float]) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(0.99 * len(s)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- servers ---------------------------------------------------------------------------------


class Running:
    def __init__(self, proc: subprocess.Popen[bytes], api: str, coll_url: str,
                 auth: tuple[str, str]) -> None:
        self.proc, self.api, self.coll_url, self.auth = proc, api, coll_url, auth

    def collection(self) -> Collection:
        return Collection(self.coll_url, user=self.auth[0], password=self.auth[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def pristine_home(data: Path, n: int) -> tuple[Path, float]:
    """A node home holding `n` indicators and a reader member, built once per `data`
    directory (loading 1,000,000 takes minutes and is not what this bench measures).
    Returns the home and the load rate (0 when it was already there)."""
    from shieldwall.config import init_home
    from shieldwall.policy import Members
    from shieldwall.store import Provenance, Store

    home = data / f"shieldwall-{n}"
    if (home / "bench-token").exists():
        return home, 0.0
    if home.exists():
        shutil.rmtree(home)
    init_home(home, "bench-node")
    store = Store.open(f"sqlite:///{home / 'shieldwall.db'}")
    token = Members(store.engine).add("reader", "ally")
    t0 = time.perf_counter()
    store.put_many((indicator(i) for i in range(n)), Provenance("bench-node", "import"),
                   batch_size=10_000)
    load_rate = n / (time.perf_counter() - t0)
    store.close()
    (home / "bench-token").write_text(token)
    return home, load_rate


def start_shieldwall(data: Path, workdir: Path, n: int) -> tuple[Running, float]:
    """Serve a fresh copy of the pristine home, so that POSTs of earlier runs are not in it."""
    pristine, load_rate = pristine_home(data, n)
    home = workdir / f"shieldwall-{n}"
    if home.exists():
        shutil.rmtree(home)
    shutil.copytree(pristine, home)
    token = (home / "bench-token").read_text()
    # The server's log (an access line per request) goes to a file: draining a pipe
    # here would take the GIL from the client threads being measured.
    log = workdir / f"serve-{n}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "shieldwall"), "serve", "--home", str(home), "--port", "0",
             "--rate-limit", "0", "--no-federate"],
            stdout=subprocess.DEVNULL, stderr=out,
        )
    url = None
    deadline = time.monotonic() + 120
    while url is None and time.monotonic() < deadline and proc.poll() is None:
        m = re.search(r"on (http://[\d.]+:\d+)/", log.read_text(errors="replace"))
        url = m.group(1) if m else None
        time.sleep(0.1)
    assert url, "shieldwall serve did not start: " + log.read_text(errors="replace")[-2000:]
    api = url + "/api/"
    running = Running(proc, api, "", ("reader", token))
    _wait(url + "/healthz")
    colls = ApiRoot(api, user="reader", password=token).collections
    running.coll_url = next(c.url for c in colls if c.alias == "alliance")
    return running, load_rate


def start_medallion(workdir: Path, n: int) -> Running:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cid = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
    objs = [indicator(i) for i in range(n)]
    start = 1_700_000_000_000
    manifest = [
        {"id": o["id"], "date_added": _ms(start + k), "version": o["modified"],
         "media_type": "application/stix+json;version=2.1"}
        for k, o in enumerate(objs)
    ]
    data = {
        "/discovery": {"title": "medallion", "default": f"{base}/api1/",
                       "api_roots": [f"{base}/api1/"]},
        "api1": {
            "information": {"title": "api1", "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 100 * 1024 * 1024},
            "status": [],
            "collections": [{
                "id": cid, "title": "bench", "can_read": True, "can_write": True,
                "media_types": ["application/stix+json;version=2.1"],
                "objects": objs, "manifest": manifest,
            }],
        },
    }
    (workdir / "medallion-data.json").write_text(json.dumps(data))
    config = {
        "backend": {"module": "medallion.backends.memory_backend",
                    "module_class": "MemoryBackend",
                    "filename": str(workdir / "medallion-data.json")},
        "users": {"reader": "secret"},
        "taxii": {"max_page_size": PAGE},
    }
    (workdir / "medallion.json").write_text(json.dumps(config))
    proc = subprocess.Popen(
        [str(BIN / "medallion"), "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "ERROR", str(workdir / "medallion.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    _wait(base + "/taxii2/", auth=("reader", "secret"))
    return Running(proc, base + "/api1/", f"{base}/api1/collections/{cid}/", ("reader", "secret"))


def _ms(ms: int) -> str:
    secs, rest = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{rest:03d}Z"


def _wait(url: str, auth: tuple[str, str] | None = None) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(url, auth=auth, timeout=5,
                      headers={"Accept": "application/taxii+json;version=2.1"})
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} never answered")


# ---- measurements ------------------------------------------------------------------------------


def paging(srv: Running, budget: float) -> float:
    coll = srv.collection()
    n, t0 = 0, time.perf_counter()
    for env in as_pages(coll.get_objects, per_request=PAGE):
        n += len(env.get("objects", []))
        if time.perf_counter() - t0 > budget:
            break
    return n / (time.perf_counter() - t0)


def filtered(srv: Running, ids: list[str], samples: int, budget: float) -> tuple[float, float]:
    coll = srv.collection()
    rng = random.Random(7)
    by_id: list[float] = []
    by_type: list[float] = []
    t_end = time.perf_counter() + budget
    for _ in range(samples):
        t0 = time.perf_counter()
        env = coll.get_objects(id=rng.choice(ids))
        by_id.append(time.perf_counter() - t0)
        assert len(env.get("objects", [])) == 1
        t0 = time.perf_counter()
        env = coll.get_objects(type="indicator", limit=10)
        by_type.append(time.perf_counter() - t0)
        assert len(env.get("objects", [])) == 10
        if time.perf_counter() > t_end:
            break
    return p99(by_id) * 1000, p99(by_type) * 1000


def posting(srv: Running, envelopes: int, salt: int, budget: float) -> float:
    coll = srv.collection()
    # Built before the clock starts: making test objects is not what is measured.
    batches = [[indicator(e * 1000 + i, salt=salt) for i in range(1000)]
               for e in range(envelopes)]
    n, t0 = 0, time.perf_counter()
    for objs in batches:
        status = coll.add_objects({"objects": objs}, wait_for_completion=True,
                                  poll_interval=0.05, timeout=600)
        assert status.status == "complete" and status.success_count == 1000, status
        n += 1000
        if time.perf_counter() - t0 > budget:
            break
    return n / (time.perf_counter() - t0)


def concurrent(srv: Running, ids: list[str], readers: int, seconds: float,
               timeout: float | None = None) -> tuple[float, float, int]:
    """requests/s over the answered requests, p99 latency (`inf` when over 1 % of the
    requests got no answer within `timeout`) and how many requests failed (HTTP errors,
    not counted as answered)."""
    import requests

    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def reader(k: int) -> None:
        coll = srv.collection()
        if timeout:
            coll = _timeout(coll, timeout)
        rng = random.Random(k)
        mine = []
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                if rng.random() < 0.5:
                    coll.get_objects(id=rng.choice(ids))
                else:
                    coll.get_objects(type="indicator", limit=100)
                mine.append(time.perf_counter() - t0)
            except requests.exceptions.Timeout:
                mine.append(float("inf"))
            except requests.exceptions.HTTPError:
                with lock:
                    errors[0] += 1
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(readers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answered = [x for x in lat if x != float("inf")]
    return len(answered) / (time.perf_counter() - t0), p99(lat) * 1000, errors[0]


def _timeout(coll: Collection, seconds: float) -> Collection:
    """The same taxii2-client Collection, its requests abandoned after `seconds` (the
    client has no timeout option; medallion can take far longer than a run can wait)."""
    session = coll._conn.session
    send = session.request
    session.request = lambda *a, **k: send(*a, **{"timeout": seconds, **k})  # type: ignore[method-assign]
    return coll


def measure_medallion(work: Path, n: int, wait: float) -> dict[str, float]:
    """Each measure against a freshly started medallion (an abandoned request keeps it
    busy), every request given at most `wait` seconds. A value of `inf` means no answer
    within `wait` (latencies) or nothing completed (rates are then 0)."""
    import requests

    ids = [indicator(i)["id"] for i in random.Random(1).sample(range(n), min(n, 2000))]
    out: dict[str, float] = {"wait_s": wait}

    def fresh() -> tuple[Running, Collection]:
        srv = start_medallion(work, n)
        return srv, _timeout(srv.collection(), wait)

    def timed(call: Any) -> float:
        t0 = time.perf_counter()
        try:
            call()
        except requests.exceptions.Timeout:
            return float("inf")
        return time.perf_counter() - t0

    srv, coll = fresh()
    try:
        got, t0 = 0, time.perf_counter()
        try:
            for env in as_pages(coll.get_objects, per_request=PAGE):
                got += len(env.get("objects", []))
                if time.perf_counter() - t0 > wait:
                    break
        except requests.exceptions.Timeout:
            pass
        out["paging_obj_s"] = got / (time.perf_counter() - t0)
        out["paging_objects"] = got
    finally:
        srv.stop()
    srv, coll = fresh()
    try:
        lat = [timed(lambda oid=oid: coll.get_objects(id=oid)) for oid in ids[:5]]
        out["get_id_p99_ms"] = max(lat) * 1000
    finally:
        srv.stop()
    srv, coll = fresh()
    try:
        out["get_type_p99_ms"] = timed(lambda: coll.get_objects(type="indicator", limit=10)) * 1000
    finally:
        srv.stop()
    srv, coll = fresh()
    try:
        objs = [indicator(i, salt=7) for i in range(1000)]
        took = timed(lambda: coll.add_objects({"objects": objs}, wait_for_completion=True,
                                              poll_interval=0.05, timeout=int(wait)))
        out["post_obj_s"] = 1000 / took
    finally:
        srv.stop()
    srv, _ = fresh()
    try:
        out["readers16_req_s"], out["readers16_p99_ms"], errors = concurrent(
            srv, ids, 16, 30.0, timeout=30.0)
        out["readers16_errors"] = errors
        out["readers16_wait_s"] = 30.0
    finally:
        srv.stop()
    return out


def measure(srv: Running, n: int, repeat: int, salt: int) -> dict[str, float]:
    ids = [indicator(i)["id"] for i in random.Random(1).sample(range(n), min(n, 2000))]
    budget = 600.0
    runs: list[dict[str, float]] = []
    for r in range(repeat):
        row: dict[str, float] = {}
        row["paging_obj_s"] = paging(srv, budget)
        row["get_id_p99_ms"], row["get_type_p99_ms"] = filtered(srv, ids, 300, budget / 2)
        row["post_obj_s"] = posting(srv, 10, salt * 100 + r + 1, budget)
        row["readers16_req_s"], row["readers16_p99_ms"], errors = concurrent(
            srv, ids, 16, 10.0)
        assert errors == 0, f"{errors} requests failed"
        runs.append(row)
        print(f"    run {r + 1}: " + ", ".join(f"{k}={v:,.1f}" for k, v in row.items()),
              file=sys.stderr, flush=True)
    return {k: statistics.median(run[k] for run in runs) for k in runs[0]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-medallion", action="store_true")
    ap.add_argument("--only-medallion", action="store_true")
    ap.add_argument("--medallion-wait", type=float, default=300.0,
                    help="seconds each medallion request may take before it counts as "
                    "unanswered")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--report", nargs="+", metavar="JSON",
                    help="only print the table of figures saved by earlier --json runs")
    ap.add_argument("--data", help="keep the loaded stores here between runs (default: a "
                    "temporary directory)")
    args = ap.parse_args(argv)
    if args.report:
        merged: dict[str, dict[str, float]] = {}
        for f in args.report:
            merged.update(json.loads(Path(f).read_text()))
        print(report(merged, os.cpu_count() or 0))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="taxii-bench-") as tmp:
        work = Path(tmp)
        data = Path(args.data) if args.data else work / "data"
        data.mkdir(parents=True, exist_ok=True)
        for n in sizes:
            if not args.only_medallion:
                print(f"shieldwall, {n:,} indicators", file=sys.stderr, flush=True)
                srv, load = start_shieldwall(data, work, n)
                try:
                    results[f"shieldwall@{n}"] = measure(srv, n, args.repeat, salt=n)
                finally:
                    srv.stop()
                if load:
                    results[f"shieldwall@{n}"]["load_obj_s"] = load
            if n == 10_000 and not args.no_medallion:
                print(f"medallion, {n:,} indicators", file=sys.stderr, flush=True)
                results[f"medallion@{n}"] = measure_medallion(work, n, args.medallion_wait)
                print(f"    {results[f'medallion@{n}']}", file=sys.stderr, flush=True)
    print(report(results, os.cpu_count() or 0))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def _cell(row: dict[str, float], key: str) -> str:
    if key not in row:
        return "-"
    v, wait = row[key], row.get("wait_s", 0.0)
    if key.startswith("readers16"):
        wait = row.get("readers16_wait_s", wait)
    if v == float("inf"):
        return f"no answer in {wait:,.0f} s"
    if key == "paging_obj_s" and row.get("paging_objects") == 0:
        return f"no page in {wait:,.0f} s"
    if key == "readers16_req_s" and row.get("readers16_errors"):
        return f"{v:,.1f} ({row['readers16_errors']:,.0f} failed with HTTP errors)"
    return f"{v:,.1f}"


def _ratio(s: dict[str, float], m: dict[str, float], key: str, higher: bool) -> str:
    if key not in s or key not in m or not s[key]:
        return ""
    wait = m.get("readers16_wait_s" if key.startswith("readers16") else "wait_s", 0.0)
    mv, bound = m[key], ""
    if mv == float("inf"):  # latency never answered: at least `wait`
        mv, bound = wait * 1000, "> "
    elif higher and not mv:  # nothing completed within `wait`
        if key == "paging_obj_s" and wait:
            mv, bound = PAGE / wait, "> "
        else:
            return ""
    x = s[key] / mv if higher else mv / s[key]
    return f"{bound}{x:,.0f}x"


def report(results: dict[str, dict[str, float]], cpus: int) -> str:
    keys = [("paging_obj_s", "paging, objects/s", True),
            ("get_id_p99_ms", "GET match[id] p99, ms", False),
            ("get_type_p99_ms", "GET match[type]&limit=10 p99, ms", False),
            ("post_obj_s", "POST 1,000-object envelopes, objects/s", True),
            ("readers16_req_s", "16 concurrent readers, requests/s", True),
            ("readers16_p99_ms", "16 concurrent readers p99, ms", False)]
    cols = list(results)
    lines = ["| measure | " + " | ".join(cols) + " | Shieldwall / medallion at 10k |",
             "|---|" + "---:|" * (len(cols) + 1)]
    s, m = results.get("shieldwall@10000"), results.get("medallion@10000")
    for key, label, higher in keys:
        cells = [_cell(results[c], key) for c in cols]
        ratio = _ratio(s, m, key, higher) if s and m else ""
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")
    lines.append(f"\n{cpus} CPUs; Shieldwall: medians of runs; medallion: one fresh server "
                 "per measure, each request given the wait shown.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
