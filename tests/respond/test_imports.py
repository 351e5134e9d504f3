"""Migration from TheHive 5 and DFIR-IRIS: a case export becomes a Shieldwall case; the same
file again stores nothing new; a bad file is refused in one line and stores nothing.

iris-case-export.json is the example response of `GET /case/export` in the IRIS API
reference (NOTICE). No TheHive 5 case export is published under a licence we may ship (the
`.thar` archive is encrypted; StrangeBee's API examples are all rights reserved), so
thehive5-case.json was written for these tests with the field names and shapes of
thehive4py's output types (OutputCase, OutputTask, OutputObservable, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shieldwall.policy import Member
from shieldwall.respond.cases import Case, load_case
from shieldwall.respond.imports import CaseImportError, import_doc, import_file
from shieldwall.respond.model import observable_text
from shieldwall.stix.markings import TLP, resolve_tlp
from shieldwall.store import Query, Store
from shieldwall.taxii.app import access_for

DATA = Path(__file__).resolve().parents[1] / "data" / "respond"
IRIS = DATA / "iris-case-export.json"
THEHIVE = DATA / "thehive5-case.json"
MEMBER = "cert-south"


def case_of(store: Store, case_id: str, who: str = MEMBER) -> Case:
    return load_case(store, case_id, access_for(Member(who, "ally")))


def test_an_iris_case_export_becomes_a_case_and_loses_nothing(store: Store) -> None:
    export = json.loads(IRIS.read_text())["data"]
    result = import_file(store, MEMBER, IRIS, "iris")
    case = case_of(store, result.case_id)
    assert case.incident is not None
    assert case.incident["name"] == export["case"]["name"] == "#1 - Dummy name"
    assert case.incident["description"] == "Dummy description"
    assert len(case.tasks) == len(export["tasks"]) == 14
    assert sorted(t["outcome"] for t in case.tasks)[:3] == ["ongoing", "pending", "pending"]
    assert {t.get("x_shieldwall_assignee") for t in case.tasks} >= {f"{MEMBER}:administrator"}
    assert len(case.events) == len(export["timeline"]) == 24
    first = next(e for e in case.events if e["name"] == "[ALERT] Super alert 5")
    assert (first["start_time"], first["start_time_fidelity"]) == (
        "2023-03-26T03:00:30.000Z", "second")
    assert first["x_shieldwall_source"] == "Test Source"
    # Every IOC is kept: the two SHA-256 as observables, the authentihashes as notes.
    values = {observable_text(od) for od in case.observed}
    assert values == {f"file:SHA-256={e['file_hash'].lower()}" for e in export["evidences"]}
    notes = "\n".join(n["content"] for n in case.notes)
    for ioc in export["iocs"]:
        assert ioc["ioc_value"].lower() in notes.lower() or any(
            ioc["ioc_value"].lower() in (v or "") for v in values)
    assert "myasset" in notes and "1.1.1.1" in notes  # the asset
    assert "Super note" in notes  # the note
    assert "irisinitialclient300" in notes and "other:other" in notes  # the case's metadata
    assert sorted(e["sha256"] for e in case.evidence) == sorted(
        e["file_hash"].lower() for e in export["evidences"])
    assert {e["size"] for e in case.evidence} == {77143, 77108}
    # Items the export leaves unmarked are held at AMBER, for the importing member.
    assert {resolve_tlp(o, TLP.CLEAR) for o in case.tasks} == {TLP.AMBER}
    assert result.counts == {"tasks": 14, "events": 24, "observables": 2, "evidence": 2,
                             "notes": 5}


def test_importing_the_same_export_again_stores_nothing_new(store: Store) -> None:
    first = import_file(store, MEMBER, IRIS, "iris")
    total = store.count(Query(versions="all"))
    again = import_file(store, MEMBER, IRIS, "iris")
    assert again.case_id == first.case_id
    assert again.stored == 0 and again.duplicates == first.stored
    assert store.count(Query(versions="all")) == total


def test_a_thehive_5_case_becomes_a_case(store: Store) -> None:
    result = import_file(store, MEMBER, THEHIVE, "thehive")
    case = case_of(store, result.case_id)
    assert case.incident is not None
    assert case.incident["name"] == "Phishing wave against the port authority"
    assert case.incident["created"] == "2025-12-05T09:00:00.000Z"  # startDate
    # The case's TLP (tlpLabel AMBER+STRICT) marks it and its unmarked items, named to the
    # importing member: another ally sees nothing of it.
    assert resolve_tlp(case.incident, TLP.CLEAR) == TLP.AMBER_STRICT
    assert case_of(store, result.case_id, "cert-east").incident is None
    tasks = {t["name"]: t for t in case.tasks}
    assert tasks["Purge the mails"]["outcome"] == "successful"
    assert tasks["Reset the two exposed accounts"]["outcome"] == "ongoing"
    assert tasks["Reset the two exposed accounts"]["x_shieldwall_due"] == (
        "2025-12-06T10:00:00.000Z")
    assert tasks["Report to the national CERT"]["outcome"] == "pending"
    assert tasks["Purge the mails"]["x_shieldwall_assignee"] == (
        f"{MEMBER}:bob@cert-south.example")
    observed = {observable_text(od): resolve_tlp(od, TLP.CLEAR) for od in case.observed}
    assert observed == {
        "ipv4-addr:203.0.113.77": TLP.AMBER,
        "domain-name:port-authority-login.example": TLP.GREEN,
        "file:SHA-256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855":
            TLP.AMBER,
    }
    log = next(n for n in case.notes if "118 mails purged" in n["content"])
    assert tasks["Purge the mails"]["id"] in log["object_refs"]
    notes = "\n".join(n["content"] for n in case.notes)
    for kept in ("invoice_2025.html", "compromised supplier", "number matching", "HIGH",
                 "businessUnit=Port operations"):
        assert kept in notes
    (ttp,) = case.events
    assert ttp["name"] == "T1566.002 (initial-access)"
    assert ttp["start_time"] == "2025-12-05T09:00:00.000Z"


def _refused(store: Store, doc: Any, source: str, reason: str) -> None:
    before = store.count(Query(versions="all"))
    with pytest.raises(CaseImportError) as err:
        import_doc(store, MEMBER, doc, source)
    assert reason in str(err.value)
    assert "\n" not in str(err.value)
    assert store.count(Query(versions="all")) == before


def test_bad_exports_are_refused_in_one_line_and_store_nothing(store: Store) -> None:
    import_file(store, MEMBER, IRIS, "iris")  # something stored already, to be kept
    iris = json.loads(IRIS.read_text())
    thehive = json.loads(THEHIVE.read_text())
    _refused(store, [], "iris", "not a DFIR-IRIS case export")
    _refused(store, {"data": {"tasks": []}}, "iris", "no 'case' object")
    _refused(store, {**thehive, "case": None}, "thehive", "not a TheHive 5 case")
    bad = json.loads(json.dumps(iris))
    bad["data"]["timeline"] = "yesterday"
    _refused(store, bad, "iris", "'timeline' is not a list of objects")
    bad = json.loads(json.dumps(thehive))
    bad["tasks"][2]["dueDate"] = {"not": "a date"}
    bad["tasks"][1]["title"] = ["a", "list"]
    bad["observables"] = [{"dataType": "ip", "data": "203.0.113.7", "tlp": "red", "_id": 5},
                          "not an object"]
    _refused(store, bad, "thehive", "'observables' is not a list of objects")


def test_bad_files_are_refused_before_parsing_past_the_bounds(store: Store, tmp_path: Path,
                                                              monkeypatch: Any) -> None:
    from shieldwall.respond import imports

    cases = {"deep.json": b"[" * 65 + b"]" * 65, "broken.json": b'{"case": {',
             "missing.json": None}
    reasons = {"deep.json": "nested deeper than 64 levels", "broken.json": "not a DFIR-IRIS",
               "missing.json": "No such file"}
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(CaseImportError, match=reasons[name]):
            import_file(store, MEMBER, path, "iris")
    monkeypatch.setattr(imports, "MAX_BYTES", 1_000)
    with pytest.raises(CaseImportError, match="larger than 0 MiB"):
        import_file(store, MEMBER, IRIS, "iris")
    monkeypatch.setattr(imports, "MAX_ITEMS", 10)
    with pytest.raises(CaseImportError, match="objects; a case is refused past 10"):
        import_doc(store, MEMBER, json.loads(IRIS.read_text()), "iris")
    with pytest.raises(CaseImportError, match="choose one of thehive, iris"):
        import_file(store, MEMBER, IRIS, "rtir")
    assert store.count(Query(versions="all")) == 0


def test_times_from_the_future_are_brought_back_to_now(store: Store) -> None:
    doc = json.loads(THEHIVE.read_text())
    doc["tasks"][0]["_createdAt"] = 99_999_999_999_999
    result = import_doc(store, MEMBER, doc, "thehive")
    case = case_of(store, result.case_id)
    purge = next(t for t in case.tasks if t["name"] == "Purge the mails")
    assert purge["created"] < "2100"


def test_the_case_commands_import_apply_export_and_refuse(tmp_path: Path) -> None:
    import os
    import subprocess

    from tests.taxii.conftest import SHIELDWALL

    home = tmp_path / "home"
    env = os.environ | {"COLUMNS": "400"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SHIELDWALL, *args, "--home", str(home)], capture_output=True,
                              text=True, timeout=120, env=env)

    assert run("init", "--member", MEMBER).returncode == 0
    r = run("case", "import", str(IRIS), "--from", "iris")
    assert r.returncode == 0, r.stderr
    case_id = r.stdout.split()[1]
    assert case_id.startswith("incident--")
    assert "14 tasks" in r.stderr
    r = run("case", "template", "apply", case_id, "ddos", "--tlp", "green")
    assert r.returncode == 0, r.stderr
    assert "6 tasks added" in r.stderr
    report = tmp_path / "case.md"
    r = run("case", "export", case_id, "--format", "md", "-o", str(report))
    assert r.returncode == 0, r.stderr
    text = report.read_text()
    assert "| dasas | ongoing | cert-south:administrator |" in text
    assert "| Characterise the traffic | pending | — | — | TLP:GREEN |" in text
    assert "# \\#1 - Dummy name" in text
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": {"case": 7}}')
    r = run("case", "import", str(bad), "--from", "iris")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "shieldwall: error: not a DFIR-IRIS case export: no 'case' object (expected the "
        "JSON of GET /case/export)"]


def test_a_later_export_of_the_same_case_updates_what_changed(store: Store) -> None:
    doc = json.loads(THEHIVE.read_text())
    first = import_doc(store, MEMBER, doc, "thehive")
    reset = next(t for t in doc["tasks"] if t["title"].startswith("Reset"))
    reset["status"] = "Completed"
    reset["_updatedAt"] = 1764940000000
    later = import_doc(store, MEMBER, doc, "thehive")
    assert later.case_id == first.case_id
    assert later.stored == 1  # the task's new version; everything else already held
    case = case_of(store, first.case_id)
    (task,) = [t for t in case.tasks if t["name"].startswith("Reset")]
    assert task["outcome"] == "successful"
    assert len(store.versions(task["id"])) == 2
    assert len(case.tasks) == 3
