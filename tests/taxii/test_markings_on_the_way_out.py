"""A TAXII reader gets each object stating the TLP level this node holds it at: an unmarked
object held at the node's default (AMBER) is served with the TLP 2.0 AMBER ref, so a reader
whose own default is lower cannot widen its audience. The stored text is not changed."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import orjson
import pytest
from starlette.testclient import TestClient

from shieldwall.policy import Members
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.store import Provenance, Store
from shieldwall.taxii.app import Settings, create_app
from shieldwall.taxii.media import TAXII_21
from tests.factories import indicator


@pytest.fixture
def served(sqlite_store: Store) -> Iterator[tuple[TestClient, dict[str, str]]]:
    token = Members(sqlite_store.engine).add("latvia", "ally")
    auth = base64.b64encode(f"latvia:{token}".encode()).decode()
    headers = {"Accept": TAXII_21, "Authorization": f"Basic {auth}"}
    with TestClient(create_app(sqlite_store, Settings(node_member="home-node",
                                                      rate_limit=0))) as http:
        yield http, headers


def test_unmarked_object_is_served_with_the_level_held(
    served: tuple[TestClient, dict[str, str]], sqlite_store: Store
) -> None:
    http, headers = served
    unmarked = indicator("198.51.100.7", tlp=None)
    green = indicator("198.51.100.8", tlp=TLP.GREEN)
    sqlite_store.put_many([unmarked, green], Provenance("home-node"), default_tlp=TLP.AMBER)
    stored = {oid: sqlite_store.get_json(oid) for oid in (unmarked["id"], green["id"])}

    page = http.get("/api/collections/alliance/objects/", headers=headers)
    assert page.status_code == 200, page.text
    served_objs = {o["id"]: o for o in page.json()["objects"]}
    assert served_objs[unmarked["id"]]["object_marking_refs"] == [tlp_marking_ref(TLP.AMBER)]
    assert served_objs[green["id"]] == orjson.loads(stored[green["id"]] or "")  # as stored

    one = http.get(f"/api/collections/alliance/objects/{unmarked['id']}/", headers=headers)
    assert one.json()["objects"][0]["object_marking_refs"] == [tlp_marking_ref(TLP.AMBER)]
    # the stored canonical text is what it was
    assert {oid: sqlite_store.get_json(oid) for oid in stored} == stored
    assert "object_marking_refs" not in (stored[unmarked["id"]] or "")
