"""The rapid-reaction model: its objects are valid STIX 2.1 (the OASIS schemas, and the
full OASIS validator for the new types), each carries its own marking, and a malformed one
of any respond type is refused by the validation every inbound path applies."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from shieldwall.detect.hunt import Hunter
from shieldwall.detect.index import IndicatorIndex
from shieldwall.detect.retro import TelemetryStore
from shieldwall.detect.sightings import Sightings
from shieldwall.keys.signing import node_keys
from shieldwall.respond.cases import Case
from shieldwall.respond.custody import custody_event
from shieldwall.respond.evidence import evidence_item
from shieldwall.respond.hunting import hunt_case, pattern_of
from shieldwall.respond.model import (
    EVENT_EXTENSION,
    IMPACT_EXTENSION,
    INCIDENT_CORE_EXTENSION,
    SHIELDWALL_EXTENSION,
    TASK_EXTENSION,
    Marking,
    RespondError,
    assistance_request,
    case_audience,
    dispatch,
    event,
    extension_definition,
    impact,
    link,
    next_version,
    note,
    observable,
    observable_text,
    parse_responder,
    published_objects,
    task,
)
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, resolve_tlp
from shieldwall.stix.validate import object_error, pattern_error, validate_strict

CONN = Path(__file__).resolve().parents[1] / "data" / "zeek" / "json" / "conn.log"
CASE = "incident--0b7c6d1e-9a0f-4a59-8a53-3f5b0d1e2c44"
M = Marking(TLP.AMBER_STRICT, case_audience("cert-south", "coordination",
                                            ["cert-north:alice"]))


def test_official_extension_ids() -> None:
    """The Incident Core suite's ids (oasis-open/cti-stix-common-objects,
    extension-definition-specifications/incident-core): never invented here."""
    assert INCIDENT_CORE_EXTENSION == "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
    assert EVENT_EXTENSION == "extension-definition--4ca6de00-5b0d-45ef-a1dc-ea7279ea910e"
    assert TASK_EXTENSION == "extension-definition--2074a052-8be4-4932-849e-f5e7798e0030"
    assert IMPACT_EXTENSION == "extension-definition--7cc33dd6-f6a1-489b-98ea-522d351d71b9"


def _request() -> dict[str, Any]:
    return assistance_request(requester="cert-south", cell="coordination", incident_id=CASE,
                              needs=["forensics"], marking=M)


def _evidence() -> dict[str, Any]:
    return evidence_item(creator="cert-south", case_id=CASE, name="disk.e01",
                         sha256="ab" * 32, size=1024, kept_at="locker 3",
                         collected_by="cert-south:carol", collected_how="write-blocked image",
                         marking=M)


def _all() -> dict[str, dict[str, Any]]:
    req = _request()
    return {
        "request": req,
        "dispatch": dispatch(request=req, cell="coordination", team=["cert-north:alice"],
                             lead="cert-north:alice", reason="r"),
        "task": task(creator="cert-north", name="t", marking=M, assignee="cert-north:alice",
                     due="2026-12-07T00:00:00Z", priority=80),
        "event": event(creator="cert-north", name="e", marking=M, start="2026-12-05T10:00:00Z",
                       fidelity="minute", source="zeek",
                       sighting_refs=["sighting--0b7c6d1e-9a0f-4a59-8a53-3f5b0d1e2c45"]),
        "impact": impact(creator="cert-south", category="availability", marking=M,
                         details={"availability_impact": 70}),
        "note": note(creator="cert-south", case_id=CASE, content="n", marking=M),
        "observed-data": observable("url:HTTP://Evil.EXAMPLE/Path", creator="cert-north",
                                    marking=M),
        "evidence": _evidence(),
        "custody": custody_event(keys=node_keys(Path(tempfile.mkdtemp()), "cert-south"),
                                 case_id=CASE, evidence=_evidence(), action="collected",
                                 actor="cert-south:carol", chain_heads={}),
        "definition": extension_definition(),
    }


@pytest.mark.parametrize("name", list(_all()))
def test_every_object_is_valid_and_marked(name: str) -> None:
    obj = _all()[name]
    assert object_error(obj) is None
    assert object_error(link(obj, CASE)) is None
    assert validate_strict(obj) is None, name
    if name != "definition":
        assert resolve_tlp(obj) == TLP.AMBER_STRICT
        assert obj[AUDIENCE_PROPERTY] == ["cert-north", "cert-south", "coordination"]
        assert Marking.of(link(obj, CASE)) == Marking.of(obj)


# (object, property to break, broken value): each must be refused by validation.
BREAKS = [
    ("request", "requester", "not a member!"), ("request", "status", "pending"),
    ("request", "needs", []), ("request", "incident_ref", "indicator--0b7c6d1e-9a0f-4a59-"
                                                          "8a53-3f5b0d1e2c44"),
    ("request", "extensions", None), ("request", "created_by_ref", None),
    ("dispatch", "team", ["alice"]), ("dispatch", "lead", "alice"),
    ("dispatch", "reason", ""), ("dispatch", "status", "sent"), ("dispatch", "cell", None),
    ("dispatch", "request_ref", "incident--0b7c6d1e-9a0f-4a59-8a53-3f5b0d1e2c44"),
    ("task", "outcome", "done"), ("task", "outcome", None), ("task", "priority", 101),
    ("task", "x_shieldwall_assignee", "alice"), ("task", "x_shieldwall_due", "tomorrow"),
    ("task", "extensions", {"extension-definition--2074a052-8be4-4932-849e-f5e7798e0030":
                            {"extension_type": "property-extension"}}),
    ("event", "status", "happened"), ("event", "status", None),
    ("event", "start_time_fidelity", "week"), ("event", "sighting_refs", ["indicator--x"]),
    ("event", "extensions", {}),
    ("impact", "impact_category", None), ("impact", "extensions", None),
    ("evidence", "case_ref", None), ("custody", "case_ref", "note--x"),
    ("note", "object_refs", None), ("observed-data", "number_observed", 0),
]


@pytest.mark.parametrize(("name", "prop", "value"), BREAKS)
def test_a_malformed_item_is_refused(name: str, prop: str, value: Any) -> None:
    obj = dict(_all()[name])
    if value is None:
        obj.pop(prop)
    else:
        obj[prop] = value
    assert object_error(obj) is not None, (name, prop, value)


def test_constructors_refuse_what_the_schema_would() -> None:
    req = _request()
    with pytest.raises(RespondError, match="lead"):
        dispatch(request=req, cell="coordination", team=["cert-north:alice"],
                 lead="cert-north:bob", reason="r")
    with pytest.raises(RespondError, match="addressed to"):
        dispatch(request=req, cell="cert-east", team=["cert-east:eve"], lead="cert-east:eve",
                 reason="r")
    with pytest.raises(RespondError, match="reasoning"):
        dispatch(request=req, cell="coordination", team=["cert-north:alice"],
                 lead="cert-north:alice", reason=" ")
    with pytest.raises(RespondError, match="incident id"):
        assistance_request(requester="a", cell="b", incident_id="indicator--x", needs=["x"],
                           marking=M)
    with pytest.raises(RespondError, match="need"):
        assistance_request(requester="a", cell="b", incident_id=CASE, needs=["Two Words"],
                           marking=M)
    with pytest.raises(RespondError, match="MEMBER:PERSON"):
        parse_responder("alice")
    with pytest.raises(RespondError, match="ALGORITHM"):
        observable("file:CRC32=00ff00ff", creator="a", marking=M)
    with pytest.raises(RespondError, match="at most"):
        note(creator="a", case_id=CASE, content="x" * 20_001, marking=M)


def test_observables_are_canonical() -> None:
    def text(value: str) -> str | None:
        return observable_text(observable(value, creator="a", marking=M))

    assert text("domain-name:Bücher.EXAMPLE.") == "domain-name:xn--bcher-kva.example"
    assert text("ipv6-addr:2001:DB8:0:0:0:0:0:1") == "ipv6-addr:2001:db8::1"
    assert text("url:HTTP://Evil.EXAMPLE/Path") == "url:http://evil.example/Path"
    assert text("email-addr:Boss@Example.COM") == "email-addr:Boss@example.com"
    assert text("file:sha256=" + "AB" * 32) == "file:SHA-256=" + "ab" * 32
    # the same value is the same SCO id however it was written
    a = observable("domain-name:Bücher.example", creator="a", marking=M)["objects"]["0"]
    b = observable("domain-name:xn--bcher-kva.EXAMPLE", creator="b", marking=M)["objects"]["0"]
    assert a["id"] == b["id"]
    for v in ("domain-name:a'b.example", "file:MD5=" + "0" * 32, "url:http://x.example/'q"):
        assert pattern_error(str(pattern_of(str(text(v))))) is None, v


def test_versions_keep_id_creator_and_order() -> None:
    t = task(creator="cert-north", name="t", marking=M)
    v2 = next_version(t, outcome="successful", x_shieldwall_assignee=None,
                      created_by_ref="identity--00000000-0000-4000-8000-000000000000")
    assert (v2["id"], v2["created"], v2["created_by_ref"]) == (t["id"], t["created"],
                                                               t["created_by_ref"])
    assert v2["modified"] > t["modified"] and v2["outcome"] == "successful"
    assert object_error(v2) is None


def test_published_definition_is_clear_and_the_same_everywhere() -> None:
    a, b = published_objects(), published_objects()
    assert a == b and a[-1]["id"] == SHIELDWALL_EXTENSION
    assert all(resolve_tlp(o) == TLP.CLEAR for o in a)
    assert a[-1]["extension_types"] == ["new-sdo"]


def test_hunting_a_case_in_logs_and_in_stored_telemetry(tmp_path: Path) -> None:
    hit = observable("ipv4-addr:10.18.20.8", creator="a", marking=M)
    miss = observable("domain-name:never.example", creator="a", marking=M)
    case = Case(CASE, None, observed=[hit, miss])
    found = hunt_case(case, paths=[CONN])
    assert [(h.observable, h.hits) for h in found] == [("ipv4-addr:10.18.20.8", 46)]
    assert found[0].observed_data_id == hit["id"]
    # the same telemetry kept by a hunt, retro-hunted for the case
    telemetry = tmp_path / "telemetry"
    keeper = Hunter(IndicatorIndex(), Sightings("identity--00000000-0000-4000-8000-"
                                                "000000000000", TLP.AMBER),
                    TelemetryStore(telemetry).write)
    keeper.run([CONN])
    again = hunt_case(case, telemetry=telemetry, since_us=20 * 365 * 86_400 * 1_000_000)
    assert [(h.observable, h.hits) for h in again] == [("ipv4-addr:10.18.20.8", 46)]
    assert hunt_case(Case(CASE, None, observed=[miss]), paths=[CONN]) == []
