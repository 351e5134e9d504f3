"""The policy decision in Python (`visible`) and in SQL (the store's Access) agree, and
the write rules refuse what they should."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest

from shieldwall.assess.consultation import POLICY_TYPE
from shieldwall.node import member_identity_id as node_identity_id
from shieldwall.policy import (
    Collection,
    Existing,
    Member,
    Members,
    PolicyError,
    may_read,
    may_write,
    member_identity_id,
    token_hash,
    visibility,
    visible,
    write_refusal,
)
from shieldwall.stix.markings import (
    AUDIENCE_ONLY_TYPES,
    AUDIENCE_PROPERTY,
    TLP,
    resolve_tlp,
    tlp_marking_ref,
)
from shieldwall.stix.timestamps import parse_ts
from shieldwall.store import Provenance, Query, Store
from shieldwall.taxii import access_for
from tests.factories import indicator

MEMBERS = [
    Member("a", "ally"), Member("a2", "ally", frozenset({"tf"})),
    Member("p", "partner"), Member("p2", "partner", frozenset({"tf"})),
    Member("o", "organisation"), Member("o2", "organisation", frozenset({"tf"})),
]
AUDIENCES = [None, ["a"], ["p"], ["o"], ["group:tf"], ["a", "p2", "group:tf"]]


def test_identity_ids_agree_with_the_node() -> None:
    assert member_identity_id("cert-x") == node_identity_id("cert-x")


def _audience_only(level: TLP, audience: list[str] | None, **extra: Any) -> dict[str, Any]:
    """An object of a type whose audience alone decides who reads it."""
    ts = "2024-01-01T00:00:00.000Z"
    obj = {"type": POLICY_TYPE, "spec_version": "2.1", "id": f"{POLICY_TYPE}--{uuid.uuid4()}",
           "created": ts, "modified": ts, "object_marking_refs": [tlp_marking_ref(level)],
           **extra}
    return {**obj, AUDIENCE_PROPERTY: audience} if audience else obj


def test_visible_matches_sql_access(store: Store) -> None:
    assert POLICY_TYPE in AUDIENCE_ONLY_TYPES
    objs = []
    for level, aud in itertools.product(TLP, AUDIENCES):
        extra = {AUDIENCE_PROPERTY: aud} if aud else {}
        objs.append(indicator(tlp=level, **extra))
        objs.append(_audience_only(level, aud))
        # Created by a member: for an indicator that opens it to the creator; for an
        # audience-only type, nothing but the audience (and the open levels) does.
        objs.append(_audience_only(level, aud, created_by_ref=member_identity_id("o")))
    creator = indicator(tlp=TLP.RED, created_by_ref=member_identity_id("o"))
    objs.append(creator)
    store.put_many(objs, Provenance("producer"))
    delivered = [indicator(tlp=TLP.RED)] + [_audience_only(level, aud)
                                            for level, aud in itertools.product(TLP, AUDIENCES)]
    store.put_many(delivered, Provenance("p"))
    for m in MEMBERS:
        sql = {r.id for r in store.query(Query(access=access_for(m))).rows}
        py = {o["id"] for o in objs if visible(m, o)} | {
            o["id"] for o in delivered if visible(m, o, delivered_by="p")}
        assert sql == py, m
        assert (creator["id"] in sql) == (m.name == "o")
        assert (delivered[0]["id"] in sql) == (m.name == "p")
        v = visibility(m)
        for o in objs + delivered:  # the audience-only type: open, or named; nothing else
            if o["type"] == POLICY_TYPE:
                level, named = resolve_tlp(o, TLP.AMBER), set(o.get(AUDIENCE_PROPERTY, []))
                want = (level in v.open_levels or bool(level in v.named_levels and named & v.names)
                        or bool(level in v.group_levels and named & v.groups))
                assert (o["id"] in sql) == want, (m, o)


@pytest.mark.parametrize(("member", "level", "audience", "want"), [
    (Member("a", "ally"), TLP.AMBER, None, True),
    (Member("p", "partner"), TLP.AMBER, None, False),
    (Member("p", "partner"), TLP.AMBER, ["p"], True),
    (Member("p", "partner", frozenset({"g"})), TLP.AMBER, ["group:g"], True),
    (Member("a", "ally", frozenset({"g"})), TLP.AMBER_STRICT, ["group:g"], False),
    (Member("a", "ally"), TLP.AMBER_STRICT, ["a"], True),
    (Member("a", "ally"), TLP.RED, None, False),
    (Member("o", "organisation"), TLP.GREEN, None, True),
    (Member("o", "organisation"), TLP.CLEAR, None, True),
])
def test_visible_cells(member: Member, level: TLP, audience: list[str] | None,
                       want: bool) -> None:
    obj = indicator(tlp=level, **({AUDIENCE_PROPERTY: audience} if audience else {}))
    assert visible(member, obj) is want


def test_collection_rules() -> None:
    coll = Collection("x", "x", "X", "", "own", "tier:ally member:p group:g", "member:a")
    assert may_read(Member("a", "ally"), coll) and may_write(Member("a", "ally"), coll)
    assert may_read(Member("p", "partner"), coll) and not may_write(Member("p", "partner"), coll)
    assert may_read(Member("q", "partner", frozenset({"g"})), coll)
    assert not may_read(Member("q", "organisation"), coll)


def test_write_refusals() -> None:
    a = Member("a", "ally")
    ids = frozenset(member_identity_id(n) for n in ("a", "b"))
    claim = indicator(created_by_ref=member_identity_id("b"))
    assert "another member" in write_refusal(a, claim, member_identities=ids, existing=None)
    own = indicator(created_by_ref=member_identity_id("a"), tlp=TLP.GREEN)
    assert write_refusal(a, own, member_identities=ids, existing=None) is None
    theirs = Existing(TLP.AMBER, None, "b")
    green, red = indicator(tlp=TLP.GREEN), indicator(tlp=TLP.RED)
    for version in (green, red):  # lowering or raising: only the creator versions
        assert "only its creator" in write_refusal(a, version, member_identities=ids,
                                                   existing=theirs)
    mine = Existing(TLP.AMBER, None, "a")
    assert write_refusal(a, green, member_identities=ids, existing=mine) is None
    assert "created_by_ref differs" in write_refusal(a, own, member_identities=ids,
                                                     existing=mine)
    # b created it; a re-sends the version held: the store calls it a duplicate
    held = Existing(TLP.GREEN, member_identity_id("b"), "b", frozenset({parse_ts(
        green["modified"])}))
    assert write_refusal(a, green, member_identities=ids, existing=held) is None
    assert "only its creator" in write_refusal(
        a, green | {"modified": "2024-02-01T00:00:00.000Z"}, member_identities=ids,
        existing=held)
    sighting = {"type": "sighting", "id": "sighting--0", "sighting_of_ref": "indicator--x",
                "object_marking_refs": [tlp_marking_ref(TLP.AMBER)]}
    strict = Existing(TLP.AMBER_STRICT, None, "b")
    assert "at least TLP:AMBER+STRICT" in write_refusal(
        a, sighting, member_identities=ids, existing=None, sighted=strict)
    assert write_refusal(a, sighting, member_identities=ids, existing=None,
                         sighted=Existing(TLP.AMBER, None, "b")) is None


def test_registry_stores_only_digests(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'n.db'}")
    reg = Members(store.engine)
    token = reg.add("cert-x", "partner")
    assert reg.authenticate(token) == Member("cert-x", "partner")
    assert reg.authenticate(token, "someone-else") is None
    assert reg.authenticate(token + "x") is None
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_hash FROM members").scalar()
    assert stored == token_hash(token) and token not in stored
    reg.join("cert-x", "tf")
    assert reg.authenticate(token).groups == frozenset({"tf"})
    new = reg.rotate("cert-x")
    assert reg.authenticate(token) is None and reg.authenticate(new) is not None
    reg.revoke("cert-x")
    assert reg.authenticate(new) is None
    with pytest.raises(PolicyError):
        reg.add("bad name!", "ally")
    with pytest.raises(PolicyError):
        reg.add("y", "emperor")
    with pytest.raises(PolicyError):
        reg.rotate("nobody")
    store.close()
