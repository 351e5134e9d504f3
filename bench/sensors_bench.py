"""Sensor exports and sensor alerts: export time, incremental export, alert lines read.

    .venv/bin/python bench/sensors_bench.py --indicators 1000000 --changes 1000 \
        --alert-lines 1000000

1. Builds a SQLite store of `--indicators` active indicators (half IPv4 addresses, a quarter
   domain names, 10% http URLs, 10% SHA-256 file hashes, 5% networks and domain suffixes; the
   URLs, networks and suffixes are one Suricata rule each, with a sid from the store).
2. In a fresh process (so its peak RSS is the export's own): exports them to Zeek, Suricata
   and RPZ (`Exporter.run`), then stores `--changes` changes (a third new versions, a third
   revocations, a third new indicators) and exports again (incremental).
3. Writes `--alert-lines` Suricata EVE alert lines and as many Zeek intel.log lines naming
   exported indicators (1,000 of them, round robin) and times `SensorHunter.run` over each
   file: alert lines read into sightings per second (median of `--runs`).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

MEMBER = "identity--00000000-0000-4000-8000-000000000001"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _indicator(i: int, rng: random.Random) -> dict[str, Any]:
    r = i % 20
    if r < 10:
        pattern = (f"[ipv4-addr:value = '{rng.randrange(1, 224)}.{rng.randrange(256)}."
                   f"{rng.randrange(256)}.{rng.randrange(1, 255)}']")
    elif r < 15:
        pattern = f"[domain-name:value = 'h{i}.example{rng.randrange(1000)}.com']"
    elif r < 17:
        pattern = f"[url:value = 'http://u{i}.example.net/p/{rng.getrandbits(40):x}.php']"
    elif r < 19:
        pattern = f"[file:hashes.'SHA-256' = '{rng.getrandbits(256):064x}']"
    elif i % 40 == 19:
        pattern = f"[ipv4-addr:value = '10.{rng.randrange(256)}.{rng.randrange(256)}.0/24']"
    else:
        pattern = f"[domain-name:value LIKE '%.s{i}.example.org']"
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{_uuid(rng)}",
            "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
            "name": f"bench {i}", "pattern": pattern, "pattern_type": "stix",
            "valid_from": "2025-01-01T00:00:00Z",
            "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}


def build(db: Path, n: int) -> list[str]:
    from shieldwall.store import Provenance, Store

    store = Store.open(f"sqlite:///{db}")
    rng = random.Random(7)
    t = time.perf_counter()
    ids: list[str] = []

    def gen() -> Any:
        for i in range(n):
            obj = _indicator(i, rng)
            ids.append(obj["id"])
            yield obj

    store.put_many(gen(), Provenance("estonia"), batch_size=10_000)
    print(f"built store: {n:,} indicators in {time.perf_counter() - t:.1f} s")
    store.close()
    return ids


def export_phase(db: Path, out: Path, changes: int) -> None:
    from shieldwall.outputs.sensors.export import Exporter, Targets
    from shieldwall.store import Provenance, Query, Store

    store = Store.open(f"sqlite:///{db}")
    ex = Exporter(store, Targets(out / "zeek", out / "suricata", out / "zone.rpz"))
    t, c = time.perf_counter(), time.process_time()
    report = ex.run()
    full, full_cpu = time.perf_counter() - t, time.process_time() - c
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sizes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    print(f"full export: {full:.1f} s ({full_cpu:.1f} s CPU); exported {report.exported}; "
          f"skipped {report.skipped}; "
          f"{len(report.written)} files, {sizes:.0f} MB; peak RSS {rss:.0f} MB; "
          f"load average {os.getloadavg()[0]:.1f}")
    rng = random.Random(11)
    rows = store.query(Query(types=["indicator"], limit=changes)).rows
    objs = []
    third = changes // 3
    for k, row in enumerate(rows[: 2 * third]):
        obj = row.obj() | {"modified": "2025-02-01T00:00:00.000Z"}
        if k < third:
            obj["name"] = obj["name"] + " v2"
        else:
            obj["revoked"] = True
        objs.append(obj)
    objs += [_indicator(10_000_000 + k, rng) for k in range(changes - len(objs))]
    store.put_many(objs, Provenance("estonia"))
    t, c = time.perf_counter(), time.process_time()
    report = ex.run()
    inc, inc_cpu = time.perf_counter() - t, time.process_time() - c
    print(f"incremental export after {changes:,} changes: {inc:.2f} s ({inc_cpu:.2f} s CPU); "
          f"{len(report.written)} files rewritten; load average {os.getloadavg()[0]:.1f}")
    store.close()


def alerts_phase(db: Path, tmp: Path, lines: int, runs: int) -> None:
    from shieldwall.detect.index import IndicatorIndex
    from shieldwall.detect.sensor_hunt import SensorHunter
    from shieldwall.detect.sightings import Sightings
    from shieldwall.stix.markings import TLP
    from shieldwall.store import Query, Store

    store = Store.open(f"sqlite:///{db}")
    objs = [r.obj() for r in store.query(Query(types=["indicator"], limit=1_000)).rows]
    store.close()
    index = IndicatorIndex()
    index.add_many(objs)
    ids = [o["id"] for o in objs]
    eve = tmp / "eve.json"
    with open(eve, "wb") as fh:
        for k in range(lines):
            iid = ids[k % len(ids)]
            fh.write(orjson.dumps({
                "timestamp": f"2025-06-15T10:{k // 60000 % 60:02d}:{k // 1000 % 60:02d}."
                             f"{k % 1000:03d}000+0000",
                "flow_id": 1843300981236541 + k, "in_iface": "eth0", "event_type": "alert",
                "src_ip": "10.20.1.15", "src_port": 49822, "dest_ip": "203.0.113.66",
                "dest_port": 80, "proto": "TCP",
                "alert": {"action": "allowed", "gid": 1, "signature_id": 1_000_100 + k % 1000,
                          "rev": 1, "signature": "SHIELDWALL URL bench",
                          "category": "", "severity": 3,
                          "metadata": {"shieldwall_id": [iid], "tlp": ["green"]}},
                "app_proto": "http"}) + b"\n")
    intel = tmp / "intel.log"
    with open(intel, "w") as fh:
        fh.write("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n"
                 "#unset_field\t-\n#path\tintel\n#open\t2025-06-15-10-00-00\n"
                 "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tseen.indicator"
                 "\tseen.indicator_type\tseen.where\tseen.node\tmatched\tsources\tfuid"
                 "\tfile_mime_type\tfile_desc\n#types\ttime\tstring\taddr\tport\taddr\tport"
                 "\tstring\tenum\tenum\tstring\tset[enum]\tset[string]\tstring\tstring\tstring\n")
        for k in range(lines):
            fh.write(f"{1718444400 + k // 1000}.{k % 1000:06d}\tC{k}\t10.20.1.15\t49822\t"
                     f"203.0.113.66\t80\tx{k % 1000}.example\tIntel::DOMAIN\tDNS::IN_REQUEST\t"
                     f"zeek\tIntel::DOMAIN\t{ids[k % len(ids)]}\t-\t-\t-\n")
    for name, path in (("suricata eve alerts", eve), ("zeek intel.log", intel)):
        rates, cpu_rates = [], []
        for _ in range(runs):
            hunter = SensorHunter(index, Sightings(MEMBER, TLP.AMBER))
            t, c = time.perf_counter(), time.process_time()
            hunter.run([path])
            objs_out = hunter.objects()
            el, cpu = time.perf_counter() - t, time.process_time() - c
            assert hunter.sensor_hits == lines, (hunter.sensor_hits, lines)
            rates.append(lines / el)
            cpu_rates.append(lines / cpu)
        n_sightings = sum(o["type"] == "sighting" for o in objs_out)
        print(f"{name}: {lines:,} lines -> {n_sightings:,} sightings; median "
              f"{statistics.median(rates):,.0f} lines/s over {runs} runs "
              f"({', '.join(f'{r:,.0f}' for r in rates)}); per CPU second "
              f"{statistics.median(cpu_rates):,.0f}; load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--indicators", type=int, default=100_000)
    ap.add_argument("--changes", type=int, default=1_000)
    ap.add_argument("--alert-lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--phase", choices=["export"], help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase == "export":
        export_phase(args.db, args.out, args.changes)
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        db = tmp / "store.db"
        build(db, args.indicators)
        subprocess.run([sys.executable, __file__, "--phase", "export", "--db", str(db),
                        "--out", str(tmp / "out"), "--changes", str(args.changes)],
                       check=True)
        if args.alert_lines:
            alerts_phase(db, tmp, args.alert_lines, args.runs)


if __name__ == "__main__":
    main()
