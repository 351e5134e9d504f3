"""Suricata EVE, JSON lines with a mapping, STIX observed-data."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shieldwall.detect.readers import ReaderError, ReadStats, detect_format, read
from shieldwall.detect.readers.jsonl import load_mapping

EVE = Path(__file__).parents[1] / "data" / "suricata" / "eve.json"


def test_eve_event_types_and_corrupt_line() -> None:
    assert detect_format(EVE) == "suricata"
    stats = ReadStats()
    (obs,) = list(read(EVE, stats))
    assert len(obs) == 8
    assert [(b.line, b.reason[:8]) for b in stats.bad] == [(8, "bad JSON")]
    dns = obs.row(1)
    assert dns["domain-name:resolves_to_refs[*].value"] == ["203.0.113.66"]
    http = obs.row(2)
    assert http["url:value"] == "http://update.malware-c2.example/gate.php?id=4f2a"
    fileinfo = obs.row(3)
    assert fileinfo["file:hashes.MD5"] == "9e107d9d372bb6826bd81d3542a419d6"
    tls = obs.row(5)
    assert tls["domain-name:value"] == "login.phish-bank.example"
    assert tls["x509-certificate:hashes.'SHA-1'"] == "8b4f3c2219aa705e11c29d30440e8761b02f9a13"
    od = obs.observed_data(7)
    nt = od["objects"]["0"]
    assert od["objects"][nt["dst_ref"]] == {"type": "ipv6-addr", "value": "2001:db8:ff::66"}


def test_jsonl_with_mapping(tmp_path: Path) -> None:
    mapping = tmp_path / "ecs.json"
    mapping.write_bytes(orjson.dumps({"timestamp": "@timestamp", "fields": {
        "network-traffic:dst_ref.value": "destination.ip",
        "domain-name:value": "dns.question.name"}}))
    log = tmp_path / "events.jsonl"
    log.write_text(
        '{"@timestamp":"2024-01-02T03:04:05.5Z","destination":{"ip":"192.0.2.7"},'
        '"dns":{"question":{"name":"evil.example"}}}\n'
        '{"@timestamp":1704164645,"destination":{"ip":"192.0.2.8"}}\n')
    assert detect_format(log) == "jsonl"
    with pytest.raises(ReaderError, match="mapping"):
        list(read(log, ReadStats()))
    (obs,) = list(read(log, ReadStats(), "jsonl", load_mapping(mapping)))
    assert obs.row(0) == {"_ts": 1704164645500000, "_line": 1,
                          "network-traffic:dst_ref.value": "192.0.2.7",
                          "domain-name:value": "evil.example"}
    assert obs.row(1)["_ts"] == 1704164645000000
    bad = tmp_path / "bad.json"
    bad.write_text('{"fields": {"nocolon": "x"}}')
    with pytest.raises(ReaderError, match="fields"):
        load_mapping(bad)


def test_stix_bundle_with_object_refs(tmp_path: Path) -> None:
    bundle = {"type": "bundle", "id": "bundle--6d1e3e4e-3a2b-4c1d-9e8f-0a1b2c3d4e5f", "objects": [
        {"type": "ipv4-addr", "spec_version": "2.1",
         "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "198.51.100.3"},
        {"type": "domain-name", "spec_version": "2.1",
         "id": "domain-name--3c10e93f-798e-5a26-a0c1-08156efab7f5", "value": "Example.com",
         "resolves_to_refs": ["ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"]},
        {"type": "observed-data", "spec_version": "2.1",
         "id": "observed-data--b67d30ff-02ac-498a-92f9-32f845f448cf",
         "created": "2024-04-01T00:00:00.000Z", "modified": "2024-04-01T00:00:00.000Z",
         "first_observed": "2024-04-01T00:00:00Z", "last_observed": "2024-04-01T00:00:00Z",
         "number_observed": 1,
         "object_refs": ["domain-name--3c10e93f-798e-5a26-a0c1-08156efab7f5",
                         "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"]},
    ]}
    p = tmp_path / "obs.json"
    p.write_bytes(orjson.dumps(bundle))
    assert detect_format(p) == "stix"
    (obs,) = list(read(p, ReadStats()))
    row = obs.row(0)
    assert row["domain-name:value"] == "example.com"
    assert row["domain-name:resolves_to_refs[*].value"] == ["198.51.100.3"]
    od = obs.observed_data(0)
    assert od["objects"]["0"]["resolves_to_refs"] == ["1"]
