"""Attacks on a case held by the coordination cell's node (where every member's case items
meet), over a real `shieldwall serve` on SQLite and PostgreSQL.

- The matrix item type x TLP x reader (requester, cell, team member, other ally, partner,
  organisation): every case item, at every level, is read through the store's `Access`
  and through TAXII GET (every page, every version) by each reader; what a reader gets
  must be exactly what its level and the case's audience allow: 0 leaks, and nothing the
  reader is owed is missing. An item's TLP holds whatever the case's own level.
- A dispatch forged by a node other than the cell, a request in another member's name,
  and a malformed case item are refused on TAXII POST and on federation arrival; a
  dispatch a node sends in its own name for someone else's request is ignored by the case.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from taxii2client.v21 import ApiRoot, Collection, as_pages

from shieldwall.config import PeerConfig
from shieldwall.federation.rules import Arrival
from shieldwall.keys.signing import node_keys
from shieldwall.policy import Member, member_identity_id
from shieldwall.respond.cases import load_case
from shieldwall.respond.custody import custody_event
from shieldwall.respond.evidence import evidence_item
from shieldwall.respond.model import (
    CUSTODY_EVENT,
    EVIDENCE,
    Marking,
    assistance_request,
    case_audience,
    dispatch,
    event,
    impact,
    link,
    note,
    observable,
    published_objects,
    task,
)
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP
from shieldwall.stix.validate import object_error
from shieldwall.store import Provenance, Query, Store
from shieldwall.taxii.app import access_for
from tests.factories import indicator
from tests.taxii.conftest import Server, add_members, db_url, make_home, start_server

SOUTH, CELL, NORTH = "cert-south", "coordination", "cert-north"
EAST, PARTNER, ORG = "cert-east", "partnerland", "ngo-org"
READERS = {SOUTH: "ally", CELL: "ally", NORTH: "ally", EAST: "ally", PARTNER: "partner",
           ORG: "organisation"}
TEAM = [f"{NORTH}:alice", f"{NORTH}:bob"]
AUDIENCE = case_audience(SOUTH, CELL, TEAM)
TAXII = "application/taxii+json;version=2.1"
TS = "2026-12-01T10:00:00.000Z"


def owed(reader: str, level: TLP) -> bool:
    """What the alliance's TLP rules owe `reader` of a case item at `level` named to the
    case's audience: written out here, apart from the code under test."""
    if level <= TLP.GREEN:
        return True
    if level == TLP.AMBER and READERS[reader] == "ally":
        return True
    return reader in AUDIENCE


def _sco_item(creator: str, m: Marking) -> dict[str, Any]:
    return observable("domain-name:c2.example", creator=creator, marking=m)


def _stix_item(kind: str, creator: str, m: Marking) -> dict[str, Any]:
    ind = indicator("198.51.100.77", created_by_ref=member_identity_id(creator))
    base = {"spec_version": "2.1", "created": TS, "modified": TS,
            "created_by_ref": member_identity_id(creator), **m.props()}
    if kind == "indicator":
        return {**ind, "id": new_id("indicator"), **m.props()}
    if kind == "attack-pattern":
        return {"type": kind, "id": new_id(kind), "name": "Phishing", **base}
    return {"type": "malware", "id": new_id("malware"), "name": "LockBit", "is_family": True,
            **base}


# kind -> (creator, maker(marking, case_id))
MAKERS: dict[str, tuple[str, Any]] = {
    "task": (NORTH, lambda m, c: task(creator=NORTH, name="image", marking=m)),
    "event": (NORTH, lambda m, c: event(creator=NORTH, name="beacon", marking=m,
                                        start=TS)),
    "impact": (SOUTH, lambda m, c: impact(creator=SOUTH, category="availability", marking=m,
                                          details={"availability_impact": 70})),
    "note": (SOUTH, lambda m, c: note(creator=SOUTH, case_id=c, content="secret", marking=m)),
    "observed-data": (NORTH, lambda m, c: _sco_item(NORTH, m)),
    "indicator": (NORTH, lambda m, c: _stix_item("indicator", NORTH, m)),
    "attack-pattern": (NORTH, lambda m, c: _stix_item("attack-pattern", NORTH, m)),
    "malware": (NORTH, lambda m, c: _stix_item("malware", NORTH, m)),
    EVIDENCE: (SOUTH, lambda m, c: _evidence(m, c)),
    CUSTODY_EVENT: (SOUTH, lambda m, c: _custody(m, c)),
}


def _evidence(m: Marking, case_id: str) -> dict[str, Any]:
    return evidence_item(creator=SOUTH, case_id=case_id, name="disk.e01", sha256="ab" * 32,
                         size=1024, kept_at="south evidence locker 3",
                         collected_by=f"{SOUTH}:carol", collected_how="write-blocked image",
                         marking=m)


