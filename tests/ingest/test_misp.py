from __future__ import annotations

import json
from pathlib import Path

import pytest
from stix2patterns.validator import run_validator
from stix2validator import ValidationOptions, validate_instance

from shieldwall.ingest import misp
from shieldwall.ingest.base import ReadOptions, Rejected, formats
from shieldwall.stix.markings import TLP, resolve_tlp, tlp_marking_ref

DATA = Path(misp.__file__).resolve().parents[1] / "data" / "misp"
XORIST = DATA / "circl-osint-ransomware-xorist.json"
SUNORCAL = DATA / "circl-osint-sunorcal.json"
QAKBOT = DATA / "circl-osint-qakbot-emotet.json"

PRODUCER = {
    "type": "identity", "spec_version": "2.1",
    "id": "identity--8c0d3c1e-7d2a-4e0a-9f52-3d6a0c1b2e4f",
    "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
    "name": "CERT-Test", "identity_class": "organization",
}
CIRCL = "identity--55f6ea5e-2c60-40e5-964f-47a8950d210f"


def _read(path: Path, tlp: TLP | None = None) -> list:
    return list(misp.read_misp(path, ReadOptions(producer=PRODUCER, tlp=tlp)))


def _with_tag(tmp_path: Path, tag: str) -> Path:
    event = json.loads(XORIST.read_text())
    event["Event"]["Tag"][0]["name"] = tag
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return path


def _objects(items: list) -> list[dict]:
    return [i for i in items if isinstance(i, dict)]


def test_real_event_converts_to_concrete_objects() -> None:
    items = _read(XORIST)
    objs = _objects(items)
    assert objs[0] == PRODUCER
    by_id = {o["id"]: o for o in objs}
    report = by_id["report--57c4445b-c548-4654-af0b-4be3950d210f"]
    assert report["name"] == "Ransomware - Xorist"
    assert report["created_by_ref"] == CIRCL
    assert by_id[CIRCL]["name"] == "CIRCL"
    patterns = {o["pattern"] for o in objs if o["type"] == "indicator"}
    assert "[file:hashes.MD5 = '0749bae92ca336a02c83d126e04ec628']" in patterns
    assert "[file:name = '3Z4wnG9603it23y.exe']" in patterns
    assert ("[file:hashes.'SHA-256' = "
            "'b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68']") in patterns
    # comment and text attributes have no STIX mapping and are not rejections
    assert not [i for i in items if isinstance(i, Rejected)]


@pytest.mark.parametrize("path", [XORIST, SUNORCAL, QAKBOT], ids=lambda p: p.stem)
def test_every_object_and_pattern_is_valid_stix(path: Path) -> None:
    opts = ValidationOptions(version="2.1")
    objs = _objects(_read(path))
    assert len(objs) > 10
    for obj in objs:
        result = validate_instance(obj, opts)
        assert result.is_valid, (obj["id"], [str(e) for e in result.errors])
        if obj["type"] == "indicator":
            assert run_validator(obj["pattern"], stix_version="2.1") == []


def test_registry_hives_are_spelled_out() -> None:
    keys = [o["key"] for o in _objects(_read(SUNORCAL)) if o["type"] == "windows-registry-key"]
    hives = [k for k in keys if k.upper().startswith("HK")]
    assert len(hives) == 2  # MISP wrote HKLM\... and HKCU\...
    assert all(k.startswith(("HKEY_LOCAL_MACHINE\\", "HKEY_CURRENT_USER\\")) for k in hives)


def test_tlp_white_event_marks_every_object_clear() -> None:
    objs = _objects(_read(SUNORCAL))
    clear = tlp_marking_ref(TLP.CLEAR)
    marked = [o for o in objs if o["type"] not in ("marking-definition",) and o is not objs[0]]
    assert marked and all(o["object_marking_refs"] == [clear] for o in marked)
    defs = [o for o in objs if o["type"] == "marking-definition"]
    assert [d["id"] for d in defs] == [clear]


