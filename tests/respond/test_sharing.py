"""The requester's node shares a case with its team when the dispatch arrives
(`respond.sharing`, run by `serve`), once, and only the requester's own cases."""

from __future__ import annotations

from shieldwall.policy import Member
from shieldwall.respond import roster
from shieldwall.respond.assist import dispatch_team, request_assistance
from shieldwall.respond.sharing import share_dispatched
from shieldwall.store import Access, Query, Store
from shieldwall.taxii.app import access_for
from tests.respond.test_assist import CELL, EAST, NORTH, SOUTH, south_incident


def acc(name: str) -> Access:
    return access_for(Member(name, "ally"))


def ids(store: Store, name: str) -> set[str]:
    return {r.id for r in store.iter_query(Query(access=acc(name)))}


def test_dispatch_arrival_shares_the_case_once(store: Store) -> None:
    inc = south_incident(store)
    req = request_assistance(store, member=SOUTH, cell=CELL, incident_id=inc["id"],
                             needs=["forensics"], access=acc(SOUTH))
    assert share_dispatched(store, SOUTH, acc(SOUTH)) == []  # no dispatch yet
    roster.add(store, f"{NORTH}:alice", name="Alice", skills=["forensics"])
    dispatch_team(store, cell=CELL, request_id=req["id"], team=[f"{NORTH}:alice"],
                  lead=f"{NORTH}:alice", reason="north knows it", by="duty officer",
                  access=acc(CELL))
    assert not {inc["id"], req["id"]} & ids(store, NORTH)

    shared = share_dispatched(store, SOUTH, acc(SOUTH))
    assert {o["id"] for o in shared if o["type"] != "relationship"} == {inc["id"], req["id"]}
    assert {inc["id"], req["id"]} <= ids(store, NORTH)
    assert not {inc["id"], req["id"]} & ids(store, EAST)
    assert share_dispatched(store, SOUTH, acc(SOUTH)) == []  # once
