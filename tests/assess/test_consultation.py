"""Consultation: thresholds to recommendation, a policy members cannot read, decisions
required from a named person and kept in an append-only log."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from shieldwall.assess.consultation import (
    AWAITING,
    DEFAULT_POLICY,
    LEVELS,
    POLICY_TYPE,
    PRINCIPLES,
    CampaignFacts,
    ConsultationError,
    ConsultationPolicy,
    Threshold,
    facts_from_store,
    load_policy,
    read_log,
    reader_access,
    recommend,
    record_decision,
    status_of,
    store_policy,
)
from shieldwall.node import member_identity_id
from shieldwall.policy.model import Member
from shieldwall.store import Provenance, Query, Store
from shieldwall.taxii.app import access_for

CELL = "coordination-cell"
POLICY = replace(DEFAULT_POLICY, readers=(CELL,))


def _facts(severity: float, members: int, sectors: tuple[str, ...] = (),
           confidence: float | None = None) -> CampaignFacts:
    return CampaignFacts("campaign--" + str(uuid.UUID(int=1)), severity,
                         tuple(f"m{i}" for i in range(members)), sectors, confidence)


@pytest.mark.parametrize("facts, level", [
    (_facts(20, 5, ("energy", "health")), "monitor"),           # low severity
    (_facts(90, 1, ("energy", "health")), "monitor"),           # one member: no breadth
    (_facts(40, 2), "coordinate"),
    (_facts(59.9, 4, ("energy",)), "coordinate"),               # just under assistance
    (_facts(60, 2, ("energy",)), "request-assistance"),
    (_facts(80, 3, ("energy", "media")), "request-assistance"),  # one critical sector only
    (_facts(80, 3, ("energy", "elections")), "request-assistance"),  # no attribution
    (_facts(80, 3, ("energy", "elections"), 0.59), "request-assistance"),
    (_facts(75, 3, ("energy", "elections"), 0.6), "convene-consultation"),
])
def test_thresholds_map_a_campaign_to_a_recommendation(facts: CampaignFacts, level: str
                                                       ) -> None:
    rec = recommend(facts, POLICY)
    assert rec.level == level
    assert rec.status == AWAITING
    assert rec.principles == list(PRINCIPLES)
    # Every threshold is shown with what was needed and found.
    assert {c.level for c in rec.checks} == set(LEVELS[1:])
    assert ("conventional" in rec.response_options) == (level == "convene-consultation")
    assert "cyber" in rec.response_options


def test_the_cell_sets_its_own_thresholds() -> None:
    strict = replace(POLICY, thresholds={"coordinate": Threshold(min_severity=90,
                                                                 min_members=5)})
    assert recommend(_facts(60, 2, ("energy",)), strict).level == "monitor"
    with pytest.raises(ConsultationError, match="roles"):
        ConsultationPolicy("v", (), (), {})
    with pytest.raises(ConsultationError, match="unknown level"):
        ConsultationPolicy("v", (CELL,), (), {"nuke": Threshold(0)})


def test_policy_is_never_readable_by_members(store: Store) -> None:
    store_policy(store, POLICY, cell=CELL, created_by_ref=member_identity_id(CELL))
    assert load_policy(store, cell=CELL, access=reader_access(CELL)) == POLICY
    for member in (Member("cert-a", "ally"), Member("cert-b", "partner", frozenset({"eu"}))):
        access = access_for(member)  # what TAXII serves this member
        with pytest.raises(ConsultationError, match="TLP:RED"):
            load_policy(store, cell=CELL, access=access)
        assert store.query(Query(types=[POLICY_TYPE], access=access)).rows == []
        assert store.query(Query(versions="all", access=access)).rows == []
    # Without any access filter it is there: the refusal above is the access rule's.
    assert len(store.query(Query(types=[POLICY_TYPE])).rows) == 1


def _campaign(store: Store, confidence: int | None) -> str:
    cid = f"campaign--{uuid.uuid4()}"
    ts = "2024-05-02T00:00:00.000Z"
    objs = [{
        "type": "campaign", "spec_version": "2.1", "id": cid, "created": ts, "modified": ts,
        "name": "Candidate", "x_shieldwall_members": ["cert-a", "cert-b", "cert-c"],
        "x_shieldwall_severity": {"score": 82.0, "members": ["cert-a", "cert-b", "cert-c"],
                                  "sector_names": ["elections", "energy"]},
    }]
    if confidence is not None:
        objs.append({"type": "relationship", "spec_version": "2.1",
                     "id": f"relationship--{uuid.uuid4()}", "created": ts, "modified": ts,
                     "relationship_type": "attributed-to", "source_ref": cid,
                     "target_ref": f"intrusion-set--{uuid.uuid4()}", "confidence": confidence})
    store.put_many(objs, Provenance(CELL, "local"))
    return cid


def test_facts_come_from_the_campaign_and_its_attribution(sqlite_store: Store) -> None:
    cid = _campaign(sqlite_store, 70)
    facts = facts_from_store(sqlite_store, cid)
    assert facts.severity == 82.0 and len(facts.members) == 3
    assert facts.attribution_confidence == pytest.approx(0.7)
    assert recommend(facts, POLICY).level == "convene-consultation"
    weak = facts_from_store(sqlite_store, _campaign(sqlite_store, None))
    assert recommend(weak, POLICY).level == "request-assistance"


def test_a_named_person_must_decide_with_reasons(sqlite_store: Store) -> None:
    rec = recommend(_facts(80, 3, ("energy", "elections"), 0.8), POLICY)
    for kw in ({"by": " ", "decision": "coordinate", "reason": "x"},
               {"by": "A. Analyst", "decision": "coordinate", "reason": ""},
               {"by": "A. Analyst", "decision": "launch", "reason": "x"}):
        with pytest.raises(ConsultationError):
            record_decision(sqlite_store, rec, **kw)
    assert read_log(sqlite_store) == []
    assert status_of(sqlite_store, rec.campaign_id) == AWAITING
    d = record_decision(sqlite_store, rec, by="Col. J. Doe", decision="request-assistance",
                        reason="Attribution not yet agreed by all allies; restraint first.")
    assert d.recommendation == "convene-consultation" and d.decision == "request-assistance"
    assert d.snapshot["recommendation"] == "convene-consultation"
    assert status_of(sqlite_store, rec.campaign_id).startswith(
        "decided: request-assistance by Col. J. Doe")


def test_audit_log_is_append_only_even_for_direct_sql(store: Store) -> None:
    rec = recommend(_facts(45, 2), POLICY)
    record_decision(store, rec, by="A", decision="coordinate", reason="first")
    record_decision(store, rec, by="B", decision="monitor", reason="second")
    before = read_log(store)
    for sql in ("UPDATE consult_log SET decision = 'no-action'",
                "UPDATE consult_log SET reason = 'rewritten' WHERE seq = 1",
                "DELETE FROM consult_log", "DELETE FROM consult_log WHERE seq = 2"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.exec_driver_sql(sql)
    after = read_log(store)
    assert after == before
    assert [e.reason for e in after] == ["first", "second"]
    assert after[0].seq < after[1].seq


def test_cli_policy_show_decide_log(tmp_path: Path) -> None:
    from shieldwall.cli.main import app

    home = str(tmp_path / "cell")
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--member", CELL, "--home", home]).exit_code == 0
    res = runner.invoke(app, ["consult", "policy", "--init", "--home", home, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["readers"] == [CELL]
    res = runner.invoke(app, ["consult", "policy", "--home", home, "--as", "cert-a"])
    assert res.exit_code != 0 and isinstance(res.exception, ConsultationError)
    store = Store.open(f"sqlite:///{tmp_path / 'cell' / 'shieldwall.db'}")
    cid = _campaign(store, 75)
    store.close()
    res = runner.invoke(app, ["consult", "show", cid, "--home", home, "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["recommendation"] == "convene-consultation"
    assert shown["status"] == AWAITING
    res = runner.invoke(app, ["consult", "decide", cid, "--home", home, "--by", "Col. J. Doe",
                              "--decision", "convene-consultation", "--reason",
                              "Three allies hit in elections and energy; confident attribution."])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["consult", "log", "--home", home, "--json"])
    [entry] = json.loads(res.output)
    assert entry["decided_by"] == "Col. J. Doe" and entry["campaign_id"] == cid
    res = runner.invoke(app, ["consult", "show", cid, "--home", home, "--json"])
    assert json.loads(res.output)["status"].startswith("decided: convene-consultation")


def test_cli_correlate_publishes_a_candidate_campaign_to_consult_on(tmp_path: Path) -> None:
    from shieldwall.cli.main import app

    home = str(tmp_path / "cell")
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--member", CELL, "--home", home]).exit_code == 0
    assert runner.invoke(app, ["consult", "policy", "--init", "--home", home]).exit_code == 0
    store = Store.open(f"sqlite:///{tmp_path / 'cell' / 'shieldwall.db'}")
    ind = {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
           "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z",
           "pattern": "[domain-name:value = 'c2.example']", "pattern_type": "stix",
           "valid_from": "2024-01-01T00:00:00Z"}
    store.put(ind, Provenance("feed"))
    for member in ("cert-a", "cert-b"):
        ts = "2024-05-01T00:00:00.000Z"
        store.put({"type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
                   "created": ts, "modified": ts, "first_seen": ts, "last_seen": ts,
                   "sighting_of_ref": ind["id"], "count": 3,
                   "created_by_ref": member_identity_id(member)}, Provenance(member, "taxii"))
    store.close()
    res = runner.invoke(app, ["consult", "correlate", "--home", home, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    [campaign] = out["campaigns"]
    assert campaign["x_shieldwall_members"] == ["cert-a", "cert-b"]
    res = runner.invoke(app, ["consult", "show", campaign["id"], "--home", home, "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["status"] == AWAITING and shown["recommendation"] in LEVELS


def test_cli_sets_a_policy_naming_only_other_roles(tmp_path: Path) -> None:
    """The operator may set a policy its own member cannot read: it is echoed as stored,
    and then shown only to the roles it names."""
    from shieldwall.cli.main import app

    home = str(tmp_path / "cell")
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--member", CELL, "--home", home]).exit_code == 0
    pol = tmp_path / "policy.json"
    pol.write_text(json.dumps({**POLICY.as_json(), "readers": ["duty-officer"]}))
    res = runner.invoke(app, ["consult", "policy", "--file", str(pol), "--home", home,
                              "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["readers"] == ["duty-officer"]
    res = runner.invoke(app, ["consult", "policy", "--home", home])
    assert res.exit_code != 0 and isinstance(res.exception, ConsultationError)
    res = runner.invoke(app, ["consult", "policy", "--home", home, "--as", "duty-officer",
                              "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["readers"] == ["duty-officer"]


def test_a_teams_attribution_of_one_of_the_campaigns_incidents_counts(sqlite_store: Store
                                                                       ) -> None:
    """The tool's own confidence stays below 0.5 on ATT&CK evidence (honest calibration),
    so an analyst's word is what can meet the convening threshold: a team that confirmed
    the attribution of an incident the campaign holds (`case attribute`) speaks for it."""
    store = sqlite_store
    cid = _campaign(store, None)
    camp = store.get(cid).obj()
    incident = f"incident--{uuid.uuid4()}"
    ts = "2026-01-01T00:00:00.000Z"
    store.put_many([camp | {"modified": "2026-01-02T00:00:00.000Z",
                            "x_shieldwall_object_refs": [incident]},
                    {"type": "relationship", "spec_version": "2.1",
                     "id": f"relationship--{uuid.uuid4()}", "created": ts, "modified": ts,
                     "relationship_type": "attributed-to", "source_ref": incident,
                     "target_ref": f"intrusion-set--{uuid.uuid4()}", "confidence": 80},
                    # an attribution of an incident outside the campaign does not count
                    {"type": "relationship", "spec_version": "2.1",
                     "id": f"relationship--{uuid.uuid4()}", "created": ts, "modified": ts,
                     "relationship_type": "attributed-to",
                     "source_ref": f"incident--{uuid.uuid4()}",
                     "target_ref": f"intrusion-set--{uuid.uuid4()}", "confidence": 95}],
                   Provenance(CELL, "local"))
    facts = facts_from_store(store, cid)
    assert facts.attribution_confidence == pytest.approx(0.8)
    assert recommend(facts, POLICY).level == "convene-consultation"
