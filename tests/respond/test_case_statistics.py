"""Case statistics count by the stored status column (migration 0015): a database written
before it upgrades in place with its cases counted, and a count never tells a reader of a
case it may not read (each reader's counts are exactly what a list shows it), on SQLite
and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import inspect, text

from shieldwall.policy import Member
from shieldwall.respond.cases import STATUS_OF, statistics
from shieldwall.respond.model import (
    Marking,
    assistance_request,
    case_audience,
    dispatch,
    next_version,
    task,
)
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Access, Provenance, Query, Store
from shieldwall.taxii.app import access_for
from tests.conftest import PG_URL, drop_pg_schema, pg_schema_url
from tests.respond.old_revisions import write_at

SOUTH, CELL, NORTH, EAST = "cert-south", "coordination", "cert-north", "cert-east"
READERS = [(SOUTH, "ally"), (CELL, "ally"), (NORTH, "ally"), (EAST, "ally"),
           ("partner-x", "partner"), ("org-y", "organisation")]
# The columns of `objects` before migration 0015 (what a node of that release wrote).

@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests need SHIELDWALL_TEST_DATABASE_URL (CI sets it)")
    pg_url, schema = pg_schema_url("stats")
    try:
        yield pg_url
    finally:
        drop_pg_schema(schema)


def acc(name: str, tier: str = "ally") -> Access:
    return access_for(Member(name, tier))


def _case(i: int, team: list[str] | None, tlp: TLP = TLP.AMBER_STRICT) -> list[dict[str, Any]]:
    """A case's request, its dispatch when `team`, and tasks (one at each outcome) with a
    second version of the first: what the statistics count."""
    mark = Marking(tlp, case_audience(SOUTH, CELL, team or []))
    inc_id = new_id("incident")
    req = assistance_request(requester=SOUTH, cell=CELL, incident_id=inc_id,
                             needs=["forensics"], marking=mark)
    items: list[dict[str, Any]] = [req]
    doer = SOUTH
    if team:
        items.append(dispatch(request=req, cell=CELL, team=team, lead=team[0], reason="r"))
        doer = team[0].split(":")[0]
    tasks = [task(creator=doer, name=f"task {i}.{k}", marking=mark, outcome=outcome)
             for k, outcome in enumerate(("pending", "ongoing", "successful"))]
    items += tasks
    items.append(next_version(tasks[0], outcome="failed"))
    return items


def _write_as_before_0015(url: str, objs: list[dict[str, Any]]) -> None:
    """Store `objs` as a node at revision 0014 did: the same rows, no status column."""
    write_at(url, "0014", objs, lambda oid: _creator(objs, oid))


def _creator(objs: list[dict[str, Any]], oid: str) -> str:
    """The member whose node wrote `oid` (its creator's name, as respond stores it)."""
    from shieldwall.policy import member_identity_id

    creator = next(o["created_by_ref"] for o in objs if o["id"] == oid)
    return next(m for m in (SOUTH, CELL, NORTH) if member_identity_id(m) == creator)


def _listed(store: Store, access: Access) -> dict[str, dict[str, int]]:
    """What a list shows the reader, counted by hand from each row's JSON."""
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in STATUS_OF}
    for row in store.iter_query(Query(types=list(STATUS_OF), access=access)):
        obj = orjson.loads(row.json)
        counts[row.type][obj[STATUS_OF[row.type]]] += 1
    return {kind: dict(sorted(c.items())) for kind, c in counts.items()}


def test_upgrade_counts_stored_cases_and_counts_leak_nothing(url: str) -> None:
    dispatched = _case(1, [f"{NORTH}:alice"])
    undispatched = _case(2, None)  # named to the requester and the cell only
    green = _case(3, None, TLP.GREEN)
    _write_as_before_0015(url, dispatched + undispatched + green)

    store = Store.open(url)  # migrates to the newest revision
    try:
        with store.engine.connect() as conn:
            held = dict(conn.execute(text(
                "SELECT id, status FROM objects WHERE is_latest AND type = 'task'")).all())
        assert sorted(held.values()) == sorted(["failed", "ongoing", "successful"] * 3)
        assert "ix_objects_status" in {ix["name"] for ix in
                                       inspect(store.engine).get_indexes("objects")}

        assert statistics(store, acc(CELL)) == {
            "x-shieldwall-assistance-request": {"open": 3},
            "x-shieldwall-dispatch": {"dispatched": 1},
            "task": {"failed": 3, "ongoing": 3, "successful": 3}}
        # the team member counts its case and what is GREEN, not the case it is not on
        assert statistics(store, acc(NORTH)) == {
            "x-shieldwall-assistance-request": {"open": 2},
            "x-shieldwall-dispatch": {"dispatched": 1},
            "task": {"failed": 2, "ongoing": 2, "successful": 2}}
        # another ally learns only of the GREEN case
        assert statistics(store, acc(EAST)) == {
            "x-shieldwall-assistance-request": {"open": 1}, "x-shieldwall-dispatch": {},
            "task": {"failed": 1, "ongoing": 1, "successful": 1}}
        for name, tier in READERS:
            assert statistics(store, acc(name, tier)) == _listed(store, acc(name, tier)), name

        # a version written after the upgrade moves its count
        later = next_version(undispatched[2], outcome="successful")  # ongoing -> successful
        store.put(later, Provenance(SOUTH, "local"))
        got = statistics(store, acc(CELL))["task"]
        assert got == {"failed": 3, "successful": 4, "ongoing": 2}
        assert statistics(store, acc(NORTH))["task"] == {"failed": 2, "ongoing": 2,
                                                         "successful": 2}
        for name, tier in READERS:
            assert statistics(store, acc(name, tier)) == _listed(store, acc(name, tier)), name
    finally:
        store.close()