@pytest.mark.parametrize(("tag", "level"), [
    ("tlp:amber", TLP.AMBER), ("TLP:AMBER", TLP.AMBER), ("tlp:red", TLP.RED),
    ("tlp:amber+strict", TLP.AMBER_STRICT), ("tlp:green", TLP.GREEN), ("tlp:clear", TLP.CLEAR),
])
def test_event_tlp_tag_becomes_our_tlp2_marking_on_every_object(
        tmp_path: Path, tag: str, level: TLP) -> None:
    objs = _objects(_read(_with_tag(tmp_path, tag), tlp=TLP.GREEN))
    indicators = [o for o in objs if o["type"] == "indicator"]
    assert len(indicators) == 5
    for obj in objs[1:]:
        if obj["type"] != "marking-definition":
            assert resolve_tlp(obj, default=TLP.RED) == level, obj["id"]
            assert obj["object_marking_refs"][0] == tlp_marking_ref(level)
    assert [o["id"] for o in objs if o["type"] == "marking-definition"] == [tlp_marking_ref(level)]


def test_attribute_tlp_stricter_than_event_wins(tmp_path: Path) -> None:
    event = json.loads(XORIST.read_text())
    event["Event"]["Tag"][0]["name"] = "tlp:green"
    md5 = next(a for a in event["Event"]["Attribute"] if a["type"] == "md5")
    md5.setdefault("Tag", []).append({"name": "tlp:red"})
    path = tmp_path / "e.json"
    path.write_text(json.dumps(event))
    objs = _objects(_read(path))
    levels = {o["pattern"]: resolve_tlp(o) for o in objs if o["type"] == "indicator"}
    assert levels["[file:hashes.MD5 = '0749bae92ca336a02c83d126e04ec628']"] == TLP.RED
    assert levels["[file:name = '3Z4wnG9603it23y.exe']"] == TLP.GREEN


def test_event_without_tlp_takes_the_chosen_tlp_or_none(tmp_path: Path) -> None:
    event = json.loads(XORIST.read_text())
    event["Event"]["Tag"] = [t for t in event["Event"]["Tag"] if not t["name"].startswith("tlp")]
    path = tmp_path / "e.json"
    path.write_text(json.dumps(event))
    with_tlp = _objects(_read(path, tlp=TLP.AMBER))
    assert all(resolve_tlp(o, default=TLP.CLEAR) == TLP.AMBER
               for o in with_tlp if o["type"] == "indicator")
    without = _objects(_read(path))
    assert all("object_marking_refs" not in o for o in without if o["type"] == "indicator")


def test_list_and_response_shapes(tmp_path: Path) -> None:
    one = json.loads(XORIST.read_text())
    two = json.loads(SUNORCAL.read_text())
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps([one, two]))
    as_response = tmp_path / "response.json"
    as_response.write_text(json.dumps({"response": [one, two["Event"], {"Attribute": []}]}))
    reports = {o["id"] for o in _objects(_read(as_list)) if o["type"] == "report"}
    assert "report--57c4445b-c548-4654-af0b-4be3950d210f" in reports
    assert len(reports) == 2
    items = _read(as_response)
    assert {o["id"] for o in _objects(items) if o["type"] == "report"} == reports
    assert [r.where for r in items if isinstance(r, Rejected)] == ["item 3"]


def test_reimport_gives_identical_objects() -> None:
    assert _read(XORIST) == _read(XORIST)


def test_sniffing() -> None:
    fmt = formats()["misp"]
    assert fmt.sniff(XORIST.read_bytes()[:4096], XORIST)
    assert fmt.sniff(b'{"response": [{"Event": {}}]}', Path("x.json"))
    assert not fmt.sniff(b'{"type": "bundle", "objects": []}', Path("x.json"))
    assert not fmt.sniff(b"1.2.3.4\n", Path("x.txt"))
