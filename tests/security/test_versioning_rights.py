"""Only an object's creator makes new versions of it (STIX's rule), and an object that
speaks for a member is written by that member.

The attackers: a member posting versions of another member's objects over TAXII
(taxii2-client against a real `shieldwall serve`, SQLite and PostgreSQL), a hostile peer
serving versions of the victim's own and other members' objects to `shieldwall sync`, and
an import carrying a version under another creator. Every assertion is on what the
victim's node then holds and serves, and one on what its hunt still finds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from taxii2client.v21 import ApiRoot, Collection

from shieldwall.config import init_home, load_config
from shieldwall.federation import load_state
from shieldwall.pledge.posture import compute, to_stix
from shieldwall.policy import Members, member_identity_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.store import Provenance, Store
from tests.factories import indicator
from tests.federation.conftest import NodeHome
from tests.federation.test_arrival import HostilePeer, _held, _peer
from tests.taxii.conftest import (
    SHIELDWALL,
    Server,
    _pg_database,
    add_members,
    db_url,
    make_home,
    start_server,
)
from tests.web.seed import Seeded
from tests.web.test_auth_policy import D, sign_in

TAXII = "application/taxii+json;version=2.1"
ALICE, CAROL = member_identity_id("alice"), member_identity_id("carol")
NORTH, SOUTH = member_identity_id("north"), member_identity_id("south")
MALLORY = member_identity_id("mallory")
FEED = "identity--0f0e0d0c-0b0a-4909-8807-060504030201"  # a feed outside the alliance
ZEEK = Path(__file__).parents[1] / "data" / "zeek"
HIT = "54.245.228.191"  # in tests/data/zeek/conn.log
LATER = "2024-06-01T00:00:00.000Z"


def _later(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A newer version of `obj` with `changes` (a value None drops the property)."""
    new = {**obj, "modified": LATER, **changes}
    return {k: v for k, v in new.items() if v is not None}


# ---- TAXII: members writing over a real server ------------------------------------------


@pytest.fixture(scope="module")
def node(backend: str | None, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Server, dict[str, str]]]:
    home = make_home(tmp_path_factory.mktemp("versioning"), backend)
    tokens = add_members(home, {"alice": "ally", "carol": "ally", "bob": "partner"})
    server = start_server(home, "--rate-limit", "0")
    yield server, tokens
    server.stop()


def _coll(node: tuple[Server, dict[str, str]], member: str) -> Collection:
    server, tokens = node
    api = ApiRoot(server.api(), user=member, password=tokens[member])
    return next(c for c in api.collections if c.alias == "alliance")


def _post(node: tuple[Server, dict[str, str]], member: str, *objs: dict[str, Any]
          ) -> dict[str, str]:
    """id -> "ok" or the refusal, from the status taxii2-client reads back."""
    status = _coll(node, member).add_objects(orjson.dumps({"objects": list(objs)}).decode())
    out = {s["id"]: "ok" for s in status.successes}
    out.update({f["id"]: f["message"] for f in status.failures})
    return out


def _latest(node: tuple[Server, dict[str, str]], member: str, oid: str) -> httpx.Response:
    server, tokens = node
    return httpx.get(server.api(f"collections/alliance/objects/{oid}/"),
                     auth=(member, tokens[member]), headers={"Accept": TAXII}, timeout=30)


