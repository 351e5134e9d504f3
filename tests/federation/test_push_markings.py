"""A push states the TLP level the pushing node holds each object at: an unmarked indicator
held at AMBER (the default) is not read at CLEAR by a peer whose default is CLEAR."""

from __future__ import annotations

from pathlib import Path

from shieldwall.config import init_home
from shieldwall.policy import member_identity_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.store import Query, Store
from tests.factories import indicator
from tests.federation.conftest import NodeHome, make_node, peer, put, register


def test_pushed_unmarked_object_keeps_the_level_its_node_holds_it_at(tmp_path: Path) -> None:
    north = make_node(tmp_path, "north")  # default TLP: AMBER
    home = tmp_path / "south"
    init_home(home, "south", default_tlp="clear")
    Store.open(f"sqlite:///{home / 'shieldwall.db'}").close()
    south = NodeHome("south", home)
    register(south, north)
    ind = indicator("203.0.113.77", tlp=None, created_by_ref=member_identity_id("north"))
    put(north, [ind])
    try:
        south.start()
        peer(north, south)
        north.cli("sync", "--no-pull")
        s = south.store()
        try:
            rows = s.query(Query(ids=[ind["id"]])).rows
            assert len(rows) == 1
            assert rows[0].tlp == TLP.AMBER  # before: CLEAR, south's default
            assert rows[0].obj()["object_marking_refs"] == [tlp_marking_ref(TLP.AMBER)]
        finally:
            s.close()
        s = north.store()
        try:  # what north stores is unchanged
            assert "object_marking_refs" not in (s.get_json(ind["id"]) or "")
        finally:
            s.close()
    finally:
        south.stop()
