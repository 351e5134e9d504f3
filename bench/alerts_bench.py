"""Alerts benchmark: sighting recorded -> webhook delivered, and a receiver down then back.

A node's store (SQLite in a temporary home) with one webhook output to a receiver on
127.0.0.1 (http.server, keep-alive, in a process of its own as a SIEM is). The outputs
run as `outputs run` runs them (`Runner.run`: routing polls the store's newest seq every
`poll_seconds`, delivery is its own task), in a thread of this process with its own event
loop; the node's config defaults (poll 0.25 s, backoff 1 s doubling up to 300 s, 8 in flight).

1. Latency: `--sightings` sightings recorded one at a time (`Store.put`, as hunt does),
   `--gap` seconds apart; each timed from just before its put to the receiver reading
   the request (CLOCK_MONOTONIC, one clock for both processes). Run twice in the same
   run: the store without a connection pool, then pooled (as `outputs run` opens it).
2. Outage: the receiver is down (its port closed); `--alerts` sightings are recorded
   (batches of 1,000), `--down` seconds pass, the receiver comes back on the same port;
   timed until the outbox is drained. Checked: every alert delivered, none twice by
   idempotency key, outbox depth 0.

    .venv/bin/python -m bench.alerts_bench --sightings 300 --alerts 10000 --down 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from shieldwall.outputs.alerts import Audience, Router
from shieldwall.outputs.config import OutputsConfig, TargetConfig
from shieldwall.outputs.outbox import Outbox
from shieldwall.outputs.runner import Runner, make_sender
from shieldwall.policy import Member, member_identity_id
from shieldwall.store import Provenance, Store
from shieldwall.taxii.app import access_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.factories import indicator
from tests.outputs.helpers import SECRET, sighting

_RECEIVER = r"""
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
out = open(sys.argv[2], "a", buffering=1)
lock = threading.Lock()

class Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a SIEM's collector would

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        at = time.monotonic()
        alert = json.loads(body)
        with lock:
            out.write(f"{at!r} {self.headers['Idempotency-Key']} {alert['object']['id']}\n")
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
"""


class Receiver:
    """The webhook receiver in a process of its own (as a SIEM is): one line per request,
    `monotonic key object-id` (CLOCK_MONOTONIC is one clock for every process here)."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self.proc = subprocess.Popen([sys.executable, "-c", _RECEIVER, str(self.port),
                                      str(self.log)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            time.sleep(0.05)
        raise RuntimeError("the receiver did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def lines(self) -> list[tuple[float, str, str]]:
        if not self.log.exists():
            return []
        rows = [line.split() for line in self.log.read_text().splitlines()]
        return [(float(r[0]), r[1], r[2]) for r in rows if len(r) == 3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _runner(store: Store, url: str, secret: Path) -> tuple[Runner, threading.Thread,
                                                            asyncio.AbstractEventLoop,
                                                            asyncio.Event]:
    secret.write_bytes(SECRET)
    target = TargetConfig(name="siem", type="webhook", url=url, secret_file=str(secret))
    cfg = OutputsConfig(targets=[target])
    aud = Audience("siem", "cert-a", member_identity_id("cert-a"),
                   access_for(Member("cert-a", "ally")), frozenset({"sighting"}))
    router = Router(store, [aud], node_member="cert-a")
    router.route()  # the output starts at the head
    runner = Runner(router, [target], {"siem": make_sender(target)}, cfg)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.run(stop))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return runner, thread, loop, stop


def latency(n: int, gap: float, pooled: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'node.db'}", pooled=pooled)
        ind = indicator(created_by_ref=member_identity_id("cert-a"))
        store.put(ind, Provenance("cert-a"))
        rec = Receiver(_free_port(), Path(tmp) / "received").start()
        _, thread, loop, stop = _runner(store, rec.url, Path(tmp) / "secret")
        sent: dict[str, float] = {}
        for _ in range(n):
            s = sighting("cert-a", ind["id"])
            sent[s["id"]] = time.monotonic()
            store.put(s, Provenance("cert-a", "detect"))
            time.sleep(gap)
        deadline = time.monotonic() + 60
        while len(rec.lines()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        arrived = {oid: at for at, _, oid in rec.lines()}
        rec.stop()
        store.close()
    delays = sorted(arrived[i] - t for i, t in sent.items() if i in arrived)
    return {"pooled": pooled, "sent": n, "delivered": len(delays),
            "median_s": statistics.median(delays),
            "p95_s": delays[int(0.95 * (len(delays) - 1))], "max_s": delays[-1]}


def outage(n: int, down: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'node.db'}", pooled=True)
        ind = indicator(created_by_ref=member_identity_id("cert-a"))
        store.put(ind, Provenance("cert-a"))
        port = _free_port()  # down: nothing listens on the port
        url = f"http://127.0.0.1:{port}/hook"
        _, thread, loop, stop = _runner(store, url, Path(tmp) / "secret")
        t0 = time.monotonic()
        for start in range(0, n, 1_000):
            store.put_many([sighting("cert-a", ind["id"]) for _ in range(min(1_000, n - start))],
                           Provenance("cert-a", "detect"))
        recorded = time.monotonic() - t0
        box = Outbox(store)
        time.sleep(max(0.0, down - (time.monotonic() - t0)))
        waiting = sum(box.depth().values())
        rec = Receiver(port, Path(tmp) / "received").start()
        up, cpu = time.monotonic(), time.process_time()
        while sum(box.depth().values()) and time.monotonic() - up < 900:
            time.sleep(0.2)
        drained, cpu = time.monotonic() - up, time.process_time() - cpu
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        keys = [key for _, key, _ in rec.lines()]
        depth = sum(box.depth().values())
        attempts = _max_attempts(store)
        rec.stop()
        store.close()
    return {"alerts": n, "recorded_s": round(recorded, 2), "down_s": down,
            "waiting_when_up": waiting, "drained_after_up_s": round(drained, 1),
            "cpu_after_up_s": round(cpu, 1),  # this process: routing, outbox, HTTP client
            "delivered": len(set(keys)), "requests": len(keys),
            "delivered_twice": len(keys) - len(set(keys)), "outbox_depth": depth,
            "max_attempts": attempts}


def _max_attempts(store: Store) -> int:
    from sqlalchemy import func, select

    from shieldwall.outputs.outbox import alert_outbox

    with store.engine.connect() as conn:
        return int(conn.execute(select(func.max(alert_outbox.c.attempts))).scalar() or 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sightings", type=int, default=300)
    ap.add_argument("--gap", type=float, default=0.02)
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--down", type=float, default=60.0)
    args = ap.parse_args()
    for pooled in (False, True) if args.sightings else ():
        print("latency", orjson.dumps(latency(args.sightings, args.gap, pooled)).decode(),
              flush=True)
    if args.alerts:
        print("outage", orjson.dumps(outage(args.alerts, args.down)).decode(), flush=True)


if __name__ == "__main__":
    main()
