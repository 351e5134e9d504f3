"""Case exports people use: made from the stored objects through the reader's Access only.

The case: cert-south's incident (TLP:AMBER), its request to the cell, a dispatch of
cert-north:alice, and items at three markings: GREEN (everyone), AMBER+STRICT named to the
case's audience (cert-south, the cell, cert-north), and AMBER+STRICT named to cert-south
and the cell only (each of those carries the word SECRETCELL). cert-north is on the case
but outside that last audience; cert-east is an ally not on the case.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shieldwall.assess.incidents import IncidentFields, new_incident
from shieldwall.keys.signing import node_keys
from shieldwall.policy import Member
from shieldwall.respond import cases, model
from shieldwall.respond.custody import custody_event, heads
from shieldwall.respond.evidence import evidence_item
from shieldwall.respond.exports import FORMATS, export_case
from shieldwall.respond.model import RespondError
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Access, Provenance, Store
from shieldwall.taxii.app import access_for
from tests.factories import indicator

SOUTH, CELL, NORTH, EAST = "cert-south", "cell", "cert-north", "cert-east"


def reader(name: str) -> Access:
    return access_for(Member(name, "ally"))


def build_case(store: Store, tmp: Path, *, incident_tlp: TLP = TLP.AMBER) -> str:
    inc = new_incident(member_identity_id(SOUTH), IncidentFields(
        name="Ransomware at the port <script>alert(1)</script>"), tlp=incident_tlp)[0]
    inc["x_shieldwall_audience"] = sorted({SOUTH, CELL, NORTH})
    store.put(inc, Provenance(SOUTH, "local"))
    cid = inc["id"]
    cell_only = model.Marking(TLP.AMBER_STRICT, (SOUTH, CELL))
    req = model.assistance_request(requester=SOUTH, cell=CELL, incident_id=cid,
                                   needs=["forensics"], marking=cell_only)
    cases.add_to_case(store, SOUTH, cid, req)
    cases.add_to_case(store, CELL, cid, model.dispatch(
        request=req, cell=CELL, team=[f"{NORTH}:alice"], lead=f"{NORTH}:alice",
        reason="nearest team with forensics"))
    team = model.Marking(TLP.AMBER_STRICT, model.case_audience(SOUTH, CELL, [f"{NORTH}:alice"]))
    green = model.Marking(TLP.GREEN)
    cases.add_to_case(
        store, SOUTH, cid,
        model.task(creator=SOUTH, name="Isolate hosts", marking=green),
        model.task(creator=SOUTH, name="Capture memory", marking=team,
                   assignee=f"{NORTH}:alice"),
        model.task(creator=SOUTH, name="Brief the minister SECRETCELL", marking=cell_only),
        model.event(creator=SOUTH, name="=HYPERLINK(\"http://x\") first encryption",
                    marking=green, start="2026-12-01T03:00:00Z", fidelity="minute",
                    source="EDR"),
        model.event(creator=SOUTH, name="Beacon to C2", marking=team,
                    start="2026-12-01T02:00:00Z", fidelity="second"),
        model.event(creator=SOUTH, name="Minister told SECRETCELL", marking=cell_only),
        model.observable("ipv4-addr:203.0.113.9", creator=SOUTH, marking=team),
        model.observable("domain-name:secretcell.example", creator=SOUTH, marking=cell_only),
        model.note(creator=SOUTH, case_id=cid, content="Backups are *offline* | [x](y)",
                   marking=green),
    )
    # Findings linked to the case: a GREEN indicator and a sighting of it for the team.
    ind = indicator("198.51.100.23", tlp=TLP.GREEN, name="C2 of the port intrusion",
                    created_by_ref=member_identity_id(SOUTH))
    seen = {"type": "sighting", "spec_version": "2.1", "id": new_id("sighting"),
            "created": "2026-12-01T02:00:00.000Z", "modified": "2026-12-01T02:00:00.000Z",
            "created_by_ref": member_identity_id(SOUTH), "sighting_of_ref": ind["id"],
            "first_seen": "2026-12-01T02:00:00Z", "count": 3,
            "where_sighted_refs": [member_identity_id(SOUTH)], **team.props()}
    store.put(seen, Provenance(SOUTH, "local"))  # a sighting is named by an event, not linked
    cases.add_to_case(store, SOUTH, cid, ind, model.event(
        creator=SOUTH, name="C2 seen in the proxy logs", marking=team,
        start="2026-12-01T02:30:00Z", sighting_refs=[seen["id"]]))
    # Evidence and custody as the custody model makes them, stored with their links.
    keys = node_keys(tmp / "south-home", SOUTH)
    disk = evidence_item(creator=SOUTH, case_id=cid, name="disk image of srv-07",
                         sha256="ab" * 32, size=512_000, kept_at="south locker 3",
                         collected_by=f"{SOUTH}:carol", collected_how="dd over write-blocker",
                         marking=team)
    mailbox = evidence_item(creator=SOUTH, case_id=cid, name="mailbox SECRETCELL",
                            sha256="cd" * 32, size=10, kept_at="vault",
                            collected_by=f"{SOUTH}:carol", collected_how="export",
                            marking=cell_only)
    events: list[dict[str, Any]] = []
    for item, action in ((disk, "collected"), (disk, "handed-over"), (mailbox, "collected")):
        events.append(custody_event(keys=keys, case_id=cid, evidence=item, action=action,
                                    actor=f"{SOUTH}:carol", chain_heads=heads(events)))
    objs: list[dict[str, Any]] = []
    for obj in (disk, mailbox, *events):
        objs += [obj, model.link(obj, cid)]
    store.put_many(objs, Provenance(SOUTH, "local"))
    return cid


def export(store: Store, cid: str, who: str, fmt: str) -> str:
    buf = io.StringIO()
    export_case(store, cid, reader(who), fmt, buf, reader=who)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_holds_only_what_its_reader_may_see(store: Store, tmp_path: Path,
                                                      fmt: str) -> None:
    cid = build_case(store, tmp_path)
    cell, north, east = (export(store, cid, who, fmt) for who in (CELL, NORTH, EAST))
    if fmt != "case-uco":  # custody and evidence only: the cell-only one is the mailbox
        assert "SECRETCELL" in cell
    assert "SECRETCELL" in cell or "mailbox" not in cell
    # cert-north is on the case, but not in the audience of the cell-only items.
    assert "SECRETCELL" not in north
    assert "secretcell.example" not in north
    # cert-east is not on the case: no AMBER+STRICT item at all, whoever it names.
    for text in ("SECRETCELL", "Capture memory", "203.0.113.9", "srv-07", "Beacon"):
        assert text not in east
    if fmt not in ("timesketch", "csv", "case-uco"):  # tasks are in the report and bundle
        assert "Capture memory" in north
        assert "Isolate hosts" in east


def test_a_case_whose_incident_the_reader_may_not_see_is_not_exported(
        store: Store, tmp_path: Path) -> None:
    cid = build_case(store, tmp_path, incident_tlp=TLP.AMBER_STRICT)
    with pytest.raises(RespondError, match=f"no case {cid} that cert-east may read"):
        export(store, cid, EAST, "md")
    assert "Capture memory" in export(store, cid, NORTH, "md")
    # A partner or an organisation reads CLEAR and GREEN only: an AMBER case is not theirs.
    amber = build_case(store, tmp_path / "amber")
    for tier in ("partner", "organisation"):
        with pytest.raises(RespondError, match="no case"):
            export_case(store, amber, access_for(Member("gov-x", tier)), "html", io.StringIO(),
                        reader="gov-x")


def test_timesketch_lines_have_message_datetime_and_timestamp_desc(
        store: Store, tmp_path: Path) -> None:
    cid = build_case(store, tmp_path)
    lines = export(store, cid, CELL, "timesketch").splitlines()
    # 4 events, the request, the dispatch, 2 evidence items, 3 custody events
    assert len(lines) == 11
    stamps = []
    for line in lines:
        row = json.loads(line)
        for key in ("message", "datetime", "timestamp_desc"):
            assert isinstance(row[key], str) and row[key]
        when = datetime.fromisoformat(row["datetime"])
        assert when.utcoffset() is not None
        assert row["timestamp"] == int(when.timestamp() * 1_000_000)
        assert row["tlp"].startswith("TLP:")
        stamps.append(row["timestamp"])
    assert stamps == sorted(stamps)
    first, second = (json.loads(x) for x in lines[:2])
    assert first["message"] == "Beacon to C2"
    assert (first["timestamp_desc"], first["fidelity"]) == ("Event time", "second")
    assert second["message"] == "C2 seen in the proxy logs"
    assert second["refs"] == [next(o["id"] for o in json.loads(export(
        store, cid, CELL, "stix"))["objects"] if o["type"] == "sighting")]
    east = export(store, cid, EAST, "timesketch")
    assert "proxy logs" not in east and "first encryption" in east


def test_csv_has_the_same_rows_and_neutralises_formulas(store: Store, tmp_path: Path) -> None:
    cid = build_case(store, tmp_path)
    rows = list(csv.DictReader(io.StringIO(export(store, cid, CELL, "csv"))))
    jsonl = [json.loads(x) for x in export(store, cid, CELL, "timesketch").splitlines()]
    assert [r["item_id"] for r in rows] == [j["item_id"] for j in jsonl]
    formula = next(r for r in rows if "first encryption" in r["message"])
    assert formula["message"].startswith("'=HYPERLINK(")
    assert formula["source"] == "EDR"


def test_the_stix_bundle_passes_stix2_validator(store: Store, tmp_path: Path) -> None:
    from stix2validator import ValidationOptions, validate_string

    cid = build_case(store, tmp_path)
    for who in (CELL, NORTH, EAST):
        text = export(store, cid, who, "stix")
        result = validate_string(text, ValidationOptions(version="2.1"))
        errors = [str(e) for e in result.errors]
        assert result.is_valid, errors
        bundle = json.loads(text)
        ids = {o["id"] for o in bundle["objects"]}
        assert cid in ids
        # every object says its TLP, and the definitions it names are in the bundle
        for obj in bundle["objects"]:
            if obj["type"] != "marking-definition":
                assert set(obj.get("object_marking_refs") or ["clear"]) & (
                    ids | {"clear"}), obj["id"]
    cell = json.loads(export(store, cid, CELL, "stix"))
    kinds = {o["type"] for o in cell["objects"]}
    assert {"incident", "task", "event", "note", "observed-data", "relationship", "indicator",
            "sighting", "x-shieldwall-evidence", "x-shieldwall-custody-event",
            "extension-definition"} <= kinds
    # The sighting the team's event names is the team's: not in cert-east's bundle.
    east = json.loads(export(store, cid, EAST, "stix"))
    assert {"indicator"} <= {o["type"] for o in east["objects"]}
    assert "sighting" not in {o["type"] for o in east["objects"]}


def test_custody_as_case_uco_validates_with_case_utils(sqlite_store: Store,
                                                       tmp_path: Path) -> None:
    case_validate = pytest.importorskip("case_utils.case_validate")
    cid = build_case(sqlite_store, tmp_path)
    path = tmp_path / "custody.jsonld"
    path.write_text(export(sqlite_store, cid, CELL, "case-uco"))
    result = case_validate.validate(str(path))
    assert result.conforms, result.text
    graph = json.loads(path.read_text())["@graph"]
    actions = [n for n in graph if n["@type"] == "investigation:InvestigativeAction"]
    assert sorted(a["core:name"] for a in actions) == [
        "collected", "collected", "collected", "collected", "handed-over"]
    handed = next(a for a in actions if a["core:name"] == "handed-over")
    assert handed["investigation:wasInformedBy"]  # the previous event of its chain
    hashes = [h["types:hashValue"]["@value"] for n in graph if n["@type"] == "observable:File"
              for f in n["core:hasFacet"] for h in f.get("observable:hash", [])]
    assert sorted(hashes) == ["ab" * 32, "cd" * 32]
    north = json.loads(export(sqlite_store, cid, NORTH, "case-uco"))["@graph"]
    assert "cd" * 32 not in json.dumps(north)


def test_the_report_escapes_case_text_and_states_its_tlp(store: Store, tmp_path: Path) -> None:
    cid = build_case(store, tmp_path)
    html = export(store, cid, CELL, "html")
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<meta name="tlp" content="TLP:AMBER+STRICT">' in html
    assert "<script" not in html.lower().replace("&lt;script", "")
    # cert-east holds nothing above AMBER: its report is an AMBER document
    assert '<meta name="tlp" content="TLP:AMBER">' in export(store, cid, EAST, "html")
    assert "C2 of the port intrusion" in html
    assert "[ipv4-addr:value = &#39;198.51.100.23&#39;]" in html
    md = export(store, cid, CELL, "md")
    assert md.startswith("**TLP:AMBER+STRICT**")
    assert "Backups are \\*offline\\* \\| \\[x\\](y)" in md
    assert "\\<script\\>" in md


def test_an_unknown_format_is_refused(store: Store, tmp_path: Path) -> None:
    cid = build_case(store, tmp_path)
    with pytest.raises(RespondError, match="choose one of html, md, timesketch"):
        export(store, cid, CELL, "pdf")
