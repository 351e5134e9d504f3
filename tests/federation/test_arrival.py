"""A hostile peer cannot plant claims in another node's store.

The attacker controls its whole TAXII server (here a stdlib HTTP server on 127.0.0.1 that
serves whatever envelope it likes); the victim is a real node pulling with
`shieldwall sync`. Every assertion is on the victim's store and its `peer list`.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from shieldwall.config import load_config
from shieldwall.federation import Arrival, add_peer, load_state
from shieldwall.policy import Existing, Members, member_identity_id
from shieldwall.stix.identity import member_identity
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.store import Provenance, Query
from tests.factories import indicator
from tests.federation.conftest import SHIELDWALL, NodeHome, make_node, register, send_taxii
from tests.federation.test_sync import sighting

NORTH, SOUTH = member_identity_id("north"), member_identity_id("south")
MALLORY = member_identity_id("mallory")
FEED = "identity--0f0e0d0c-0b0a-4909-8807-060504030201"  # a feed outside the alliance


ADDED = "2024-06-01T00:00:00.000000Z"  # when the hostile peer says it added everything


class HostilePeer:
    """A TAXII 2.1 root that serves `objects` from its 'alliance' collection (paged by
    `limit`, `next` an offset; all added at `ADDED`, so a fresh query `added_after` it
    gets nothing) and has no writable collection (it only delivers). `requests` holds
    the query of every objects GET."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        self.requests: list[dict[str, list[str]]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/api/collections/alliance/objects/"):
                    q = parse_qs(urlsplit(self.path).query)
                    peer.requests.append(q)
                    served = peer.objects
                    if "next" not in q and q.get("added_after", [""])[0] >= ADDED:
                        served = []
                    start = int(q.get("next", ["0"])[0])
                    end = start + int(q.get("limit", [str(len(served))])[0])
                    more = end < len(served)
                    body = {"more": more, "objects": served[start:end],
                            **({"next": str(end)} if more else {})}
                    headers = {"X-TAXII-Date-Added-Last": ADDED}
                elif self.path.startswith("/api/collections/"):
                    body, headers = {"collections": []}, {}
                else:
                    self.send_error(404)
                    return
                send_taxii(self, body, headers=headers)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[NodeHome]:
    node = make_node(tmp_path, "south")
    s = node.store()
    try:
        for name in ("north", "east", "mallory", "hub"):
            Members(s.engine).add(name, "ally")
    finally:
        s.close()
    yield node


def _peer(node: NodeHome, name: str, url: str, relay_for: list[str] | None = None) -> None:
    token = node.home / f"token-at-{name}"
    token.write_text("swt_anything\n")
    add_peer(load_config(node.home), name, url, token, relay_for=relay_for, replace=True)


def _held(node: NodeHome) -> dict[str, list[tuple[str, str]]]:
    """id -> [(delivered by, modified)] for every version the victim stores."""
    s = node.store()
    try:
        out: dict[str, list[tuple[str, str]]] = {}
        for r in s.iter_query(Query(versions="all")):
            out.setdefault(r.id, []).append((r.source, str(r.obj().get("modified", ""))))
        return out
    finally:
        s.close()


def _forgeries(victim_own: dict[str, Any], held_amber: dict[str, Any]
               ) -> dict[str, dict[str, Any]]:
    return {
        "claims north": indicator("192.0.2.1", created_by_ref=NORTH),
        "claims the victim": indicator("192.0.2.2", created_by_ref=SOUTH),
        "north's identity": member_identity("north") | {"name": "north (forged)"},
        "victim's identity": member_identity("south") | {"name": "south (forged)"},
        "north sighted it": sighting(victim_own["id"], "mallory") | {
            "where_sighted_refs": [NORTH]},
        "RED, even named": indicator("192.0.2.3", tlp=TLP.RED, created_by_ref=MALLORY,
                                     **{AUDIENCE_PROPERTY: ["south"]}),
        "AMBER+STRICT for east": indicator("192.0.2.4", tlp=TLP.AMBER_STRICT,
                                           created_by_ref=MALLORY,
                                           **{AUDIENCE_PROPERTY: ["east"]}),
        "marking lowered": held_amber | {"modified": "2024-05-01T00:00:00.000Z",
                                         "object_marking_refs": [tlp_marking_ref(TLP.GREEN)]},
        "created_by_ref not an id": indicator("192.0.2.5", created_by_ref=["x"]),
    }


