"""`case attribute`: the team's confirmed attribution is an analyst's `attributed-to` of the
case's incident to the ATT&CK intrusion set, versioned only by its creator, and it counts
in later rankings only for readers who may see it and the case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shieldwall.assess.actors import attack_catalog
from shieldwall.assess.attribution import Evidence, rank
from shieldwall.assess.confirmed import confirmed_cases, confirmed_evidence
from shieldwall.assess.incidents import IncidentFields, open_incident
from shieldwall.policy import Member, member_identity_id
from shieldwall.respond import roster
from shieldwall.respond.assist import dispatch_team, request_assistance
from shieldwall.respond.attribution import attribute_case, revise
from shieldwall.respond.cases import add_observable, load_case, open_case, share_with_team
from shieldwall.respond.model import RespondError
from shieldwall.stix.identity import member_identity
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, resolve_tlp
from shieldwall.store import Access, Store
from shieldwall.taxii.app import access_for
from tests.cli.test_intel_cli import sw

SOUTH, CELL, NORTH, EAST = "cert-south", "coordination", "cert-north", "cert-east"
C2 = "203.0.113.77"
# Techniques many groups share: alone they do not single out Lazarus Group (G0032).
COMMON = ("T1566.001", "T1059.001", "T1105")


def acc(name: str) -> Access:
    return access_for(Member(name, "ally"))


def _dispatched_case(store: Store) -> str:
    """cert-south's AMBER+STRICT case, a cert-north team dispatched by the cell."""
    inc = open_incident(store, SOUTH, member_identity_id(SOUTH),
                        IncidentFields(name="Wiper at the grid operator", sector="energy"),
                        tlp=TLP.AMBER_STRICT)
    req = request_assistance(store, member=SOUTH, cell=CELL, incident_id=inc["id"],
                             needs=["forensics"], access=acc(SOUTH))
    roster.add(store, f"{NORTH}:alice", name="Alice", skills=["forensics"])
    dispatch_team(store, cell=CELL, request_id=req["id"], team=[f"{NORTH}:alice"],
                  lead=f"{NORTH}:alice", reason="north knows the family", by="duty officer",
                  access=acc(CELL))
    share_with_team(store, SOUTH, load_case(store, inc["id"], acc(SOUTH)))
    return str(inc["id"])


def _attribute(store: Store, member: str, case_id: str, **kw: Any) -> dict[str, Any]:
    case = open_case(store, case_id, acc(member))
    return attribute_case(store, member, member_identity(member), case, acc(member), **kw)


def test_confirmed_attribution_is_stored_versioned_by_its_creator_and_read_through_access(
        store: Store) -> None:
    case_id = _dispatched_case(store)
    case = open_case(store, case_id, acc(NORTH))
    add_observable(store, NORTH, case, f"ipv4-addr:{C2}")
    rel = _attribute(store, NORTH, case_id, group="Lazarus Group", confidence=80,
                     reason="same wiper and C2 as north's 2025 case")
    lazarus = attack_catalog().groups["G0032"]
    assert (rel["relationship_type"], rel["source_ref"], rel["target_ref"]) == (
        "attributed-to", case_id, lazarus.stix_id)
    assert rel["confidence"] == 80
    assert rel["description"] == "same wiper and C2 as north's 2025 case"
    assert rel["x_shieldwall_basis"] == "confirmed-case"
    assert rel["created_by_ref"] == member_identity_id(NORTH)
    assert resolve_tlp(rel, TLP.CLEAR) is TLP.AMBER_STRICT
    assert rel[AUDIENCE_PROPERTY] == [NORTH, SOUTH, CELL]
    stored = store.get(rel["id"], acc(SOUTH))
    assert stored is not None and stored.obj() == rel

    # Again: a new version of the same object, never a second attribution.
    again = _attribute(store, NORTH, case_id, group="G0032", confidence=90,
                       reason="the wiper's build path matches too")
    assert again["id"] == rel["id"] and again["modified"] > rel["modified"]
    assert len(store.versions(rel["id"])) == 2
    # Only its creator versions it; the requester records its own instead.
    with pytest.raises(RespondError, match="created by another member"):
        revise(store, SOUTH, rel["id"], acc(SOUTH), confidence=10)
    assert revise(store, NORTH, rel["id"], acc(NORTH), confidence=85)["confidence"] == 85
    with pytest.raises(RespondError, match="no case"):
        _attribute(store, EAST, case_id, group="G0032", confidence=80, reason="guess")
    with pytest.raises(RespondError, match="no ATT&CK group"):
        _attribute(store, NORTH, case_id, group="G9999", confidence=80, reason="x")
    with pytest.raises(RespondError, match="between 0 and 100"):
        _attribute(store, NORTH, case_id, group="G0032", confidence=101, reason="x")
    with pytest.raises(RespondError, match="reason"):
        _attribute(store, NORTH, case_id, group="G0032", confidence=80, reason=" ")

    # The case's audience reads the confirmation and its case's infrastructure...
    for reader in (SOUTH, CELL, NORTH):
        (seen,) = confirmed_cases(store, acc(reader))
        assert (seen.group, seen.confidence, seen.evidence.infrastructure) == (
            "G0032", 85, (C2,))
    # ...a member outside it reads nothing of it, so its rankings ignore it.
    assert confirmed_cases(store, acc(EAST)) == []
    later = Evidence(COMMON, (), (C2,))
    inside = rank(later, confirmed=confirmed_evidence(store, acc(SOUTH)))
    outside = rank(later, confirmed=confirmed_evidence(store, acc(EAST)))
    assert inside.candidates[0].attack_id == "G0032"
    assert f"infrastructure:{C2} (confirmed case)" in inside.candidates[0].shared
    assert [c.attack_id for c in outside.candidates] == [
        c.attack_id for c in rank(later).candidates]
    assert "G0032" not in [c.attack_id for c in outside.candidates[:1]]


