"""Sensors' alerts on exported indicators come back as sightings of those indicators.

The sensor lines are made in the exact shape real ones have: Zeek's own btest baselines for
intel.log and notice.log (Intel::Notice), with btest's masked time put back and `source1`
replaced by the id the exported Intel file gave as `meta.source`; Suricata EVE alerts shaped as
suricata-verify's eve-alert-metadata check (`alert.metadata` maps a key to a list) around an
alert line of tests/data/suricata/eve.json, with the exported rule's sid and metadata.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from shieldwall.detect.index import IndicatorIndex
from shieldwall.detect.sensor_hunt import SensorHunter, SensorWatcher
from shieldwall.detect.sightings import EXPLANATION, Sightings
from shieldwall.outputs.sensors.export import Exporter, Targets
from shieldwall.outputs.sensors.sids import sid_map
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Store
from tests.factories import indicator, sid
from tests.outputs.test_sensor_export import NOW, parse_rules, zeek_records

DATA = Path(__file__).resolve().parents[1] / "data"
ME = "identity--" + "e" * 8 + "-eeee-4eee-8eee-" + "e" * 12
TS = "1718444400.123456"  # 2024-06-15T09:40:00.123456Z, for btest's XXXXXXXXXX.XXXXXX

IP = sid("indicator", "1")
EMAIL = sid("indicator", "2")
FLOW = sid("indicator", "3")
NOTICED = sid("indicator", "4")
URL = sid("indicator", "5")


def ind(pattern: str, oid: str) -> dict[str, Any]:
    obj = indicator(oid=oid, name="sensor test")
    obj["pattern"] = pattern
    return obj


INDICATORS = [
    ind("[ipv4-addr:value = '1.2.3.4']", IP),
    ind("[email-addr:value = 'e@mail.com']", EMAIL),
    ind("[network-traffic:dst_ref.value = '203.0.113.66' AND network-traffic:dst_port = 80 "
        "AND network-traffic:protocols[*] = 'tcp']", FLOW),
    ind("[ipv4-addr:value = '10.0.0.2']", NOTICED),
    ind("[url:value = 'http://evil.example/gate.php']", URL),
]


def setup(store: Store, tmp: Path) -> tuple[SensorHunter, Path]:
    store.put_many(INDICATORS, Provenance("estonia"))
    Exporter(store, Targets(tmp / "zeek", tmp / "suricata")).run(NOW)
    index = IndicatorIndex()
    index.sync(store)
    hunter = SensorHunter(index, Sightings(ME, TLP.AMBER), sids=sid_map(store))
    return hunter, tmp


def intel_log(tmp: Path) -> Path:
    """Zeek's intel.log baseline with our ids as the sources the exported file gave."""
    sources = {r["indicator"]: r["meta.source"]
               for r in zeek_records(tmp / "zeek" / "shieldwall.intel")}
    lines = (DATA / "zeek" / "baseline" / "intel.input-and-match.log").read_text().splitlines()
    out = []
    for line in lines[1:]:  # without btest's own first line
        if not line.startswith("#"):
            f = line.split("\t")
            f[0] = TS
            f[11] = sources[f[6]]  # `sources`: the exported item's meta.source
            line = "\t".join(f)
        out.append(line)
    path = tmp / "intel.log"
    path.write_text("\n".join(out) + "\n")
    return path


def rule_of(tmp: Path, iid: str) -> dict[str, Any]:
    rules = parse_rules(tmp / "suricata" / "shieldwall.rules")
    return next(r for r in rules if f"shieldwall_id {iid}" in r["metadata"])


def eve_alert(rule: dict[str, Any], *, metadata: bool = True) -> bytes:
    """An EVE alert of `rule`: eve.json's alert line, alert.metadata as Suricata logs it."""
    line = next(ln for ln in (DATA / "suricata" / "eve.json").read_bytes().splitlines()
                if b'"event_type":"alert"' in ln)
    rec = orjson.loads(line)
    shape = orjson.loads((DATA / "suricata" / "verify-alert-metadata.eve.json").read_bytes())
    assert isinstance(shape["alert"]["metadata"]["tag"], list)
    meta: dict[str, list[str]] = {}
    for item in rule["metadata"]:
        key, _, value = item.partition(" ")
        meta.setdefault(key, []).append(value)
    rec["alert"] |= {"signature_id": rule["sid"], "rev": rule["rev"],
                     "signature": rule["msg"]}
    if metadata:
        rec["alert"]["metadata"] = meta
    return orjson.dumps(rec)