def _custody(m: Marking, case_id: str) -> dict[str, Any]:
    """A custody event signed by south's node key, carrying its evidence's marking."""
    keys = node_keys(Path(tempfile.mkdtemp()), SOUTH)
    return custody_event(keys=keys, case_id=case_id, evidence=_evidence(m, case_id),
                         action="analysed", actor=f"{SOUTH}:carol", chain_heads={})


@pytest.fixture(scope="module")
def node(backend: str | None, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Server, dict[str, str], dict[str, Any]]]:
    """The cell's node holding one case: the incident, request and dispatch at the case's
    level (AMBER+STRICT), and every item type at every TLP, each linked to the case; each
    delivered by its creator, as federation delivers it."""
    home = make_home(tmp_path_factory.mktemp("case-access"), backend)
    case_mark = Marking(TLP.AMBER_STRICT, AUDIENCE)
    inc = {"type": "incident", "spec_version": "2.1", "id": new_id("incident"),
           "created": TS, "modified": TS, "created_by_ref": member_identity_id(SOUTH),
           "name": "Ransomware at the grid operator", **case_mark.props()}
    req = assistance_request(requester=SOUTH, cell=CELL, incident_id=inc["id"],
                             needs=["forensics"], marking=case_mark)
    disp = dispatch(request=req, cell=CELL, team=TEAM, lead=TEAM[0], reason="north knows it")
    items: dict[tuple[str, TLP], dict[str, Any]] = {}
    by_creator: dict[str, list[dict[str, Any]]] = {SOUTH: [inc, req, link(req, inc["id"])],
                                                   CELL: [disp, link(disp, inc["id"]),
                                                          link(disp, req["id"])]}
    for kind, (creator, make) in MAKERS.items():
        for level in TLP:
            obj = make(Marking(level, AUDIENCE), inc["id"])
            assert object_error(obj) is None, (kind, level, object_error(obj))
            items[(kind, level)] = obj
            by_creator.setdefault(creator, []).extend([obj, link(obj, inc["id"])])
    store = Store.open(db_url(home))
    try:
        store.put_many(published_objects(), Provenance(CELL, "local"))
        for creator, objs in by_creator.items():
            result = store.put_many(objs, Provenance(creator, "taxii"))
            assert not result.rejected, result.rejected
    finally:
        store.close()
    tokens = add_members(home, READERS)
    server = start_server(home, "--rate-limit", "0")
    yield server, tokens, {"incident": inc, "request": req, "dispatch": disp, "items": items}
    server.stop()


def _expected(case: dict[str, Any], reader: str) -> tuple[set[str], set[str]]:
    """(ids owed to `reader`, ids it must not get) among the case's items and links."""
    good: set[str] = set()
    bad: set[str] = set()
    fixed = [case["incident"], case["request"], case["dispatch"]]
    for obj in fixed:
        (good if reader in AUDIENCE else bad).add(obj["id"])
    for link_of in (case["request"], case["dispatch"]):
        (good if reader in AUDIENCE else bad).add(link(link_of, case["incident"]["id"])["id"])
    (good if reader in AUDIENCE else bad).add(link(case["dispatch"], case["request"]["id"])["id"])
    for (_, level), obj in case["items"].items():
        target = good if owed(reader, level) else bad
        target.update({obj["id"], link(obj, case["incident"]["id"])["id"]})
    return good, bad


@pytest.mark.parametrize("reader", list(READERS))
def test_store_access_matrix(node: tuple[Server, dict[str, str], dict[str, Any]],
                             reader: str) -> None:
    server, _, case = node
    store = Store.open(db_url(server.home))
    try:
        access = access_for(Member(reader, READERS[reader]))
        seen = {r.id for r in store.iter_query(Query(access=access, versions="all"))}
        good, bad = _expected(case, reader)
        assert not seen & bad, f"{reader} reads {sorted(seen & bad)[:5]}"
        assert good <= seen, f"{reader} misses {sorted(good - seen)[:5]}"
        # the case as respond reads it for this reader holds exactly the owed items
        view = load_case(store, case["incident"]["id"], access)
        got = {o["id"] for o in [*view.tasks, *view.events, *view.impacts, *view.notes,
                                 *view.observed, *view.evidence, *view.custody, *view.other]}
        want = {o["id"] for (_, level), o in case["items"].items() if owed(reader, level)}
        assert got == want
        assert (view.dispatch is not None) == (reader in AUDIENCE)
    finally:
        store.close()


def _coll(server: Server, tokens: dict[str, str], member: str) -> Collection:
    api = ApiRoot(server.api(), user=member, password=tokens[member])
    return next(c for c in api.collections if c.alias == "alliance")