def test_a_hostile_peer_plants_nothing(victim: NodeHome) -> None:
    own = indicator("203.0.113.50", created_by_ref=SOUTH)  # the victim's own, held
    held_amber = indicator("203.0.113.51", tlp=TLP.AMBER)  # no creator, north delivered it
    s = victim.store()
    try:
        s.put(own, Provenance("south", "import"))
        s.put(held_amber, Provenance("north", "federation", "alliance"))
    finally:
        s.close()
    forged = _forgeries(own, held_amber)
    honest = {
        "mallory's own": indicator("198.51.100.1", created_by_ref=MALLORY),
        "a feed's": indicator("198.51.100.2", created_by_ref=FEED),
        "AMBER+STRICT for the victim": indicator("198.51.100.3", tlp=TLP.AMBER_STRICT,
                                                 created_by_ref=MALLORY,
                                                 **{AUDIENCE_PROPERTY: ["south"]}),
        "mallory sighted it": sighting(own["id"], "mallory"),
    }
    mallory = HostilePeer([*forged.values(), *honest.values(), own])  # own: an echo
    try:
        _peer(victim, "mallory", mallory.url)
        res = victim.cli("sync")
        assert "mallory" in res.stdout
        held = _held(victim)
        for what, obj in honest.items():
            assert held.get(obj["id"]) == [("mallory", obj["modified"])], what
        for what, obj in forged.items():
            if obj["id"] == held_amber["id"]:
                assert held[obj["id"]] == [("north", held_amber["modified"])], what
            else:
                assert obj["id"] not in held, what
        assert held[own["id"]] == [("south", own["modified"])]  # the echo changed nothing
        assert set(held) == {own["id"], held_amber["id"], *(o["id"] for o in honest.values())}
        s = victim.store()
        try:
            state = load_state(s, "mallory")
        finally:
            s.close()
        assert state.rejected == len(forged)  # the echo is not counted
        assert state.pulled == len(honest)
        listing = subprocess.run([SHIELDWALL, "peer", "list", "--home", str(victim.home)],
                                 env=os.environ | {"COLUMNS": "400"}, capture_output=True,
                                 text=True, timeout=60, check=True).stdout
        row = next(line for line in listing.splitlines() if "mallory" in line)
        assert f"│ {len(forged)} " in row and "rejected:" in row  # count, last reason
    finally:
        mallory.close()


def test_a_trusted_relay_carries_members_claims_but_never_the_victims(
        victim: NodeHome) -> None:
    by_north = indicator("198.51.100.20", created_by_ref=NORTH)
    north_saw = sighting(by_north["id"], "north")
    mine = indicator("198.51.100.21", created_by_ref=SOUTH)
    hub = HostilePeer([by_north, north_saw, mine])
    mallory = HostilePeer([by_north, north_saw])
    try:
        _peer(victim, "mallory", mallory.url)  # not a relay: refused
        _peer(victim, "hub", hub.url, relay_for=["*"])  # a coordination hub
        victim.cli("sync", "--peer", "mallory")
        assert set(_held(victim)) == set()
        victim.cli("sync", "--peer", "hub")
        held = _held(victim)
        assert held == {by_north["id"]: [("hub", by_north["modified"])],
                        north_saw["id"]: [("hub", north_saw["modified"])]}
        s = victim.store()
        try:
            assert load_state(s, "hub").rejected == 1  # the victim's own, never relayed
            assert "created by this node" in load_state(s, "hub").last_rejection
            assert load_state(s, "mallory").rejected == 2
            assert "relay" in load_state(s, "mallory").last_rejection
        finally:
            s.close()
    finally:
        hub.close()
        mallory.close()


