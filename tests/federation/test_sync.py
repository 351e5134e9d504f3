"""Three nodes on 127.0.0.1 sync over TAXII 2.1; sharing rules hold on the receiving side;
a wrong token is refused and the error shows in `peer list`."""

from __future__ import annotations

import uuid
from pathlib import Path

from shieldwall.federation import alliance_view
from shieldwall.policy import member_identity_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.store import Query
from tests.factories import indicator
from tests.federation.conftest import make_node, peer, put, register, wait_for


def sighting(of: str, member: str, tlp: TLP = TLP.AMBER) -> dict:
    ident = member_identity_id(member)
    return {
        "type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
        "created": "2024-03-01T00:00:00.000Z", "modified": "2024-03-01T00:00:00.000Z",
        "created_by_ref": ident, "sighting_of_ref": of, "where_sighted_refs": [ident],
        "count": 3, "first_seen": "2024-03-01T00:00:00Z", "last_seen": "2024-03-01T01:00:00Z",
        "object_marking_refs": [tlp_marking_ref(tlp)],
    }


def test_three_nodes_sync_and_sightings_reach_everyone(tmp_path: Path, fast_sync: None) -> None:
    a, b, c = (make_node(tmp_path, n) for n in ("north", "south", "east"))
    for x in (a, b, c):
        for y in (a, b, c):
            if x is not y:
                register(x, y)
    try:
        for n in (a, b, c):
            n.start()
        for x in (a, b, c):
            for y in (a, b, c):
                if x is not y:
                    peer(x, y)
        ind = indicator("203.0.113.9", created_by_ref=member_identity_id("north"))
        put(a, [ind])
        wait_for(lambda: ind["id"] in b.ids() and ind["id"] in c.ids(), what="the indicator")
        seen = sighting(ind["id"], "south")
        put(b, [seen], channel="detect")
        wait_for(lambda: seen["id"] in a.ids() and seen["id"] in c.ids(), what="the sighting")
        s = c.store()
        try:
            rows = s.query(Query(ids=[seen["id"]], versions="all")).rows
            assert len(rows) == 1 and rows[0].source == "south"  # provenance: who delivered it
            ind_rows = s.query(Query(ids=[ind["id"]], versions="all")).rows
            assert len(ind_rows) == 1
            view = alliance_view(s, ["north", "south", "east"])
            assert [(h.indicator_id, h.member) for h in view] == [(ind["id"], "south")]
        finally:
            s.close()
        # the origin does not get its own indicator back as a second delivery
        s = a.store()
        try:
            assert [r.source for r in s.query(Query(ids=[ind["id"]], versions="all")).rows] \
                == ["north"]
        finally:
            s.close()
    finally:
        for n in (a, b, c):
            n.stop()


def test_red_and_amber_strict_never_reach_who_must_not_see_them(tmp_path: Path) -> None:
    a = make_node(tmp_path, "north")
    b = make_node(tmp_path, "south")  # ally, named in the audience
    c = make_node(tmp_path, "partner-org", tier="partner")  # not named
    for x, y in ((a, b), (a, c), (b, a), (b, c), (c, a), (c, b)):
        register(x, y)
    north = member_identity_id("north")
    objs = {
        tlp: indicator(f"198.51.100.{int(tlp)}", tlp=tlp, created_by_ref=north,
                       **({AUDIENCE_PROPERTY: ["south"]} if tlp >= TLP.AMBER_STRICT else {}))
        for tlp in (TLP.GREEN, TLP.AMBER, TLP.AMBER_STRICT, TLP.RED)
    }
    put(a, list(objs.values()))
    try:
        for n in (a, b, c):
            n.start()
        for x, y in ((a, b), (a, c), (b, a), (b, c), (c, a), (c, b)):
            peer(x, y)
        # every direction, push and pull, twice so relays (b -> c) get their chance
        for _ in range(2):
            for n in (a, b, c):
                n.cli("sync")
        got_b, got_c = b.ids(), c.ids()
        assert objs[TLP.GREEN]["id"] in got_b and objs[TLP.GREEN]["id"] in got_c
        assert objs[TLP.AMBER]["id"] in got_b
        assert objs[TLP.AMBER_STRICT]["id"] in got_b  # named: allowed
        assert objs[TLP.RED]["id"] not in got_b  # RED never leaves its node, named or not
        assert objs[TLP.AMBER]["id"] not in got_c  # a partner, not named
        assert objs[TLP.AMBER_STRICT]["id"] not in got_c
        assert objs[TLP.RED]["id"] not in got_c
    finally:
        for n in (a, b, c):
            n.stop()


def test_wrong_token_is_refused_and_shown_in_peer_list(tmp_path: Path) -> None:
    a, b = make_node(tmp_path, "north"), make_node(tmp_path, "south")
    register(a, b)
    (b.home / "token-at-north").write_text("swt_not-the-token-north-issued\n")
    put(a, [indicator("192.0.2.77")])
    try:
        a.start()
        peer(b, a)
        res = b.cli("sync", check=False)
        assert res.returncode == 1
        listing = b.cli("peer", "list").stdout
        assert "401" in listing and "north" in listing
        assert b.ids() == set()  # nothing was pulled
    finally:
        a.stop()
