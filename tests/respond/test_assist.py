"""Request -> dispatch -> hand-back on one store (the cell's view, where every node's
objects meet), on SQLite and PostgreSQL: who reads what at each step, who may version
what, and what the consultation log records."""

from __future__ import annotations

from typing import Any

import pytest

from shieldwall.assess.consultation import read_log
from shieldwall.assess.incidents import IncidentFields, open_incident
from shieldwall.policy import Member, member_identity_id
from shieldwall.respond import roster
from shieldwall.respond.assist import close, dispatch_team, list_requests, request_assistance
from shieldwall.respond.cases import (
    add_note,
    add_task,
    load_case,
    own_version,
    share_with_team,
    statistics,
    update_task,
)
from shieldwall.respond.model import (
    INCIDENT_CORE_EXTENSION,
    SHIELDWALL_EXTENSION,
    Marking,
    RespondError,
)
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP
from shieldwall.store import Access, Query, Store
from shieldwall.taxii.app import access_for

SOUTH, CELL, NORTH, EAST = "cert-south", "coordination", "cert-north", "cert-east"


def acc(name: str, tier: str = "ally") -> Access:
    return access_for(Member(name, tier))


def ids(store: Store, name: str, tier: str = "ally") -> set[str]:
    return {r.id for r in store.iter_query(Query(access=acc(name, tier)))}


def south_incident(store: Store, tlp: TLP = TLP.AMBER_STRICT) -> dict[str, Any]:
    return open_incident(store, SOUTH, member_identity_id(SOUTH),
                         IncidentFields(name="Ransomware at the grid operator",
                                        sector="energy"), tlp=tlp)


def test_request_dispatch_hand_back(store: Store) -> None:
    inc = south_incident(store)
    assert inc["id"] not in ids(store, CELL)  # AMBER+STRICT, named to nobody yet
    req = request_assistance(store, member=SOUTH, cell=CELL, incident_id=inc["id"],
                             needs=["forensics", "Malware-Analysis"], access=acc(SOUTH))
    assert req["needs"] == ["forensics", "malware-analysis"]
    assert req[AUDIENCE_PROPERTY] == [SOUTH, CELL]
    # the incident became a case and reaches the cell; nobody else reads either
    case = load_case(store, inc["id"], acc(CELL))
    assert case.incident is not None and case.request is not None
    core = case.incident["extensions"][INCIDENT_CORE_EXTENSION]
    assert core["investigation_status"] == "open"
    assert {inc["id"], req["id"]} <= ids(store, CELL)
    assert not {inc["id"], req["id"]} & (ids(store, NORTH) | ids(store, EAST))
    # the extension definition was published with the first respond write
    assert store.get(SHIELDWALL_EXTENSION) is not None
    assert SHIELDWALL_EXTENSION in ids(store, "partner-x", "partner")  # TLP:CLEAR

    with pytest.raises(RespondError, match="already asks"):
        request_assistance(store, member=SOUTH, cell=CELL, incident_id=inc["id"],
                           needs=["forensics"], access=acc(SOUTH))
    views = list_requests(store, acc(CELL))
    assert [v.request["id"] for v in views] == [req["id"]]
    assert views[0].status == "awaiting dispatch"

    with pytest.raises(RespondError, match="not on the roster"):
        dispatch_team(store, cell=CELL, request_id=req["id"], team=[f"{NORTH}:alice"],
                      lead=f"{NORTH}:alice", reason="closest team", by="duty officer",
                      access=acc(CELL))
    roster.add(store, f"{NORTH}:alice", name="Alice", skills=["forensics"])
    roster.add(store, f"{NORTH}:bob", name="Bob", skills=["malware-analysis"])
    with pytest.raises(RespondError, match="addressed to coordination"):
        dispatch_team(store, cell=EAST, request_id=req["id"], team=[f"{NORTH}:alice"],
                      lead=f"{NORTH}:alice", reason="x", by="x", access=acc(CELL))
    d = dispatch_team(store, cell=CELL, request_id=req["id"],
                      team=[f"{NORTH}:alice", f"{NORTH}:bob"], lead=f"{NORTH}:alice",
                      reason="north has done this twice", by="duty officer",
                      access=acc(CELL))
    assert d[AUDIENCE_PROPERTY] == [NORTH, SOUTH, CELL]
    assert [r.availability for r in roster.list_responders(store)] == ["on-mission"] * 2
    log = read_log(store, req["id"])
    assert [(e.decision, e.decided_by, e.recommendation) for e in log] == [
        ("dispatch", "duty officer", "request-assistance")]
    assert log[0].snapshot["dispatch"]["id"] == d["id"]
    # the team's member reads the dispatch, not yet what south named to the cell alone
    assert d["id"] in ids(store, NORTH) and d["id"] not in ids(store, EAST)
    assert inc["id"] not in ids(store, NORTH)
    # south's node shares its case items with the team: new versions, same level
    case = load_case(store, inc["id"], acc(SOUTH))
    assert case.audience() == (NORTH, SOUTH, CELL)
    shared = share_with_team(store, SOUTH, case)
    assert {o["id"] for o in shared if o["type"] != "relationship"} == {inc["id"], req["id"]}
    assert len(shared) == 3  # and the request's link to the case
    assert all(Marking.of(o).tlp == TLP.AMBER_STRICT for o in shared)
    assert {inc["id"], req["id"], d["id"]} <= ids(store, NORTH)
    assert not {inc["id"], req["id"], d["id"]} & ids(store, EAST)
    assert share_with_team(store, SOUTH, load_case(store, inc["id"], acc(SOUTH))) == []

    # working the case: the team's member adds a task; only its creator versions it
    case = load_case(store, inc["id"], acc(NORTH))
    t = add_task(store, NORTH, case, name="Image the domain controller",
                 assignee=f"{NORTH}:bob", due="2026-12-07T18:00:00Z")
    assert t["id"] in ids(store, SOUTH) and t["id"] not in ids(store, EAST)
    with pytest.raises(RespondError, match="only its creator"):
        update_task(store, SOUTH, t["id"], acc(SOUTH), outcome="successful")
    with pytest.raises(RespondError, match="task status"):
        update_task(store, NORTH, t["id"], acc(NORTH), outcome="done")
    v2 = update_task(store, NORTH, t["id"], acc(NORTH), outcome="successful")
    assert v2["outcome"] == "successful" and v2["modified"] > t["modified"]
    assert v2["x_shieldwall_assignee"] == f"{NORTH}:bob"
    assert len(store.versions(t["id"])) == 2
    add_note(store, SOUTH, load_case(store, inc["id"], acc(SOUTH)), "Bob's image is good",
             refs=[t["id"]])
    seen = load_case(store, inc["id"], acc(NORTH))
    assert [x["outcome"] for x in seen.tasks] == ["successful"] and len(seen.notes) == 1
    assert load_case(store, inc["id"], acc(EAST)).tasks == []

    # hand-back: the cell closes its dispatch, the requester its request
    with pytest.raises(RespondError, match="no assistance request"):
        close(store, member=EAST, request_id=req["id"], summary="x", access=acc(EAST))
    with pytest.raises(RespondError, match="only the requesting member or the cell"):
        close(store, member=NORTH, request_id=req["id"], summary="x", access=acc(NORTH))
    closed = close(store, member=CELL, request_id=req["id"], summary="contained",
                   access=acc(CELL), by="duty officer")
    assert closed["status"] == "closed" and closed["id"] == d["id"]
    assert [e.decision for e in read_log(store, req["id"])] == ["dispatch", "hand-back"]
    assert [r.availability for r in roster.list_responders(store)] == ["available"] * 2
    mine = close(store, member=SOUTH, request_id=req["id"], summary="thanks",
                 access=acc(SOUTH))
    assert mine["id"] == req["id"] and mine["status"] == "closed"
    assert list_requests(store, acc(SOUTH))[0].status == "closed"
    assert statistics(store, acc(CELL)) == {"x-shieldwall-assistance-request": {"closed": 1},
                                            "x-shieldwall-dispatch": {"closed": 1},
                                            "task": {"successful": 1}}
    assert statistics(store, acc(EAST)) == {"x-shieldwall-assistance-request": {},
                                            "x-shieldwall-dispatch": {}, "task": {}}


