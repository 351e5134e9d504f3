"""Case statistics test a reader's names against each row's audience key (migration 0017):
a database written at 0016 upgrades in place with its cases keyed; every status row's key
stands for exactly its own audience; and with many different audiences, sharing groups,
open levels and an audience widened by a later version, each reader's counts are exactly
what a list shows it, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, text

from shieldwall.policy import Member
from shieldwall.respond.cases import statistics
from shieldwall.respond.model import Marking, next_version, task
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP
from shieldwall.store import Access, Provenance, Store
from shieldwall.store.types import audience_key
from shieldwall.taxii.app import access_for
from tests.respond import test_case_statistics as stats_0015
from tests.respond.old_revisions import write_at
from tests.respond.test_case_statistics import (
    CELL,
    NORTH,
    READERS,
    SOUTH,
    _case,
    _listed,
)

url = stats_0015.url  # the 0015 test's databases (SQLite, PostgreSQL), a fixture

EAST, WEST = "cert-east", "cert-west"
GROUP = "group:baltic-cert"
# Readers beyond the 0015 test's: a partner in a sharing group, and an ally in none.
MORE_READERS = [*READERS, (WEST, "partner"), ("cert-alps", "ally")]
# The columns of `objects` at revision 0016 (0015's status, no audience key).

def acc(name: str, tier: str = "ally") -> Access:
    groups = frozenset({GROUP.removeprefix("group:")}) if name == WEST else frozenset()
    return access_for(Member(name, tier, groups))


def _tasks(creator: str, mark: Marking, *outcomes: str) -> list[dict[str, Any]]:
    return [task(creator=creator, name=f"t{k}", marking=mark, outcome=o)
            for k, o in enumerate(outcomes)]


def _varied() -> list[dict[str, Any]]:
    """Cases with different audiences: teams of one or two members, an audience that
    holds another's, AMBER to a sharing group, a GREEN and a RED task, and a request
    whose second version names one more member."""
    out: list[dict[str, Any]] = []
    out += _case(10, [f"{NORTH}:alice"])
    out += _case(11, [f"{NORTH}:bob", f"{EAST}:carol"])
    out += _case(12, [f"{EAST}:dave"], TLP.AMBER)
    out += _tasks(SOUTH, Marking(TLP.AMBER, (SOUTH, CELL, GROUP)), "pending", "ongoing")
    out += _tasks(SOUTH, Marking(TLP.AMBER_STRICT, (SOUTH, CELL, GROUP)), "failed")
    out += _tasks(EAST, Marking(TLP.GREEN), "cancelled")
    out += _tasks(EAST, Marking(TLP.RED, (EAST, NORTH)), "unknown")
    widened = _case(13, None)  # request and tasks named to the requester and the cell
    out += widened
    out.append(next_version(widened[0], **{AUDIENCE_PROPERTY: sorted([SOUTH, CELL, WEST])}))
    return out


def _write_at_0016(url: str, objs: list[dict[str, Any]]) -> None:
    """Store `objs` as a node at revision 0016 did: status kept, no audience key."""
    creators = {o["id"]: o["created_by_ref"] for o in objs}
    write_at(url, "0016", objs, lambda oid: next(
        m for m in (SOUTH, CELL, NORTH, EAST) if creators[oid].endswith(_identity_tail(m))))


def _identity_tail(member: str) -> str:
    from shieldwall.policy import member_identity_id

    return member_identity_id(member).split("--")[1]


def _keys_hold_their_audiences(store: Store) -> int:
    """Every row with a status carries the key of exactly its own audience rows, and
    `audience_sets` holds exactly those names under it; the rows checked."""
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, audience_key FROM objects "
                                 "WHERE status IS NOT NULL")).all()
        names: dict[int, set[str]] = {}
        for seq, name in conn.execute(text("SELECT seq, name FROM audience")):
            names.setdefault(seq, set()).add(name)
        sets: dict[str, set[str]] = {}
        for name, key in conn.execute(text("SELECT name, audience_key FROM audience_sets")):
            sets.setdefault(key, set()).add(name)
    for seq, key in rows:
        held = names.get(seq, set())
        assert key == audience_key(sorted(held)), seq
        if held:
            assert sets[key] == held, seq
    return len(rows)


def test_upgrade_from_0016_keys_stored_cases_and_counts_leak_nothing(url: str) -> None:
    _write_at_0016(url, _varied())
    store = Store.open(url)  # migrates to the newest revision
    try:
        assert _keys_hold_their_audiences(store) > 20
        index = {ix["name"]: ix for ix in inspect(store.engine).get_indexes("objects")}
        assert "audience_key" in index["ix_objects_status"]["column_names"]
        # the team member: its two cases, AMBER (open to allies), GREEN, the RED one named
        # to it; not the group's AMBER+STRICT task
        assert statistics(store, acc(NORTH))["task"] == {
            "failed": 3, "ongoing": 4, "successful": 3, "pending": 1, "cancelled": 1,
            "unknown": 1}
        # the partner: the group's AMBER, not its AMBER+STRICT, nor any case but the one
        # whose request's second version names it
        assert statistics(store, acc(WEST, "partner")) == {
            "x-shieldwall-assistance-request": {"open": 1}, "x-shieldwall-dispatch": {},
            "task": {"cancelled": 1, "ongoing": 1, "pending": 1}}
        for name, tier in MORE_READERS:
            assert statistics(store, acc(name, tier)) == _listed(store, acc(name, tier)), name
    finally:
        store.close()


def test_counts_follow_writes_across_many_audiences(url: str) -> None:
    store = Store.open(url)
    try:
        objs = _varied()
        store.put_many(objs, Provenance(SOUTH, "local"))
        for name, tier in MORE_READERS:
            assert statistics(store, acc(name, tier)) == _listed(store, acc(name, tier)), name
        # the group's member loses a request when its next version drops it from the
        # audience, and gains a dispatched case's task when one names it
        request = next(o for o in objs if o["type"] == "x-shieldwall-assistance-request"
                       and WEST in o.get(AUDIENCE_PROPERTY, []))
        before = statistics(store, acc(WEST, "partner"))
        store.put(next_version(request, **{AUDIENCE_PROPERTY: [SOUTH, CELL]}),
                  Provenance(SOUTH, "local"))
        store.put_many(_tasks(SOUTH, Marking(TLP.AMBER_STRICT, (SOUTH, CELL, WEST)),
                              "ongoing"), Provenance(SOUTH, "local"))
        after = statistics(store, acc(WEST, "partner"))
        assert before["x-shieldwall-assistance-request"] == {"open": 1}
        assert after["x-shieldwall-assistance-request"] == {}
        assert after["task"]["ongoing"] == before["task"]["ongoing"] + 1
        assert _keys_hold_their_audiences(store) > 20
        for name, tier in MORE_READERS:
            assert statistics(store, acc(name, tier)) == _listed(store, acc(name, tier)), name
            # the per-row lookup the benchmark compares with counts the same
            assert statistics(store, acc(name, tier), by_key=False) == statistics(
                store, acc(name, tier)), name
    finally:
        store.close()