def _hits(home: Path, indicator_id: str, tmp: Path) -> int:
    """Sightings of `indicator_id` a `shieldwall hunt` of the Zeek conn.log records."""
    logs = tmp / f"logs-{uuid.uuid4().hex[:6]}"
    logs.mkdir()
    shutil.copy(ZEEK / "conn.log", logs / "conn.log")
    res = subprocess.run([SHIELDWALL, "hunt", str(logs), "--home", str(home), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    start = res.stdout.index("[")
    return sum(1 for s in orjson.loads(res.stdout[start:])
               if s["sighting_of_ref"] == indicator_id)


def test_another_member_cannot_version_revoke_or_rename_an_indicator(
        node: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    server, _ = node
    ind = indicator(HIT, created_by_ref=ALICE, name="C2 relay",
                    valid_from="2010-01-01T00:00:00Z")
    assert _post(node, "alice", ind) == {ind["id"]: "ok"}
    assert _hits(server.home, ind["id"], tmp_path) == 1

    attacks = [
        _later(ind, created_by_ref=None),
        _later(ind, created_by_ref=None, revoked=True),
        _later(ind, created_by_ref=CAROL, revoked=True),
        _later(ind, created_by_ref=CAROL, name="benign CDN",
               pattern="[ipv4-addr:value = '192.0.2.250']"),
    ]
    for forged in attacks:
        why = _post(node, "carol", forged)[ind["id"]]
        assert "only its creator" in why, forged
    for reader in ("alice", "bob", "carol"):
        got = _latest(node, reader, ind["id"]).json()["objects"]
        assert got == [ind], reader
    assert _hits(server.home, ind["id"], tmp_path) == 1  # the hunt still finds it

    revoked = _later(ind, revoked=True)  # the creator itself may
    assert _post(node, "alice", revoked) == {ind["id"]: "ok"}
    assert _latest(node, "bob", ind["id"]).json()["objects"] == [revoked]


def test_an_object_without_creator_is_versioned_only_by_its_first_deliverer(
        node: tuple[Server, dict[str, str]]) -> None:
    bare = indicator("198.51.100.60")
    feeds = indicator("198.51.100.61", created_by_ref=FEED)
    assert _post(node, "alice", bare, feeds) == {bare["id"]: "ok", feeds["id"]: "ok"}
    for forged in (_later(bare, revoked=True), _later(feeds, revoked=True),
                   _later(bare, created_by_ref=CAROL)):
        assert "only its creator" in _post(node, "carol", forged)[forged["id"]]
    assert _latest(node, "bob", bare["id"]).json()["objects"] == [bare]
    assert _latest(node, "bob", feeds["id"]).json()["objects"] == [feeds]
    # The first deliverer versions them; a version cannot change who created the object.
    assert _post(node, "alice", _later(feeds, name="renamed by the feed")) == {
        feeds["id"]: "ok"}
    moved = _later(bare, created_by_ref=ALICE, modified="2024-07-01T00:00:00.000Z")
    assert "created_by_ref" in _post(node, "alice", moved)[bare["id"]]


def test_raising_another_members_marking_is_refused(
        node: tuple[Server, dict[str, str]]) -> None:
    green = indicator("198.51.100.62", created_by_ref=ALICE)
    assert _post(node, "alice", green) == {green["id"]: "ok"}
    red = _later(green, created_by_ref=None, object_marking_refs=[tlp_marking_ref(TLP.RED)])
    strict = _later(green, created_by_ref=CAROL, object_marking_refs=[
        tlp_marking_ref(TLP.AMBER_STRICT)], **{AUDIENCE_PROPERTY: ["carol"]})
    for forged in (red, strict):
        assert "only its creator" in _post(node, "carol", forged)[green["id"]]
    for reader in ("alice", "bob", "carol"):  # it still answers, to its creator included
        assert _latest(node, reader, green["id"]).status_code == 200, reader
    # Its creator may raise it: then it still answers the creator, and not a partner.
    assert _post(node, "alice", dict(red, created_by_ref=ALICE)) == {green["id"]: "ok"}
    assert _latest(node, "alice", green["id"]).status_code == 200
    assert _latest(node, "bob", green["id"]).status_code == 404


def test_a_posture_naming_another_member_is_refused(
        node: tuple[Server, dict[str, str]]) -> None:
    theirs = to_stix(compute("alice", {"patches": {"score": 0.1}}, None, date="2026-01-02"),
                     TLP.GREEN)
    as_carol = dict(theirs, created_by_ref=CAROL)
    unsigned = {k: v for k, v in theirs.items() if k != "created_by_ref"}
    own = to_stix(compute("carol", {"patches": {"score": 0.9}}, None, date="2026-01-02"),
                  TLP.GREEN)
    out = _post(node, "carol", as_carol, own)
    assert "speaks for member alice" in out[theirs["id"]]
    assert out[own["id"]] == "ok"
    assert "speaks for member alice" in _post(node, "carol", unsigned)[theirs["id"]]
    assert _latest(node, "alice", theirs["id"]).status_code == 404
    # Snapshot ids are derived from member and day: carol cannot take alice's id for a
    # coming day (as her own snapshot, or as one of nobody), which would leave alice's
    # real snapshot refused as a version of carol's object.
    coming = to_stix(compute("alice", {"patches": {"score": 0.8}}, None, date="2026-01-09"),
                     TLP.GREEN)
    squat = dict(own, id=coming["id"])
    assert "derived from that member" in _post(node, "carol", squat)[coming["id"]]
    nobodys = {k: v for k, v in squat.items() if k != "x_shieldwall_member"}
    assert _post(node, "carol", nobodys)[coming["id"]] != "ok"
    assert _post(node, "alice", coming) == {coming["id"]: "ok"}


# ---- the dashboard shows a member's posture only as that member wrote it -------------------


def test_the_hygiene_view_shows_only_postures_their_member_wrote(
        client: TestClient, seeded: tuple[Store, Seeded]) -> None:
    """A forged snapshot that got into the store by another route (an operator's import,
    a store from before the write rules) is not shown as the member's posture."""
    store, s = seeded
    real = to_stix(compute("latvia", {"patches": {"score": 0.9}}, None, date="2026-01-01"),
                   TLP.GREEN)
    store.put_many([real], Provenance("latvia", "taxii"))
    forged = to_stix(compute("latvia", {"patches": {"score": 0.05}}, None, date="2026-01-02"),
                     TLP.GREEN)
    unsigned = to_stix(compute("latvia", {"patches": {"score": 0.02}}, None, date="2026-01-03"),
                       TLP.GREEN)
    del unsigned["created_by_ref"]
    store.put_many([dict(forged, created_by_ref=member_identity_id("partnerland"))],
                   Provenance("partnerland", "taxii"))
    store.put_many([unsigned], Provenance("partnerland", "import"))
    sign_in(client, "ana", s.passwords["ana"])
    latvia = {m["member"]: m for m in client.get(f"{D}/api/hygiene").json()["members"]}[
        "latvia"]
    assert [t["index"] for t in latvia["trend"]] == [90.0]
    assert latvia["id"] == real["id"]


# ---- federation: a hostile peer and a trusted relay ------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def victim(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NodeHome]:
    """South, with members north, east, mallory and hub, on SQLite or PostgreSQL."""
    home = tmp_path / "south"
    databases = _pg_database() if request.param == "postgres" else None
    url = next(databases) if databases is not None else None
    init_home(home, "south", **({"database_url": url} if url else {}))
    s = Store.open(load_config(home).db_url)
    try:
        for name in ("north", "east", "mallory", "hub"):
            Members(s.engine).add(name, "ally")
    finally:
        s.close()
    yield NodeHome("south", home)
    if databases is not None:
        databases.close()


def test_a_hostile_peer_cannot_version_what_others_created(victim: NodeHome) -> None:
    own = indicator("203.0.113.70", created_by_ref=SOUTH)  # the victim's own
    own_bare = indicator("203.0.113.71")  # the victim imported it, no creator
    norths = indicator("203.0.113.72", created_by_ref=NORTH)
    feeds = indicator("203.0.113.73", created_by_ref=FEED)  # north delivered the feed's
    s = victim.store()
    try:
        s.put_many([own, own_bare], Provenance("south", "import"))
        s.put_many([norths, feeds], Provenance("north", "federation", "alliance"))
    finally:
        s.close()
    held = _held(victim)
    strict = {"object_marking_refs": [tlp_marking_ref(TLP.AMBER_STRICT)],
              AUDIENCE_PROPERTY: ["south"]}
    forged = [
        _later(own, created_by_ref=None, revoked=True),
        _later(own_bare, revoked=True),
        _later(own_bare, **strict),
        _later(norths, created_by_ref=None, revoked=True),
        _later(norths, created_by_ref=MALLORY, name="benign"),
        _later(feeds, revoked=True),
        _later(feeds, created_by_ref=None, **strict),
        # a posture speaking for north, under mallory's name
        to_stix(compute("north", {"patches": {"score": 0.1}}, None, date="2026-01-02"),
                TLP.GREEN) | {"created_by_ref": MALLORY},
        # mallory's own posture, squatting the id of north's for a coming day
        to_stix(compute("mallory", {"patches": {"score": 0.1}}, None, date="2026-01-09"),
                TLP.GREEN) | {"id": to_stix(compute("north", {}, None, date="2026-01-09"))[
                    "id"]},
    ]
    mallory = HostilePeer(forged)
    try:
        _peer(victim, "mallory", mallory.url)
        victim.cli("sync", "--peer", "mallory")
        assert _held(victim) == held
        s = victim.store()
        try:
            state = load_state(s, "mallory")
        finally:
            s.close()
        assert (state.pulled, state.rejected) == (0, len(forged))
    finally:
        mallory.close()


def test_a_relay_forwards_the_creators_versions_never_its_own(victim: NodeHome) -> None:
    own = indicator("203.0.113.80", created_by_ref=SOUTH)
    norths = indicator("203.0.113.81", created_by_ref=NORTH)
    feeds = indicator("203.0.113.82", created_by_ref=FEED)
    s = victim.store()
    try:
        s.put(own, Provenance("south", "import"))
        s.put_many([norths, feeds], Provenance("north", "federation", "alliance"))
    finally:
        s.close()
    norths_v2 = _later(norths, name="north's update")
    norths_posture = to_stix(compute("north", {"patches": {"score": 0.7}}, None,
                                     date="2026-01-02"), TLP.GREEN)
    hub_forged = [_later(norths, created_by_ref=None, revoked=True),  # the hub's own version
                  _later(own, created_by_ref=None, revoked=True),
                  _later(feeds, revoked=True)]
    hub = HostilePeer([norths_v2, norths_posture, *hub_forged])
    feed_v2 = _later(feeds, name="the feed's update")
    north = HostilePeer([feed_v2])
    try:
        _peer(victim, "hub", hub.url, relay_for=["north"])
        _peer(victim, "north", north.url)
        victim.cli("sync", "--peer", "hub")
        victim.cli("sync", "--peer", "north")
        held = _held(victim)
        assert held[norths["id"]] == [("north", norths["modified"]), ("hub", LATER)]
        assert held[norths_posture["id"]] == [("hub", norths_posture["modified"])]
        assert held[own["id"]] == [("south", own["modified"])]
        assert held[feeds["id"]] == [("north", feeds["modified"]), ("north", LATER)]
        s = victim.store()
        try:
            assert load_state(s, "hub").rejected == len(hub_forged)
            assert s.get(feeds["id"]).obj()["name"] == "the feed's update"
        finally:
            s.close()
    finally:
        hub.close()
        north.close()


# ---- import ----------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_import_refuses_a_version_under_another_creator(database: str, tmp_path: Path) -> None:
    databases = _pg_database() if database == "postgres" else None
    try:
        home = make_home(tmp_path, next(databases) if databases is not None else None)
        feeds = indicator("203.0.113.90", created_by_ref=FEED)
        bare = indicator("203.0.113.91")
        first, second = tmp_path / "first.json", tmp_path / "second.json"
        bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}"}
        first.write_bytes(orjson.dumps(bundle | {"objects": [feeds, bare]}))
        other = "identity--1f0e0d0c-0b0a-4909-8807-060504030201"
        second.write_bytes(orjson.dumps(bundle | {"objects": [
            _later(feeds, created_by_ref=other, revoked=True),
            _later(bare, created_by_ref=other),
            _later(feeds, name="the feed's update", modified="2024-07-01T00:00:00.000Z"),
        ]}))
        env = os.environ | {"COLUMNS": "400"}
        for f in (first, second):
            res = subprocess.run([SHIELDWALL, "import", str(f), "--no-warninglists",
                                  "--home", str(home)], env=env, capture_output=True,
                                 text=True, timeout=120)
            assert res.returncode == 0, res.stdout + res.stderr
        assert "Rejected (2)" in res.stdout
        assert res.stdout.count("created_by_ref differs from the stored object's") == 2
        s = Store.open(db_url(home))
        try:
            assert s.get(feeds["id"]).obj()["name"] == "the feed's update"
            assert s.get(bare["id"]).obj() == bare
            assert len(s.versions(feeds["id"])) == 2
        finally:
            s.close()
    finally:
        if databases is not None:
            databases.close()