def test_pushing_forged_claims_is_refused_by_the_receiving_server(tmp_path: Path) -> None:
    """The push side: a member's token lets it write only its own claims."""
    south, mallory = make_node(tmp_path, "south"), make_node(tmp_path, "mallory")
    register(south, mallory)
    s = south.store()
    try:
        Members(s.engine).add("north", "ally")
    finally:
        s.close()
    forged = [indicator("192.0.2.30", created_by_ref=NORTH),
              indicator("192.0.2.31", created_by_ref=SOUTH),
              member_identity("north") | {"name": "forged"}]
    fine = indicator("192.0.2.32", created_by_ref=MALLORY)
    try:
        south.start()
        resp = httpx.post(
            f"{south.url}/api/collections/alliance/objects/",
            headers={"Authorization": f"Bearer {south.tokens['mallory']}",
                     "Accept": "application/taxii+json;version=2.1",
                     "Content-Type": "application/taxii+json;version=2.1"},
            content=orjson.dumps({"objects": [*forged, fine]}), timeout=30)
        assert resp.status_code == 202
        status = resp.json()
        assert status["failure_count"] == len(forged) and status["success_count"] == 1
        assert south.ids() == {fine["id"]}
    finally:
        south.stop()


def test_forgeries_deep_in_a_backlog_are_refused_by_the_pull_worker(victim: NodeHome) -> None:
    """Past two full pages a worker process judges the pages: the same rules hold there,
    and every honest object is stored exactly once."""
    honest = [indicator(f"198.51.100.{i}", created_by_ref=MALLORY) for i in range(40)]
    forged = [indicator(f"192.0.2.{i}", created_by_ref=NORTH) for i in range(5)]
    mallory = HostilePeer([*honest, *forged])  # the forgeries on the last pages
    try:
        _peer(victim, "mallory", mallory.url)
        res = subprocess.run([SHIELDWALL, "sync", "--home", str(victim.home)],
                             env=os.environ | {"SHIELDWALL_SYNC_PAGE": "4"},
                             capture_output=True, text=True, timeout=120, check=True)
        assert "mallory" in res.stdout
        held = _held(victim)
        assert held == {o["id"]: [("mallory", o["modified"])] for o in honest}
        s = victim.store()
        try:
            state = load_state(s, "mallory")
        finally:
            s.close()
        assert (state.pulled, state.rejected) == (len(honest), len(forged))
        assert "not a trusted relay" in state.last_rejection
    finally:
        mallory.close()


# ---- the rule itself, object by object ---------------------------------------------------


def _arrival(relay_for: list[str] | None = None, own_tier: str = "ally") -> Arrival:
    from shieldwall.config import PeerConfig

    peer = PeerConfig(name="mallory", url="http://x", token_file="t",
                      relay_for=relay_for or [])
    return Arrival.of("south", own_tier, peer, {"north", "east", "mallory"})


@pytest.mark.parametrize(("obj", "expect"), [
    (indicator(created_by_ref=NORTH), "created_by_ref names another member"),
    (indicator(created_by_ref=SOUTH), "created by this node"),
    (indicator(tlp=TLP.RED, created_by_ref=MALLORY), "TLP:RED"),
    (indicator(tlp=TLP.AMBER_STRICT, **{AUDIENCE_PROPERTY: ["east"]}), "not named"),
    (member_identity("east"), "identity of another member"),
    (indicator(created_by_ref=MALLORY), None),
    (indicator(created_by_ref=FEED), None),
    (indicator(), None),
    (indicator(tlp=TLP.AMBER_STRICT, **{AUDIENCE_PROPERTY: ["south"]}), None),
])
def test_arrival_rule(obj: dict[str, Any], expect: str | None) -> None:
    from shieldwall.stix.markings import resolve_tlp

    why = _arrival().refusal(obj, resolve_tlp(obj))
    assert (why is None) if expect is None else (why is not None and expect in why), why


