"""A page of many requests finds each one's dispatch: the links are looked up a few ids a
query on PostgreSQL (`Store.linked`), so a page spans several lookups."""

from __future__ import annotations

from shieldwall.respond import roster
from shieldwall.respond.assist import dispatch_team, list_requests, request_assistance
from shieldwall.store import Store
from tests.respond.test_assist import CELL, NORTH, SOUTH, acc, south_incident


def test_a_page_of_eleven_requests_finds_every_dispatch(store: Store) -> None:
    roster.add(store, f"{NORTH}:alice", name="Alice", skills=["forensics"])
    dispatched = {}
    for i in range(11):
        inc = south_incident(store)
        req = request_assistance(store, member=SOUTH, cell=CELL, incident_id=inc["id"],
                                 needs=["forensics"], access=acc(SOUTH))
        if i % 2 == 0:
            d = dispatch_team(store, cell=CELL, request_id=req["id"], team=[f"{NORTH}:alice"],
                              lead=f"{NORTH}:alice", reason=f"case {i}", by="duty officer",
                              access=acc(CELL))
            roster.set_availability(store, [f"{NORTH}:alice"], "available")
            dispatched[req["id"]] = d["id"]
        else:
            dispatched[req["id"]] = None
    views = list_requests(store, acc(CELL), limit=50)
    assert {v.request["id"]: (v.dispatch or {}).get("id") for v in views} == dispatched