def test_an_attribution_by_someone_not_on_the_case_is_not_evidence(store: Store) -> None:
    """Any member may write an `attributed-to` naming another's incident; only the people
    working the case make it a confirmed case."""
    case_id = _dispatched_case(store)
    add_observable(store, SOUTH, open_case(store, case_id, acc(SOUTH)), f"ipv4-addr:{C2}",
                   tlp=TLP.GREEN)
    # cert-east cannot open the case; it writes the relationship by hand, at GREEN.
    from shieldwall.respond.cases import put_items
    from shieldwall.stix.ids import new_id
    from shieldwall.stix.markings import tlp_marking_ref

    forged = {"type": "relationship", "spec_version": "2.1", "id": new_id("relationship"),
              "created_by_ref": member_identity_id(EAST), "created": "2026-12-06T10:00:00.000Z",
              "modified": "2026-12-06T10:00:00.000Z", "relationship_type": "attributed-to",
              "source_ref": case_id, "target_ref": attack_catalog().groups["G0007"].stix_id,
              "confidence": 100, "x_shieldwall_basis": "confirmed-case",
              "object_marking_refs": [tlp_marking_ref(TLP.GREEN)]}
    put_items(store, EAST, [member_identity(EAST), forged])
    assert store.get(forged["id"], acc(SOUTH)) is not None
    assert confirmed_cases(store, acc(SOUTH)) == []
    _attribute(store, SOUTH, case_id, group="G0032", confidence=70, reason="ours")
    assert [c.group for c in confirmed_cases(store, acc(SOUTH))] == ["G0032"]


def test_case_attribute_command(tmp_path: Path) -> None:
    home = tmp_path / "south"
    assert sw(home, "init", "--member", SOUTH).returncode == 0
    inc = sw(home, "incident", "open", "--name", "Wiper", "--tlp", "amber").stdout.strip()
    assert sw(home, "case", "observable", "add", inc, f"ipv4-addr:{C2}").returncode == 0
    r = sw(home, "case", "attribute", inc, "--group", "G0032", "--confidence", "80",
           "--reason", "same C2 as the 2025 case", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rel = json.loads(r.stdout)
    assert (rel["source_ref"], rel["confidence"], rel["x_shieldwall_basis"]) == (
        inc, 80, "confirmed-case")
    bad = sw(home, "case", "attribute", inc, "--group", "nobody we know", "--confidence",
             "80", "--reason", "x")
    assert bad.returncode == 2 and "no ATT&CK group" in bad.stderr
    # The node's later rankings count the case for its group.
    r = sw(home, "attribute", "-t", ",".join(COMMON), "--infrastructure", C2, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    top = json.loads(r.stdout)["candidates"][0]
    assert top["attack_id"] == "G0032"
    assert f"infrastructure:{C2} (confirmed case)" in top["shared"]
    # Withdrawn: a revoked version by its creator, and the case no longer counts.
    r = sw(home, "case", "attribute", inc, "--group", "G0032", "--withdraw")
    assert r.returncode == 0 and "(withdrawn)" in r.stdout, r.stdout + r.stderr
    r = sw(home, "attribute", "-t", ",".join(COMMON), "--infrastructure", C2, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert all("confirmed case" not in " ".join(c["shared"])
               for c in json.loads(r.stdout)["candidates"])
    r = sw(home, "case", "attribute", inc, "--group", "G0032", "--confidence", "60",
           "--reason", "recorded again", "--json")
    assert r.returncode == 0 and "revoked" not in json.loads(r.stdout), r.stdout + r.stderr
