"""Findings protect everyone, timed: a case's finding published on one member's node is
retro-hunted in the telemetry another member's node keeps, and the hit is a sighting stored
there (issue 15: < 5 s end to end).

Two (or more) `shieldwall serve` processes on 127.0.0.1, the federation bench's setup
(`bench.federation_bench._nodes`: SQLite homes, full mesh, push on record; each serve also
runs the retro-hunt of arrivals, `detect.arrivals`, every 2 s when its store grew). Before
timing, the last node (the receiver) keeps an hour of Zeek connections in its telemetry
(`shieldwall hunt --keep`) that contact one new command-and-control address per sample;
nobody knows them yet, so nothing is sighted.

A sample: on node00 (the publisher) a case (its AMBER+STRICT incident) with the sample's
address as an observable (`cases.add_observable`; not timed); then `respond.publish.publish`
at TLP:GREEN (what `shieldwall case publish` runs), timed from the call until the
receiver's store holds a sighting of the new indicator (its own `date_added`; one machine,
one clock). With `--cli` the publish is the `shieldwall case publish` process itself, its
start-up included.

    .venv/bin/python -m bench.respond_publish_bench --samples 10 [--nodes 2] [--cli]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.case_bench import _incident, _load, _p95
from bench.respond_federation_bench import alliance
from shieldwall.policy import Member
from shieldwall.respond.cases import add_observable, load_case
from shieldwall.respond.model import Marking
from shieldwall.respond.publish import publish
from shieldwall.stix.identity import member_identity
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Query, Store
from shieldwall.taxii.app import access_for

SHIELDWALL = str(Path(sys.executable).parent / "shieldwall")

_ZEEK_HEADER = [
    "#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-",
    "#path\tconn", "#open\t2026-12-06-10-00-00",
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t"
    "orig_bytes\tresp_bytes\tconn_state\tlocal_orig\tmissed_bytes\thistory\torig_pkts\t"
    "orig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents",
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\t"
    "string\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]"]


def c2(k: int) -> str:
    return f"203.0.113.{k + 1}"


def zeek_conn(path: Path, samples: int, rows: int = 2_000) -> Path:
    """The last hour's connections: `rows` to ordinary addresses, one to each C2."""
    now = time.time()
    lines = []
    for i in range(rows + samples):
        resp = c2(i - rows) if i >= rows else f"198.51.{100 + i // 250 % 4}.{i % 250 + 1}"
        lines.append(f"{now - 3_000 + i * 1.0:.6f}\tC{i:017d}\t10.1.{i // 250 % 250}."
                     f"{i % 250 + 2}\t{49152 + i % 10_000}\t{resp}\t443\ttcp\tssl\t1.0\t100\t"
                     "200\tSF\t-\t0\tShADadFf\t5\t300\t5\t400\t(empty)")
    path.write_text("\n".join([*_ZEEK_HEADER, *lines, "#close\t2026-12-06-11-00-00"]) + "\n")
    return path


def _sighted(store: Store, indicator_id: str) -> float | None:
    for row in store.iter_query(Query(types=["sighting"])):
        if row.obj().get("sighting_of_ref") == indicator_id:
            return row.date_added_us / 1e6
    return None


def run(n: int, samples: int, cli: bool) -> tuple[list[float], list[float]]:
    """(publish -> the indicator stored on the receiver, publish -> its sighting there)."""
    with tempfile.TemporaryDirectory() as tmp, \
            alliance(Path(tmp), n, (0, n - 1)) as (homes, stores):
        publisher, receiver = homes[0], homes[-1]
        subprocess.run([SHIELDWALL, "hunt", str(zeek_conn(Path(tmp) / "conn.log", samples)),
                        "--home", str(receiver)], check=True, capture_output=True,
                       timeout=600)
        member = publisher.name
        access = access_for(Member(member, "ally"))
        identity = member_identity(member)
        assert _sighted(stores[1], "") is None
        time.sleep(3)
        arrived, out = [], []
        for k in range(samples):
            inc = _incident(member, Marking(TLP.AMBER_STRICT, (member,)))
            stores[0].put(inc, Provenance(member, "local"))
            add_observable(stores[0], member, load_case(stores[0], inc["id"], access),
                           f"ipv4-addr:{c2(k)}")
            case = load_case(stores[0], inc["id"], access)
            t0 = time.time()
            if cli:
                subprocess.run([SHIELDWALL, "case", "publish", inc["id"], "--tlp", "green",
                                "--home", str(publisher)], check=True,
                               capture_output=True, timeout=120)
                (ind,) = [r.obj() for r in stores[0].iter_query(Query(types=["indicator"]))
                          if r.obj().get("name") == f"ipv4-addr:{c2(k)}"]
            else:
                (ind,) = publish(stores[0], member, identity, case, tlp=TLP.GREEN).indicators
            while (at := _sighted(stores[1], ind["id"])) is None:
                if time.time() - t0 > 120:
                    raise SystemExit(f"no sighting of {c2(k)} on {receiver.name}")
                time.sleep(0.05)
            got = stores[1].get(ind["id"])
            assert got is not None
            arrived.append(got.date_added_us / 1e6 - t0)
            out.append(at - t0)
            time.sleep(0.5)
        return arrived, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--cli", action="store_true", help="Publish with the CLI process.")
    a = ap.parse_args()
    print(f"load average before: {_load()}", flush=True)
    arrived, lat = run(a.nodes, a.samples, a.cli)
    how = "`shieldwall case publish` (process)" if a.cli else "publish()"
    for what, xs in (("the indicator stored", arrived), ("its retro-hunt sighting stored", lat)):
        print(f"{how} on node00 -> {what} on node{a.nodes - 1:02d} ({a.nodes} nodes, "
              f"{len(xs)} samples): median {statistics.median(xs) * 1000:.0f} ms, "
              f"p95 {_p95(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms "
              f"(load average {_load()})", flush=True)


if __name__ == "__main__":
    main()