def test_relay_for_a_member_admits_only_that_member() -> None:
    a = _arrival(relay_for=["north"])
    assert a.refusal(indicator(created_by_ref=NORTH), TLP.GREEN) is None
    east = member_identity_id("east")
    assert a.refusal(indicator(created_by_ref=east), TLP.GREEN) is not None
    star = _arrival(relay_for=["*"])
    assert star.refusal(indicator(created_by_ref=east), TLP.GREEN) is None
    assert star.refusal(indicator(created_by_ref=SOUTH), TLP.GREEN) is not None


def test_lowering_a_marking_needs_the_creator() -> None:
    a = _arrival(relay_for=["north"])
    existing = Existing(TLP.AMBER, NORTH, "north")
    lowered = indicator(created_by_ref=MALLORY)
    assert a.refusal(lowered, TLP.GREEN, existing) is not None
    assert a.refusal(indicator(created_by_ref=NORTH), TLP.GREEN, existing) is None  # relayed
    assert a.refusal(indicator(created_by_ref=NORTH), TLP.AMBER, existing) is None


def test_a_peer_cannot_lower_a_custom_marking_this_node_holds() -> None:
    """A producer's own "TLP:AMBER" definition, stored here, re-sent by a peer as
    TLP:CLEAR under the same id: what the peer marks with it stays AMBER."""
    from shieldwall.federation.pull import _judge

    custom = "marking-definition--3a1c5e0f-6f0e-4b0a-9a53-2f1d6c0b7e11"
    redefined = {"type": "marking-definition", "spec_version": "2.1", "id": custom,
                 "created": "2024-01-01T00:00:00.000Z", "name": "TLP:CLEAR",
                 "definition_type": "statement", "definition": {"statement": "x"}}
    marked = indicator(tlp=None, created_by_ref=MALLORY, object_marking_refs=[custom])
    known = {custom: TLP.AMBER}  # what the store holds (store.audience.stored_tlp_markings)
    judged = _judge([redefined, marked], _arrival(), TLP.GREEN, known)
    levels = {r[0]: TLP(r[7]) for r in judged.rows}
    assert levels[marked["id"]] == TLP.AMBER
    assert known[custom] == TLP.AMBER


def test_a_malformed_marking_reference_does_not_stop_the_pull() -> None:
    """A peer's object whose marking refs are not ids (here an object, and one in a
    granular marking) is refused as invalid STIX; judging it must not raise, which would
    stop the pull at that page for good."""
    from shieldwall.federation.pull import _judge

    junk = indicator(tlp=None, created_by_ref=MALLORY, object_marking_refs=[{"x": 1}])
    granular = indicator(tlp=TLP.AMBER, created_by_ref=MALLORY,
                         granular_markings=[{"marking_ref": {"x": 1}, "selectors": ["name"]}])
    not_lists = indicator(tlp=None, created_by_ref=MALLORY, object_marking_refs=5,
                          granular_markings=5)
    judged = _judge([junk, granular, not_lists], _arrival(), TLP.GREEN, {})
    assert judged.rows == []
    assert {r[0]: why.startswith("invalid STIX 2.1: ") for r, why in judged.refused} == {
        junk["id"]: True, granular["id"]: True, not_lists["id"]: True}


def test_a_sighting_with_malformed_where_sighted_refs_is_judged_not_raised() -> None:
    sighting = {"type": "sighting", "spec_version": "2.1",
                "id": "sighting--3a1c5e0f-6f0e-4b0a-9a53-2f1d6c0b7e11",
                "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
                "sighting_of_ref": "indicator--3a1c5e0f-6f0e-4b0a-9a53-2f1d6c0b7e12",
                "where_sighted_refs": 5}
    assert _arrival().refusal(sighting, TLP.GREEN) is None