def sightings_by_indicator(hunter: SensorHunter) -> dict[str, dict[str, Any]]:
    return {o["sighting_of_ref"]: o for o in hunter.objects() if o["type"] == "sighting"}


def test_zeek_intel_hits_become_sightings_explained_by_the_line(store: Store,
                                                                tmp_path: Path) -> None:
    hunter, tmp = setup(store, tmp_path)
    log = intel_log(tmp)
    hunter.run([log])
    got = sightings_by_indicator(hunter)
    assert set(got) == {IP, EMAIL}
    assert got[IP]["count"] == 1 and got[EMAIL]["count"] == 1  # each line once, not twice
    expl = got[IP][EXPLANATION][0]
    assert expl["atom"] == "zeek intel Intel::ADDR at SOMEWHERE" and expl["field"] == "sources"
    assert expl["value"] == "1.2.3.4" and expl["line"] == 10
    assert expl["sensor_line"].split("\t")[11] == IP
    assert got[IP]["first_seen"] == "2024-06-15T09:40:00.123456Z"


def test_intel_lines_of_other_sources_are_matched_by_value(store: Store,
                                                           tmp_path: Path) -> None:
    hunter, tmp = setup(store, tmp_path)
    log = intel_log(tmp)
    log.write_text(log.read_text().replace(IP, "source1"))  # another intel feed's item
    hunter.run([log])
    got = sightings_by_indicator(hunter)
    assert got[IP]["count"] == 1 and "sensor_line" not in got[IP][EXPLANATION][0]
    assert "sensor_line" in got[EMAIL][EXPLANATION][0]


def test_zeek_intel_notices_are_matched_by_their_value(store: Store, tmp_path: Path) -> None:
    hunter, _ = setup(store, tmp_path)
    lines = (DATA / "zeek" / "baseline" / "intel.notice.log").read_text().splitlines()[1:]
    log = tmp_path / "notice.log"
    log.write_text("\n".join(ln.replace("XXXXXXXXXX.XXXXXX", TS) for ln in lines) + "\n")
    hunter.run([log])
    got = sightings_by_indicator(hunter)
    assert set(got) == {NOTICED}  # 10.0.0.2 is exported; .1 and .3 are not indicators here
    assert got[NOTICED]["count"] == 1
    assert got[NOTICED][EXPLANATION][0]["line"] == 10


def test_suricata_alerts_map_back_by_metadata_or_sid(store: Store, tmp_path: Path) -> None:
    hunter, tmp = setup(store, tmp_path)
    flow, url = rule_of(tmp, FLOW), rule_of(tmp, URL)
    eve = tmp / "eve.json"
    eve.write_bytes(b"\n".join([
        eve_alert(url),
        eve_alert(url, metadata=False),  # a sensor logging no metadata: by sid
        eve_alert(flow),
        eve_alert(url).replace(URL.encode(), sid("indicator", "9").encode()),  # not ours
    ]) + b"\n")
    hunter.run([eve])
    got = sightings_by_indicator(hunter)
    # the flow rule's alert is its sighting; the line's 5-tuple is not matched again
    assert got[FLOW]["count"] == 1 and got[URL]["count"] == 2
    fields = sorted(e["field"] for e in got[URL][EXPLANATION])
    assert fields == ["alert.metadata.shieldwall_id", "alert.signature_id"]
    expl = got[FLOW][EXPLANATION][0]
    assert expl["atom"] == f"suricata sid {flow['sid']} rev 1"
    assert orjson.loads(expl["sensor_line"])["alert"]["metadata"]["shieldwall_id"] == [FLOW]
    assert {e["line"] for e in got[URL][EXPLANATION]} == {1, 2}


