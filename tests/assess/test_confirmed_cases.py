"""The alliance's confirmed cases as evidence for attribution: what a case confirmed for a
group (its infrastructure, malware, techniques) counts for that group in later rankings;
without confirmed cases the ranking is ATT&CK's alone."""

from __future__ import annotations

from typing import Any

from shieldwall.assess.actors import attack_catalog
from shieldwall.assess.attribution import (
    Evidence,
    ProfileSet,
    evidence_from_store,
    load_calibration,
    rank,
)
from shieldwall.assess.confirmed import confirmed_cases, confirmed_evidence
from shieldwall.assess.incidents import IncidentFields, open_incident
from shieldwall.policy import Member, member_identity_id
from shieldwall.respond.model import Marking, link, observable
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.store import Access, Provenance, Store
from shieldwall.taxii.app import access_for
from tests.factories import indicator

SOUTH = "cert-south"
C2, BENIGN = "203.0.113.77", "198.51.100.53"
COMMON = ("T1566.001", "T1059.001", "T1105")  # shared by many groups
GREEN = Marking(TLP.GREEN)
TS = "2026-11-01T10:00:00.000Z"


def acc(name: str) -> Access:
    return access_for(Member(name, "ally"))


def _put(store: Store, *objs: dict[str, Any]) -> None:
    result = store.put_many(list(objs), Provenance(SOUTH, "local"))
    assert not result.rejected, result.rejected


def _confirmed_case(store: Store, gid: str, *items: dict[str, Any],
                    confidence: int = 80) -> str:
    """cert-south's closed GREEN case with `items`, attributed to `gid` by its team."""
    inc = open_incident(store, SOUTH, member_identity_id(SOUTH),
                        IncidentFields(name="Last year's wiper", sector="energy"),
                        tlp=TLP.GREEN)
    _put(store, *[o for item in items for o in (item, link(item, inc["id"]))])
    _put(store, {
        "type": "relationship", "spec_version": "2.1", "id": new_id("relationship"),
        "created_by_ref": member_identity_id(SOUTH), "created": TS, "modified": TS,
        "relationship_type": "attributed-to", "source_ref": inc["id"],
        "target_ref": attack_catalog().groups[gid].stix_id, "confidence": confidence,
        "description": "confirmed by the team", "x_shieldwall_basis": "confirmed-case",
        "object_marking_refs": [tlp_marking_ref(TLP.GREEN)]})
    return str(inc["id"])


def _attack(kind: str, ext_id: str, name: str) -> dict[str, Any]:
    return {"type": kind, "spec_version": "2.1", "id": new_id(kind),
            "created_by_ref": member_identity_id(SOUTH), "created": TS, "modified": TS,
            "name": name, **({"is_family": True} if kind == "malware" else {}),
            "external_references": [{"source_name": "mitre-attack", "external_id": ext_id}],
            "object_marking_refs": [tlp_marking_ref(TLP.GREEN)]}


def _position(candidates: list[Any], gid: str) -> int | None:
    return next((i + 1 for i, c in enumerate(candidates) if c.attack_id == gid), None)


def test_a_confirmed_case_s_infrastructure_moves_its_group_up(store: Store) -> None:
    """A new incident sharing a command-and-control address with a case the alliance
    confirmed as Lazarus Group (G0032) ranks Lazarus first; ATT&CK alone cannot."""
    warned = indicator(BENIGN, tlp=TLP.GREEN, created_by_ref=member_identity_id(SOUTH))
    _confirmed_case(store, "G0032",
                    observable(f"ipv4-addr:{C2}", creator=SOUTH, marking=GREEN), warned)
    store.tag([(warned["id"], "warninglist", "public resolvers")])
    new = open_incident(store, SOUTH, member_identity_id(SOUTH),
                        IncidentFields(name="Wiper again", sector="health",
                                       techniques=list(COMMON)), tlp=TLP.GREEN)
    _put(store, *(lambda od: (od, link(od, new["id"])))(
        observable(f"ipv4-addr:{C2}", creator=SOUTH, marking=GREEN)))
    evidence, _ = evidence_from_store(store, new["id"])
    assert set(evidence.techniques) == set(COMMON) and evidence.infrastructure == (C2,)

    confirmed = confirmed_evidence(store, acc(SOUTH), exclude=[new["id"]])
    assert set(confirmed) == {"G0032"}
    # The warning-listed indicator of the case says nothing of who attacked.
    assert confirmed["G0032"].infrastructure == (C2,)
    before = rank(evidence, limit=200)
    after = rank(evidence, confirmed=confirmed, limit=200)
    assert (_position(before.candidates, "G0032") or 999) > 1
    assert _position(after.candidates, "G0032") == 1
    assert f"infrastructure:{C2} (confirmed case)" in after.candidates[0].shared
    assert after.candidates[0].score > (
        before.candidates[_position(before.candidates, "G0032") - 1].score  # type: ignore[operator]
        if _position(before.candidates, "G0032") else 0.0)
    # A shared value the case never showed (the warning-listed one) moves nothing.
    other = Evidence(COMMON, (), (BENIGN,))
    assert [c.attack_id for c in rank(other, confirmed=confirmed).candidates] == [
        c.attack_id for c in rank(other).candidates]


def test_a_confirmed_case_s_malware_and_techniques_join_its_group_s_profile(
        store: Store) -> None:
    # S0366 (WannaCry) and T1491.001 are not part of APT29's (G0016) documented profile.
    catalog = attack_catalog()
    assert "S0366" not in catalog.groups["G0016"].software
    _confirmed_case(store, "G0016", _attack("malware", "S0366", "WannaCry"),
                    _attack("attack-pattern", "T1491.001", "Internal Defacement"))
    confirmed = confirmed_evidence(store, acc(SOUTH))
    assert confirmed == {"G0016": Evidence(("T1491.001",), ("S0366",), ())}
    profiles = ProfileSet.build(weights=load_calibration().weights, confirmed=confirmed)
    assert {"S0366", "T1491.001"} <= set(profiles.profiles["G0016"].direct)
    query = Evidence(("T1491.001", *COMMON), ("S0366",))
    before = _position(rank(query, limit=200).candidates, "G0016")
    after = _position(rank(query, confirmed=confirmed, limit=200).candidates, "G0016")
    assert after is not None and (before is None or after < before)


def test_without_confirmed_cases_the_ranking_is_attack_s_alone(store: Store) -> None:
    _put(store, observable(f"ipv4-addr:{C2}", creator=SOUTH, marking=GREEN))
    assert confirmed_cases(store, acc(SOUTH)) == []
    assert confirmed_evidence(store, acc(SOUTH)) == {}
    query = Evidence(COMMON, (), (C2,))
    plain = rank(query)
    again = rank(query, confirmed={})
    assert [(c.attack_id, c.score, c.confidence) for c in again.candidates] == [
        (c.attack_id, c.score, c.confidence) for c in plain.candidates]
