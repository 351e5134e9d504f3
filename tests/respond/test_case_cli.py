"""`shieldwall assist` and `shieldwall case` on one member's node, as a person uses them:
a request, tasks and their versions, a timeline with time fidelity, observables in
canonical form hunted in logs, sightings already in the store pulled into the timeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shieldwall.config import load_config
from shieldwall.policy import member_identity_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.store import Provenance, Query, Store
from tests.cli.test_intel_cli import sw
from tests.factories import indicator

CONN = Path(__file__).resolve().parents[1] / "data" / "zeek" / "json" / "conn.log"
HIT = "10.18.20.8"  # a responder address in CONN


def ok(home: Path, *args: str) -> str:
    r = sw(home, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def err(home: Path, *args: str) -> str:
    r = sw(home, *args)
    assert r.returncode == 2, r.stdout + r.stderr
    return r.stderr


def _store(home: Path) -> Store:
    return Store.open(load_config(home).db_url)


def _case(home: Path, inc: str) -> dict[str, Any]:
    return json.loads(ok(home, "case", "show", inc, "--json"))


def test_working_a_case(tmp_path: Path) -> None:
    home = tmp_path / "south"
    ok(home, "init", "--member", "cert-south")
    ind = indicator(HIT, tlp=TLP.AMBER, created_by_ref=member_identity_id("cert-south"))
    s = _store(home)
    try:
        s.put_many([ind], Provenance("cert-south", "local"))
    finally:
        s.close()
    ok(home, "hunt", "--no-keep", str(CONN))  # a sighting of the indicator, in the store
    inc = ok(home, "incident", "open", "--name", "Ransomware", "--tlp", "amber+strict",
             "--indicator", ind["id"]).strip()

    assert "no case" in err(home, "case", "task", "add", "incident--" + "0" * 8
                            + "-0000-4000-8000-" + "0" * 12, "--name", "x")
    req = json.loads(ok(home, "assist", "request", "--incident", inc, "--need",
                        "forensics", "--need", "malware-analysis", "--json"))
    assert req["needs"] == ["forensics", "malware-analysis"] and req["cell"] == "coordination"
    assert "already asks" in err(home, "assist", "request", "--incident", inc, "--need", "x")

    t = json.loads(ok(home, "case", "task", "add", inc, "--name", "Image the DC",
                      "--assignee", "cert-south:carol", "--due", "2026-12-07T18:00:00Z",
                      "--json"))
    assert (t["outcome"], t["x_shieldwall_due"]) == ("pending", "2026-12-07T18:00:00.000Z")
    assert t[AUDIENCE_PROPERTY] == ["cert-south", "coordination"]
    assert "MEMBER:PERSON" in err(home, "case", "task", "add", inc, "--name", "x",
                                  "--assignee", "carol")
    up = json.loads(ok(home, "case", "task", "update", t["id"], "--status", "ongoing",
                       "--json"))
    assert up["outcome"] == "ongoing" and up["x_shieldwall_assignee"] == "cert-south:carol"
    assert "task status" in err(home, "case", "task", "update", t["id"], "--status", "done")

    ok(home, "case", "event", "add", inc, "--name", "First beacon", "--time",
       "2026-12-05T10:00:00Z", "--fidelity", "hour", "--source", "zeek conn.log",
       "--tlp", "red")
    assert "time fidelity" in err(home, "case", "event", "add", inc, "--name", "x",
                                  "--time", "2026-12-05T10:00:00Z", "--fidelity", "week")
    ok(home, "case", "note", inc, "Containment started", "--ref", t["id"])
    ok(home, "case", "observable", "add", inc, f"ipv4-addr:{HIT}",
       "domain-name:Bücher.EXAMPLE.", "file:sha256=" + "AB" * 32)
    assert "already holds" in err(home, "case", "observable", "add", inc,
                                  "domain-name:xn--bcher-kva.example")
    assert "TYPE:VALUE" in err(home, "case", "observable", "add", inc, "mutex:evil")

    hunted = ok(home, "case", "observable", "hunt", inc, str(CONN), "--record")
    assert f"ipv4-addr:{HIT}: 46 hits" in hunted and "recorded 1 event" in hunted

    pulled = ok(home, "case", "event", "pull", inc)
    assert "pulled 1 event" in pulled
    assert "pulled 0 events" in ok(home, "case", "event", "pull", inc)

    case = _case(home, inc)
    assert [o["objects"]["0"].get("value") or o["objects"]["0"]["hashes"]["SHA-256"]
            for o in case["observables"]] == [HIT, "xn--bcher-kva.example", "ab" * 32]
    timeline = case["timeline"]
    # the sighting and the hunt's hit start at the same first line of the log
    assert sorted(e["name"].split(" ")[0] for e in timeline[:2]) == [f"ipv4-addr:{HIT}",
                                                                     "sighting"]
    assert timeline[0]["start_time"] == timeline[1]["start_time"]
    first_beacon = timeline[-1]
    assert first_beacon["start_time_fidelity"] == "hour"
    assert first_beacon["object_marking_refs"] == [tlp_marking_ref(TLP.RED)]
    pulled_event = next(e for e in timeline if e["name"].startswith("sighting"))
    assert pulled_event["sighting_refs"] and pulled_event["start_time"].startswith("2019-12-03")
    assert [n["content"] for n in case["notes"]] == ["Containment started"]
    assert case["tasks"][0]["outcome"] == "ongoing"
    shown = ok(home, "case", "show", inc)
    assert "Image the DC" in shown and "(hour) First beacon from zeek conn.log" in shown
    # every item of the case is linked to it and carries its own TLP
    s = _store(home)
    try:
        links = [r.obj() for r in s.linked([inc]) if r.obj()["target_ref"] == inc
                 and r.obj()["relationship_type"] == "related-to"]
        items = {r.id: r for r in s.query(Query(ids=[x["source_ref"] for x in links])).rows}
        # request, task, 3 events, note, 3 observables
        assert len(items) == len(links) == 9
        assert all(r.obj().get("object_marking_refs") for r in items.values())
    finally:
        s.close()


def test_only_the_cell_dispatches_and_only_listed_responders(tmp_path: Path) -> None:
    cell = tmp_path / "coordination"
    ok(cell, "init", "--member", "coordination")
    assert "MEMBER:PERSON" in err(cell, "responder", "add", "alice")
    ok(cell, "responder", "add", "cert-north:alice", "--name", "Alice", "--skills",
       "forensics,malware-analysis")
    ok(cell, "responder", "add", "cert-north:bob", "--skills", "forensics",
       "--availability", "unavailable")
    rows = json.loads(ok(cell, "responder", "list", "--json"))
    assert [(r["member"], r["person"], r["skills"], r["availability"]) for r in rows] == [
        ("cert-north", "alice", ["forensics", "malware-analysis"], "available"),
        ("cert-north", "bob", ["forensics"], "unavailable")]
    assert "cert-north:alice" in ok(cell, "responder", "list", "--available")
    assert "cert-north:bob" not in ok(cell, "responder", "list", "--available")
    missing = "x-shieldwall-assistance-request--" + "0" * 8 + "-0000-4000-8000-" + "0" * 12
    assert "no assistance request" in err(cell, "assist", "dispatch", missing, "--team",
                                          "cert-north:alice", "--lead", "cert-north:alice",
                                          "--reason", "x")
    member = tmp_path / "east"
    ok(member, "init", "--member", "cert-east")
    assert "only the coordination cell's node" in err(
        member, "assist", "dispatch", missing, "--team", "cert-north:alice", "--lead",
        "cert-north:alice", "--reason", "x")
