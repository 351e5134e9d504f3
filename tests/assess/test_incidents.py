"""Incidents: STIX incident + OASIS Incident Core, versions on update, CLI round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shieldwall.assess.incidents import (
    FIRST_SEEN,
    SECTOR,
    SIGHTING_REFS,
    TECHNIQUES,
    IncidentError,
    IncidentFields,
    core,
    get_incident,
    list_incidents,
    new_incident,
    open_incident,
    related_refs,
    score_of,
    update_incident,
)
from shieldwall.assess.severity import INCIDENT_CORE_EXTENSION, score_incident
from shieldwall.node import member_identity_id
from shieldwall.stix.markings import TLP, resolve_tlp
from shieldwall.stix.timestamps import parse_ts
from shieldwall.store import Provenance, Query, Store
from tests.factories import indicator, sid

MEMBER = "cert-a"
IDENT = member_identity_id(MEMBER)


def _fields(**kw: object) -> IncidentFields:
    base: dict[str, object] = {
        "name": "Wiper at a hospital", "sector": "healthcare",
        "determination": "successful-attempt", "recoverability": "extended",
        "impacted_entity_counts": {"organizations": 1, "information-systems": 120},
        "techniques": ["T1485", "T1566.001"], "first_seen": "2024-03-01T08:00:00Z",
    }
    base.update(kw)
    return IncidentFields(**base)  # type: ignore[arg-type]


def test_incident_carries_incident_core_extension_with_its_property_names() -> None:
    inc = new_incident(IDENT, _fields())[0]
    assert inc["type"] == "incident" and inc["spec_version"] == "2.1"
    ext = inc["extensions"][INCIDENT_CORE_EXTENSION]
    assert INCIDENT_CORE_EXTENSION == "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
    assert ext == {
        "extension_type": "property-extension", "determination": "successful-attempt",
        "investigation_status": "new", "recoverability": "extended",
        "impacted_entity_counts": {"organizations": 1, "information-systems": 120},
    }
    # Shieldwall's own fields stay outside the extension (its schema forbids extra ones).
    assert inc[SECTOR] == "healthcare" and inc[TECHNIQUES] == ["T1485", "T1566.001"]
    assert inc[FIRST_SEEN] == "2024-03-01T08:00:00Z"
    assert inc["created_by_ref"] == IDENT
    assert resolve_tlp(inc, TLP.CLEAR) == TLP.AMBER


@pytest.mark.parametrize("kw, message", [
    ({"determination": "confirmed"}, "determination"),
    ({"recoverability": "soon"}, "recoverability"),
    ({"criticality": 101}, "criticality"),
    ({"techniques": ["phishing"]}, "technique"),
    ({"indicator_refs": ["malware--" + "1" * 8 + "-1111-4111-8111-" + "1" * 12]}, "indicator"),
    ({"observables": ["ip:1.2.3.4"]}, "observable"),
    ({"impacted_entity_counts": {"Organizations": 1}}, "impacted"),
])
def test_values_outside_the_extension_vocabulary_are_refused(kw: dict, message: str) -> None:
    with pytest.raises(IncidentError, match=message):
        new_incident(IDENT, _fields(**kw))


def test_links_to_indicators_sightings_and_observables(store: Store) -> None:
    ind = indicator("203.0.113.9")
    store.put(ind, Provenance("feed"))
    sighting = sid("sighting", "3")
    inc = open_incident(store, MEMBER, IDENT, _fields(
        indicator_refs=[ind["id"]], sighting_refs=[sighting],
        observables=["ipv4-addr:203.0.113.9", "file:SHA-256=AB12"]))
    assert inc[SIGHTING_REFS] == [sighting]
    targets = related_refs(store, inc["id"])
    assert ind["id"] in targets
    od_ids = [t for t in targets if t.startswith("observed-data--")]
    assert len(od_ids) == 1
    od = store.get(od_ids[0]).obj()  # type: ignore[union-attr]
    scos = [store.get(r).obj() for r in od["object_refs"]]  # type: ignore[union-attr]
    assert {"value": "203.0.113.9"}.items() <= next(
        s for s in scos if s["type"] == "ipv4-addr").items()
    assert next(s for s in scos if s["type"] == "file")["hashes"] == {"SHA-256": "ab12"}
    row = store.get(inc["id"])
    assert row is not None and row.source == MEMBER and row.channel == "local"


def test_update_writes_a_new_version_and_keeps_history(store: Store) -> None:
    inc = open_incident(store, MEMBER, IDENT, _fields())
    sev = score_incident({"functional_impact": "significant"})
    new = update_incident(store, MEMBER, inc["id"], IncidentFields(
        investigation_status="closed", techniques=["T1059"]), severity=sev)
    assert new["id"] == inc["id"]
    assert parse_ts(new["modified"]) > parse_ts(inc["modified"])
    assert new["created"] == inc["created"]
    versions = store.versions(inc["id"])
    assert [v.obj()["modified"] for v in versions] == [inc["modified"], new["modified"]]
    latest = get_incident(store, inc["id"])
    assert core(latest)["investigation_status"] == "closed"
    assert core(latest)["determination"] == "successful-attempt"  # unchanged fields stay
    assert latest[TECHNIQUES] == ["T1485", "T1566.001", "T1059"]
    assert score_of(latest, "nciss-v1") == sev.score
    assert [i["id"] for i in list_incidents(store, status="closed")] == [inc["id"]]
    assert list_incidents(store, status="new") == []


def test_unknown_incident_is_a_clear_error(store: Store) -> None:
    with pytest.raises(IncidentError, match="incident list"):
        get_incident(store, sid("incident", "9"))


def test_cli_open_update_show_list(tmp_path: Path) -> None:
    from shieldwall.cli.main import app

    home = str(tmp_path / "node")
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--member", MEMBER, "--home", home]).exit_code == 0
    res = runner.invoke(app, [
        "incident", "open", "--home", home, "--name", "Phishing wave", "--sector", "energy",
        "--determination", "suspected", "-t", "T1566.001", "--observable",
        "domain-name:login-update.example", "--factor", "functional_impact=minimal",
        "--recoverability", "extended"])
    assert res.exit_code == 0, res.output
    inc_id = res.output.strip()
    assert inc_id.startswith("incident--")
    res = runner.invoke(app, ["incident", "show", inc_id, "--home", home, "--json"])
    breakdown = core(json.loads(res.output))["scores"][0]["x_shieldwall_breakdown"]
    factors = {f["factor"]: f for f in breakdown["factors"]}
    assert factors["recoverability"]["answer"] == "extended"  # from the incident itself
    assert not factors["recoverability"]["imputed"]
    assert factors["functional_impact"]["answer"] == "minimal"
    res = runner.invoke(app, ["incident", "update", inc_id, "--home", home, "--status", "open",
                              "--determination", "successful-attempt"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["incident", "show", inc_id, "--home", home])
    assert res.exit_code == 0 and "successful-attempt" in res.output and "energy" in res.output
    res = runner.invoke(app, ["incident", "list", "--home", home, "--status", "open", "--json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.output)
    assert [i["id"] for i in listed] == [inc_id] and listed[0]["name"] == "Phishing wave"
    res = runner.invoke(app, ["incident", "list", "--home", home, "--status", "closed", "--json"])
    assert json.loads(res.output) == []
    s = Store.open(f"sqlite:///{tmp_path / 'node' / 'shieldwall.db'}")
    try:
        rows = s.query(Query(ids=[inc_id], versions="all")).rows
    finally:
        s.close()
    assert len(rows) == 2