def test_only_own_incident_and_no_red(store: Store) -> None:
    inc = south_incident(store)
    with pytest.raises(RespondError, match="another member's incident"):
        request_assistance(store, member=EAST, cell=CELL, incident_id=inc["id"],
                           needs=["forensics"], access=Access(open_levels=frozenset(
                               int(t) for t in TLP)))
    with pytest.raises(RespondError, match="TLP:RED request"):
        request_assistance(store, member=SOUTH, cell=CELL, incident_id=inc["id"],
                           needs=["forensics"], access=acc(SOUTH), tlp=TLP.RED)
    red = south_incident(store, TLP.RED)
    with pytest.raises(RespondError, match="is TLP:RED"):
        request_assistance(store, member=SOUTH, cell=CELL, incident_id=red["id"],
                           needs=["forensics"], access=acc(SOUTH))
    with pytest.raises(RespondError, match="no incident"):
        request_assistance(store, member=NORTH, cell=CELL, incident_id=inc["id"],
                           needs=["forensics"], access=acc(NORTH))


def test_narrower_item_stays_narrow_after_dispatch(store: Store) -> None:
    """An item the member named to itself alone is not widened to the team."""
    inc = south_incident(store)
    req = request_assistance(store, member=SOUTH, cell=CELL, incident_id=inc["id"],
                             needs=["forensics"], access=acc(SOUTH))
    case = load_case(store, inc["id"], acc(SOUTH))
    own = add_note(store, SOUTH, case, "only for us", tlp=TLP.AMBER_STRICT)
    own_version(store, SOUTH, own["id"], acc(SOUTH), **{AUDIENCE_PROPERTY: [SOUTH]})
    roster.add(store, f"{NORTH}:alice", name="Alice", skills=["forensics"])
    dispatch_team(store, cell=CELL, request_id=req["id"], team=[f"{NORTH}:alice"],
                  lead=f"{NORTH}:alice", reason="r", by="p", access=acc(CELL))
    share_with_team(store, SOUTH, load_case(store, inc["id"], acc(SOUTH)))
    assert own["id"] not in ids(store, NORTH) and own["id"] not in ids(store, CELL)
    assert req["id"] in ids(store, NORTH)


def test_requests_page_by_cursor(store: Store) -> None:
    made = []
    for _ in range(3):
        inc = south_incident(store)
        made.append(request_assistance(store, member=SOUTH, cell=CELL, incident_id=inc["id"],
                                       needs=["forensics"], access=acc(SOUTH))["id"])
    seen, after = [], None
    while True:
        page = list_requests(store, acc(CELL), limit=2, after_seq=after)
        if not page:
            break
        seen += [v.request["id"] for v in page]
        after = page[-1].seq
    assert seen == made
    assert list_requests(store, acc(EAST)) == []