def test_watch_reads_alerts_as_the_file_grows(store: Store, tmp_path: Path) -> None:
    hunter, tmp = setup(store, tmp_path)
    eve = tmp / "eve.json"
    eve.write_bytes(eve_alert(rule_of(tmp, URL)) + b"\n")
    watcher = SensorWatcher(hunter, eve, from_start=False)
    assert watcher.poll() == 0  # joined at its end: what was there is not read
    with open(eve, "ab") as fh:
        fh.write(eve_alert(rule_of(tmp, FLOW)) + b"\n")
    assert watcher.poll() == 1
    got = sightings_by_indicator(hunter)
    assert set(got) == {FLOW} and got[FLOW][EXPLANATION][0]["line"] == 1


def test_a_sensor_alert_round_trips_into_a_stored_sighting(tmp_path: Path) -> None:
    """The member's way: export for the sensor, hunt its alert log, share the sighting."""
    home = tmp_path / "node"
    env = dict(os.environ, SHIELDWALL_HOME=str(home), COLUMNS="200")

    def sw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "shieldwall.cli.main", *args],
                              capture_output=True, text=True, env=env, timeout=120)

    assert sw("init", "--member", "estonia").returncode == 0
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(orjson.dumps({"type": "bundle", "id": "bundle--" + "1" * 8 + "-1111-4111-"
                                     "8111-" + "1" * 12, "objects": INDICATORS}))
    r = sw("import", str(bundle))
    assert r.returncode == 0, r.stderr
    r = sw("sensors", "export", "--suricata", str(tmp_path / "suricata"),
           "--zeek", str(tmp_path / "zeek"))
    assert r.returncode == 0, r.stderr
    # 10.0.0.2 and the flow's 203.0.113.66 are on warning lists (private, documentation)
    assert "suricata 2 values, zeek 3 values" in r.stderr
    eve = tmp_path / "alerts.json"
    eve.write_bytes(eve_alert(rule_of(tmp_path, URL)) + b"\n")
    started = time.time()
    r = sw("hunt", str(eve), "--json")
    assert r.returncode == 0, r.stderr
    sightings = orjson.loads(r.stdout)
    assert [s["sighting_of_ref"] for s in sightings] == [URL]
    r = sw("export", "--type", "sighting")
    stored = orjson.loads(r.stdout)["objects"]
    mine = [o for o in stored if o["type"] == "sighting"]
    assert len(mine) == 1 and mine[0]["sighting_of_ref"] == URL
    assert mine[0]["created_by_ref"].startswith("identity--")
    assert time.time() - started < 600


def test_a_flood_of_alerts_is_one_sighting_counting_each(store: Store, tmp_path: Path) -> None:
    """Past the first hits of a window (which explain it), alerts are only counted."""
    hunter, tmp = setup(store, tmp_path)
    alert = eve_alert(rule_of(tmp, URL))
    eve = tmp / "alerts.json"
    eve.write_bytes((alert + b"\n") * 25)
    hunter.run([eve])
    got = sightings_by_indicator(hunter)
    assert got[URL]["count"] == 25 and len(got[URL][EXPLANATION]) == 5
    assert hunter.sensor_hits == 25
    report = hunter.files[0]
    assert (report.events, report.hits, report.outcome) == (25, 25, "read")


def test_watch_reads_a_growing_zeek_intel_log(store: Store, tmp_path: Path) -> None:
    hunter, tmp = setup(store, tmp_path)
    full = intel_log(tmp).read_text().splitlines(keepends=True)
    body = [ln for ln in full if not ln.startswith("#")]
    log = tmp / "followed" / "intel.log"
    log.parent.mkdir()
    log.write_text("".join(ln for ln in full if ln.startswith("#fields") or
                           ln.startswith("#types") or ln.startswith("#separator")
                           or ln.startswith("#set_separator") or ln.startswith("#unset")
                           or ln.startswith("#path")) + body[0])
    watcher = SensorWatcher(hunter, log, from_start=True)
    assert watcher.poll() == 1  # the e@mail.com item
    with open(log, "a") as fh:
        fh.write(body[1])
    assert watcher.poll() == 1
    got = sightings_by_indicator(hunter)
    assert set(got) == {EMAIL, IP} and got[IP]["count"] == 1
    assert got[IP][EXPLANATION][0]["line"] == 8  # six header lines, then the two items
