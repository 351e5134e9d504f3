"""The exported Suricata rules and datasets in the real engine (Suricata 7, installed by
scripts/ensure-test-deps.sh from Debian's bookworm-backports).

The engine loads every exported rule (`suricata -T`, then its engine analysis names each
loaded rule), hostile shared values included; and traffic to exported indicators, written
as a pcap and read by `suricata -r`, makes alerts with our sids whose EVE log, read back by
the hunt, makes sightings of those indicators.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from shieldwall.detect.index import IndicatorIndex
from shieldwall.detect.sensor_hunt import SensorHunter
from shieldwall.detect.sightings import EXPLANATION, Sightings
from shieldwall.outputs.sensors import suricata as sur
from shieldwall.outputs.sensors.export import Exporter, Targets
from shieldwall.outputs.sensors.sids import sid_map
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Store
from tests.factories import sid
from tests.outputs.pcap import SYN, Capture, dns_query, tcp, udp
from tests.outputs.test_sensor_export import INDICATORS, NOW, parse_rules

SURICATA = shutil.which("suricata")
pytestmark = pytest.mark.skipif(
    SURICATA is None,
    reason="suricata is not installed (scripts/ensure-test-deps.sh installs it from Debian's "
           "bookworm-backports when run as root)")
ME = "identity--" + "e" * 8 + "-eeee-4eee-8eee-" + "e" * 12


def config(rules_dir: Path, path: Path, extra: str = "") -> Path:
    """A minimal suricata.yaml: our rule file, EVE alerts, the protocols our rules read."""
    path.write_text(
        "%YAML 1.1\n---\n"
        f"default-rule-path: {rules_dir}\n"
        f"rule-files:\n  - {sur.RULES}\n"
        "outputs:\n  - eve-log:\n      enabled: yes\n      filetype: regular\n"
        "      filename: eve.json\n      types:\n        - alert\n"
        "app-layer:\n  protocols:\n    dns: {udp: {enabled: yes}, tcp: {enabled: yes}}\n"
        "    http: {enabled: yes}\n    tls: {enabled: yes}\n" + extra)
    return path


def engine(*args: str) -> subprocess.CompletedProcess[str]:
    assert SURICATA is not None
    return subprocess.run([SURICATA, *args], capture_output=True, text=True, timeout=300)


def rule_lines(rules: Path) -> list[str]:
    return [ln for ln in rules.read_text().splitlines() if ln and not ln.startswith("#")]


def loaded(rules_dir: Path, work: Path) -> tuple[int, set[int]]:
    """What the engine makes of the rule file: `suricata -T` must pass (exit 0, no rule
    failed); returns the rules it loaded and, from its engine analysis, their sids."""
    work.mkdir(parents=True, exist_ok=True)
    cfg = config(rules_dir, work / "suricata.yaml",
                 "engine-analysis:\n  rules-fast-pattern: no\n  rules: yes\n")
    r = engine("-T", "-c", str(cfg), "-l", str(work))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    m = re.search(r"(\d+) rules successfully loaded, (\d+) rules failed", out)
    assert m is not None, out
    assert m.group(2) == "0", out
    r = engine("--engine-analysis", "-c", str(cfg), "-l", str(work))
    assert r.returncode == 0, r.stdout + r.stderr
    sids = {orjson.loads(ln)["id"] for ln in (work / "rules.json").read_bytes().splitlines()}
    return int(m.group(1)), sids


def test_the_engine_loads_every_exported_rule_and_dataset(store: Store, tmp_path: Path) -> None:
    store.put_many(INDICATORS, Provenance("estonia"))
    report = Exporter(store, Targets(suricata=tmp_path / "suricata")).run(NOW)
    rules = tmp_path / "suricata" / sur.RULES
    lines = rule_lines(rules)
    count, sids = loaded(tmp_path / "suricata", tmp_path / "engine")
    assert count == len(lines)  # every rule we wrote, none refused
    assert sids == {r["sid"] for r in parse_rules(rules)}
    # the indicator rules are the sids the store handed out (URL, network, suffix, flow)
    assert set(sid_map(store)) <= sids and len(sid_map(store)) == 4
    assert report.exported["suricata"] == 10  # 6 dataset and hash list lines, 4 rules


def test_an_empty_export_loads_too(store: Store, tmp_path: Path) -> None:
    """No indicator at all: empty datasets load; empty hash lists get no rule (the engine
    refuses a rule on an empty hash list, and the whole file with it)."""
    Exporter(store, Targets(suricata=tmp_path / "suricata")).run(NOW)
    count, _ = loaded(tmp_path / "suricata", tmp_path / "engine")
    assert count == len(rule_lines(tmp_path / "suricata" / sur.RULES)) == 8
    assert "filesha256" not in (tmp_path / "suricata" / sur.RULES).read_text()


def test_a_hash_list_that_fills_brings_its_rules(store: Store, tmp_path: Path) -> None:
    ex = Exporter(store, Targets(suricata=tmp_path / "suricata"))
    ex.run(NOW)
    store.put(INDICATORS[4], Provenance("estonia"))  # a SHA-256 file hash
    report = ex.run(NOW)
    assert {p.name for p in report.written} >= {sur.RULES, "shieldwall-sha256.txt"}
    count, _ = loaded(tmp_path / "suricata", tmp_path / "engine")
    text = (tmp_path / "suricata" / sur.RULES).read_text()
    assert count == 13 and text.count("filesha256:") == 5 and "filemd5" not in text


def test_hostile_shared_values_load_as_our_rules_only(store: Store, tmp_path: Path) -> None:
    from tests.security.test_sensor_injection import run

    run(store, tmp_path)
    rules = tmp_path / "suricata" / sur.RULES
    count, sids = loaded(tmp_path / "suricata", tmp_path / "engine")
    assert count == len(rule_lines(rules))
    # no rule but ours: the sids the engine holds are the exported ones (none of the
    # `sid:1`/`sid:2` a hostile value carries)
    assert sids == {r["sid"] for r in parse_rules(rules)}
    assert sids.isdisjoint({1, 2}) and set(sid_map(store)) <= sids


def capture(path: Path) -> None:
    """Traffic to six exported indicators, one of each way a rule finds it."""
    cap = Capture(1718444400.0)
    cap.tcp_session("10.1.1.5", 40001, "198.51.100.80", 80,  # the http URL
                    b"GET /a?b=1 HTTP/1.1\r\nHost: evil.example\r\nUser-Agent: t\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    cap.add(udp("10.1.1.5", 5353, "9.9.9.9", 53, dns_query("xn--bcher-kva.example")))
    cap.add(udp("10.1.1.5", 5354, "9.9.9.9", 53, dns_query("www.bad.example", 7)))
    cap.add(udp("10.1.1.5", 40002, "198.51.100.7", 9999, b"x"))  # an address on the list
    cap.add(udp("10.1.1.5", 40003, "203.0.113.9", 9999, b"x"))  # in the network
    cap.add(tcp("10.1.1.5", 40004, "192.0.2.1", 443, 1, 0, SYN))  # the flow
    cap.write(path)


def test_traffic_to_exported_indicators_alerts_and_comes_back_as_sightings(
        store: Store, tmp_path: Path) -> None:
    store.put_many(INDICATORS, Provenance("estonia"))
    Exporter(store, Targets(suricata=tmp_path / "suricata")).run(NOW)
    pcap, logs = tmp_path / "traffic.pcap", tmp_path / "logs"
    capture(pcap)
    logs.mkdir()
    cfg = config(tmp_path / "suricata", tmp_path / "suricata.yaml")
    r = engine("-c", str(cfg), "-r", str(pcap), "-l", str(logs), "-k", "none")
    assert r.returncode == 0, r.stdout + r.stderr
    eve = logs / "eve.json"
    alerts = [orjson.loads(ln) for ln in eve.read_bytes().splitlines()]
    sids = sid_map(store)  # sid -> indicator id, as handed out
    by_rule = {a["alert"]["signature_id"]: a for a in alerts}
    indicator_rules = {sids[s] for s in by_rule if s in sids}
    assert indicator_rules == {sid("indicator", d) for d in "489a"}
    for s in indicator_rules:
        a = next(a for a in alerts if sids.get(a["alert"]["signature_id"]) == s)
        assert a["alert"]["metadata"]["shieldwall_id"] == [s]
    sets = {a["alert"]["metadata"]["shieldwall_set"][0] for a in alerts
            if "shieldwall_set" in a["alert"]["metadata"]}
    assert sets == {"ipv4", "domains"}  # the address and the name, by their datasets

    index = IndicatorIndex()
    index.sync(store)
    hunter = SensorHunter(index, Sightings(ME, TLP.AMBER), sids=sids)
    hunter.run([eve])
    got: dict[str, dict[str, Any]] = {o["sighting_of_ref"]: o for o in hunter.objects()
                                      if o["type"] == "sighting"}
    # the four rules' alerts by their metadata; the dataset alerts by the values they carry
    assert set(got) == {sid("indicator", d) for d in "134 89a".replace(" ", "")}
    for d in "489a":
        expl = got[sid("indicator", d)][EXPLANATION][0]
        assert expl["field"] == "alert.metadata.shieldwall_id"
        assert orjson.loads(expl["sensor_line"])["alert"]["metadata"]["shieldwall_id"] == \
            [sid("indicator", d)]
    assert got[sid("indicator", "1")][EXPLANATION][0]["value"] == "198.51.100.7"
    # each alert of an indicator rule is one sensor hit; the dataset alerts are matched
    assert hunter.sensor_hits == sum("shieldwall_id" in a["alert"]["metadata"] for a in alerts)
