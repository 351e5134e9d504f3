"""The dashboard's case pages against the matrix item type x TLP x reader (requester, cell,
team member, other ally, partner, organisation), on SQLite and PostgreSQL: a reader of the
case finds on its page exactly the items its `Access` owes it, and a reader outside the
case's audience gets a 404 indistinguishable from a case that never existed, and no item
of it on any page (the case list, the requests, the sightings, the overview)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shieldwall.policy import Members, member_identity_id
from shieldwall.respond.model import Marking, assistance_request, dispatch, link, published_objects
from shieldwall.stix.ids import new_id
from shieldwall.stix.markings import TLP
from shieldwall.stix.validate import object_error
from shieldwall.store import Provenance, Store
from shieldwall.taxii.app import Settings, access_for, create_app
from shieldwall.web import mount
from shieldwall.web.users import create_user
from tests.security.test_case_access import AUDIENCE, CELL, MAKERS, READERS, SOUTH, TEAM, TS, owed
from tests.web.test_auth_policy import sign_in

D = "/dashboard"
NEVER = "incident--00000000-0000-4000-8000-000000000000"


@pytest.fixture
def case_node(store: Store) -> Iterator[tuple[TestClient, dict[str, str], dict[str, Any]]]:
    """The cell's node holding one AMBER+STRICT case with every item type at every TLP,
    each delivered by its creator; a dashboard user per reader."""
    reg = Members(store.engine)
    for name, tier in READERS.items():
        reg.add(name, tier)
    users = {m: create_user(store, f"u-{m}", m, "analyst") for m in READERS}
    mark = Marking(TLP.AMBER_STRICT, AUDIENCE)
    inc = {"type": "incident", "spec_version": "2.1", "id": new_id("incident"),
           "created": TS, "modified": TS, "created_by_ref": member_identity_id(SOUTH),
           "name": "Ransomware at the grid operator", **mark.props()}
    req = assistance_request(requester=SOUTH, cell=CELL, incident_id=inc["id"],
                             needs=["forensics"], marking=mark)
    disp = dispatch(request=req, cell=CELL, team=TEAM, lead=TEAM[0], reason="north")
    items: dict[tuple[str, TLP], dict[str, Any]] = {}
    by_creator: dict[str, list[dict[str, Any]]] = {
        SOUTH: [inc, req, link(req, inc["id"])],
        CELL: [disp, link(disp, inc["id"]), link(disp, req["id"])]}
    for kind, (creator, make) in MAKERS.items():
        for level in TLP:
            obj = make(Marking(level, AUDIENCE), inc["id"])
            assert object_error(obj) is None, (kind, level)
            items[(kind, level)] = obj
            by_creator.setdefault(creator, []).extend([obj, link(obj, inc["id"])])
    store.put_many(published_objects(), Provenance(CELL, "local"))
    for creator, objs in by_creator.items():
        result = store.put_many(objs, Provenance(creator, "taxii"))
        assert not result.rejected, result.rejected
    app = create_app(store, Settings(node_member=CELL))
    mount(app, store, access_for, node_member=CELL)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c, users, {"incident": inc, "request": req, "dispatch": disp, "items": items}


@pytest.mark.parametrize("reader", list(READERS))
def test_case_page_matrix(case_node: tuple[TestClient, dict[str, str], dict[str, Any]],
                          reader: str) -> None:
    client, users, case = case_node
    sign_in(client, f"u-{reader}", users[reader])
    case_id = case["incident"]["id"]
    page = client.get(f"{D}/cases/{case_id}")
    others = "".join(client.get(D + p).text for p in ("/cases", "/assistance", "/sightings",
                                                      "/", "/incidents"))
    fixed = [case["request"]["id"], case["dispatch"]["id"]]
    if reader not in AUDIENCE:
        never = client.get(f"{D}/cases/{NEVER}")
        assert page.status_code == never.status_code == 404
        assert page.text.replace(case_id, "X") == never.text.replace(NEVER, "X")
        for oid in [case_id, *fixed]:
            assert oid not in others
        for (kind, level), obj in case["items"].items():
            if not owed(reader, level):  # what TAXII owes it may show elsewhere, not more
                assert obj["id"] not in others, (reader, kind, level)
        return
    assert page.status_code == 200
    shown = set(re.findall(r'data-(?:task|event|evidence|custody|observable|note|impact|item)'
                           r'="([^"]+)"', page.text))
    want = {o["id"] for (_, level), o in case["items"].items() if owed(reader, level)}
    assert shown == want, (reader, sorted(shown ^ want)[:4])
    for (kind, level), obj in case["items"].items():
        if not owed(reader, level):
            assert obj["id"] not in page.text + others, (reader, kind, level)
    assert case_id in others and case["request"]["id"] in others
