"""Real MISP events (PyMISP's own test fixtures, tests/data/misp/) through `shieldwall import`,
as an analyst runs it: what used to be refused or lost, and how it is reported."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from shieldwall.ingest.base import ReadOptions, Rejected
from shieldwall.ingest.misp import read_misp
from tests.cli.test_intel_cli import sw

DATA = Path(__file__).resolve().parents[1] / "data" / "misp"
IMAGE_EVENT = DATA / "image_event.json"  # BabyShark: one galaxy cluster without a uuid
GALAXY_EVENT = DATA / "galaxy_1.json"  # PUBG ransomware: 14 clusters without a uuid
PE_EVENT = DATA / "mainly_objects_1.json"  # SamSam: a `pe` object misp-stix cannot convert
BARE_EVENT = DATA / "bare_existing_event.json"  # Sednit: an event without {"Event": ...}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "node"
    assert sw(home, "init", "--member", "estonia").returncode == 0
    return home


def _exported(home: Path, tmp_path: Path) -> dict[str, dict]:
    out = tmp_path / "export.json"
    r = sw(home, "export", "--output", str(out))
    assert r.returncode == 0, r.stderr
    return {o["id"]: o for o in orjson.loads(out.read_bytes())["objects"]}


def _event(path: Path) -> dict:
    data = json.loads(path.read_text())
    return data.get("Event", data)


def test_galaxy_cluster_without_uuid_costs_only_that_cluster(home: Path, tmp_path: Path) -> None:
    event = _event(IMAGE_EVENT)
    r = sw(home, "import", "--no-warninglists", str(IMAGE_EVENT))
    assert r.returncode == 0, r.stdout + r.stderr
    held = _exported(home, tmp_path)
    report = held[f"report--{event['uuid']}"]
    assert report["name"] == event["info"]
    missing = [ref for ref in report["object_refs"] if ref not in held]
    assert len(report["object_refs"]) > 100 and missing == []
    assert len(held) >= 130  # the event's 130 objects, the node's identity
    # the cluster left out is named in the report, in one line
    assert "Stolen Developer Credentials or Signing Keys - T1441" in r.stdout
    assert "no uuid" in r.stdout and "Traceback" not in r.stdout + r.stderr


def test_every_cluster_without_uuid_is_reported(home: Path, tmp_path: Path) -> None:
    event = _event(GALAXY_EVENT)
    r = sw(home, "import", "--no-warninglists", str(GALAXY_EVENT))
    assert r.returncode == 0, r.stdout + r.stderr
    held = _exported(home, tmp_path)
    assert held[f"grouping--{event['uuid']}"]["name"] == event["info"]  # unpublished
    assert r.stdout.count("no uuid") == 14  # 7 on the event, 7 on its objects' attributes


def test_event_without_the_event_wrapper_is_detected(home: Path, tmp_path: Path) -> None:
    event = _event(BARE_EVENT)
    assert "Event" not in json.loads(BARE_EVENT.read_text())
    r = sw(home, "import", "--no-warninglists", str(BARE_EVENT))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "│ misp " in r.stdout
    held = _exported(home, tmp_path)
    assert held[f"grouping--{event['uuid']}"]["name"] == event["info"]
    assert {"Sofacy", "JHUHUGIT"} <= {o.get("name") for o in held.values()}  # its galaxies


def test_unconvertible_pe_object_is_one_line(home: Path, tmp_path: Path) -> None:
    r = sw(home, "import", "--no-warninglists", str(PE_EVENT))
    assert "Traceback" not in r.stdout and 'File "' not in r.stdout
    assert "pe object" in r.stdout and "pe_type" in r.stdout
    reasons = [x.reason for x in read_misp(PE_EVENT, ReadOptions(producer={}))
               if isinstance(x, Rejected)]
    pe = [x for x in reasons if "pe object" in x]
    assert len(pe) == 2 and all("\n" not in x and "WindowsPEBinaryExt" in x for x in pe)
    # the rest of the event is stored
    assert f"report--{_event(PE_EVENT)['uuid']}" in _exported(home, tmp_path)


ZEEK_CONN = Path(__file__).resolve().parents[1] / "data" / "zeek" / "conn.log"
HIT = ["54.230.86.87", "194.165.17.4", "108.59.9.32", "54.245.228.191"]  # in conn.log


def test_exported_sightings_convert_back_to_misp(home: Path, tmp_path: Path) -> None:
    """A node's sightings, exported alone, convert to a MISP event with misp-stix (the
    converter MISP runs) without a missing reference, and PyMISP reads that event."""
    from misp_stix_converter import ExternalSTIX2toMISPParser
    from pymisp import MISPEvent
    from stix2 import parse

    iocs = tmp_path / "iocs.txt"
    iocs.write_text("\n".join(HIT) + "\n")
    assert sw(home, "import", "--no-warninglists", str(iocs)).returncode == 0
    r = sw(home, "hunt", str(ZEEK_CONN))
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "sightings.json"
    assert sw(home, "export", "--type", "sighting", "--output", str(out)).returncode == 0
    bundle = orjson.loads(out.read_bytes())
    types = {o["type"] for o in bundle["objects"]}
    assert {"sighting", "observed-data", "network-traffic", "ipv4-addr"} <= types

    parser = ExternalSTIX2toMISPParser()
    parser.load_stix_bundle(parse(bundle, allow_custom=True))
    parser.parse_stix_bundle()
    assert not parser.errors  # before: one "Missing observable object" per observed-data
    event = MISPEvent()
    event.load(parser.misp_event.to_json())
    flows = [o for o in event.objects if o.name == "network-traffic"]
    assert len(flows) == sum(o["type"] == "observed-data" for o in bundle["objects"])
    seen = {a.value for o in flows for a in o.attributes if a.object_relation == "dst_ip"}
    assert set(HIT) <= seen


def test_value_pymisp_refuses_is_reported_in_one_line(home: Path) -> None:
    """An ssdeep attribute whose value has line breaks fails PyMISP's validation and is left
    out: the report says which, in one line, instead of PyMISP's log on stderr."""
    r = sw(home, "import", "--no-warninglists", str(DATA / "to_delete2.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Failed validation" not in r.stderr  # before: a multi-line warning, then nothing
    reasons = [x.reason for x in read_misp(DATA / "to_delete2.json", ReadOptions(producer={}))
               if isinstance(x, Rejected)]
    assert reasons == ["Failed validation for ssdeep Attribute "
                       "<5a0d6d2b-a2d8-40e5-a43e-458e950d210f> in file Object "
                       "<5a0d6d2a-464c-4b9c-8406-421c950d210f>: Invalid SSDeep hash. "
                       "The format has to be blocksize:hash:hash"]
    assert "5a0d6d2b-a2d8-40e5-a43e-458e950d210f" in r.stdout