@pytest.mark.parametrize("reader", list(READERS))
def test_taxii_get_matrix(node: tuple[Server, dict[str, str], dict[str, Any]],
                          reader: str) -> None:
    server, tokens, case = node
    coll = _coll(server, tokens, reader)
    walked: set[str] = set()
    text = []
    for env in as_pages(coll.get_objects, per_request=100, version="all"):
        walked.update(o["id"] for o in env.get("objects", []))
        text.append(orjson.dumps(env).decode())
    good, bad = _expected(case, reader)
    assert not walked & bad, f"{reader} gets {sorted(walked & bad)[:5]}"
    assert good <= walked, f"{reader} misses {sorted(good - walked)[:5]}"
    if reader not in AUDIENCE:  # the request's content itself appears nowhere
        assert case["request"]["id"] not in "".join(text)
    # by id: an item the reader may not read answers as an id never stored
    for oid in sorted(bad)[:12]:
        r = httpx.get(server.api(f"collections/alliance/objects/{oid}/"),
                      auth=(reader, tokens[reader]), headers={"Accept": TAXII}, timeout=30)
        assert r.status_code == 404, (oid, r.status_code)


# ---- forged writes -----------------------------------------------------------------------


def _post(server: Server, tokens: dict[str, str], member: str, *objs: dict[str, Any]
          ) -> dict[str, str]:
    status = _coll(server, tokens, member).add_objects(
        orjson.dumps({"objects": list(objs)}).decode())
    out = {s["id"]: "ok" for s in status.successes}
    out.update({f["id"]: f["message"] for f in status.failures})
    return out


def test_forged_dispatch_and_request_are_refused(
        node: tuple[Server, dict[str, str], dict[str, Any]]) -> None:
    server, tokens, case = node
    req = case["request"]
    # east sends a team in the cell's name: as itself, or claiming the cell's identity
    forged = dispatch(request=req, cell=CELL, team=[f"{EAST}:eve"], lead=f"{EAST}:eve",
                      reason="let me in")
    as_east = {**forged, "created_by_ref": member_identity_id(EAST)}
    assert "speaks for member coordination" in _post(server, tokens, EAST, as_east)[
        forged["id"]]
    assert "another member's identity" in _post(server, tokens, EAST, forged)[forged["id"]]
    # east asks for help in south's name
    fake = assistance_request(requester=SOUTH, cell=CELL, incident_id=case["incident"]["id"],
                              needs=["forensics"], marking=Marking(TLP.AMBER, ()))
    assert "speaks for member cert-south" in _post(
        server, tokens, EAST, {**fake, "created_by_ref": member_identity_id(EAST)})[fake["id"]]
    # a malformed case item is refused by validation
    bad = task(creator=EAST, name="x", marking=Marking(TLP.GREEN))
    bad.pop("outcome")
    assert "outcome" in _post(server, tokens, EAST, bad)[bad["id"]]
    # a dispatch east sends in its own name is stored, yet counts for nothing: the case's
    # audience and team stay as the cell set them, and east reads nothing more
    own = dispatch(request={**req, "cell": EAST}, cell=EAST, team=[f"{EAST}:eve"],
                   lead=f"{EAST}:eve", reason="me too")
    assert _post(server, tokens, EAST, own) == {own["id"]: "ok"}
    store = Store.open(db_url(server.home))
    try:
        view = load_case(store, case["incident"]["id"], access_for(Member(CELL, "ally")))
        assert view.audience() == AUDIENCE and view.dispatch["id"] == case["dispatch"]["id"]
        east = {r.id for r in store.iter_query(Query(access=access_for(Member(EAST, "ally"))))}
        assert case["request"]["id"] not in east and case["incident"]["id"] not in east
    finally:
        store.close()


def test_federation_arrival_refuses_the_same_forgeries(
        node: tuple[Server, dict[str, str], dict[str, Any]]) -> None:
    _, _, case = node
    req = case["request"]
    at_south = Arrival.of(SOUTH, "ally", PeerConfig(name=EAST, url="https://east.example"),
                          [SOUTH, CELL, NORTH, EAST])
    forged = dispatch(request=req, cell=CELL, team=[f"{EAST}:eve"], lead=f"{EAST}:eve",
                      reason="let me in")
    why = at_south.refusal({**forged, "created_by_ref": member_identity_id(EAST)},
                           TLP.AMBER_STRICT)
    assert why and "speaks for member coordination" in why
    fake = assistance_request(requester=NORTH, cell=CELL, incident_id=case["incident"]["id"],
                              needs=["forensics"], marking=Marking(TLP.AMBER, ()))
    why = at_south.refusal({**fake, "created_by_ref": member_identity_id(EAST)}, TLP.AMBER)
    assert why and "speaks for member cert-north" in why
    # the cell's own dispatch, relayed by a peer that may not speak for the cell: refused
    why = at_south.refusal(case["dispatch"], TLP.AMBER_STRICT)
    assert why and "not a trusted relay" in why
    at_south_from_cell = Arrival.of(SOUTH, "ally", PeerConfig(name=CELL, url="https://c"),
                                    [SOUTH, CELL, NORTH, EAST])
    assert at_south_from_cell.refusal(case["dispatch"], TLP.AMBER_STRICT) is None

