"""Custom TLP marking definitions (MISP and OpenCTI mint their own ids) posted over TAXII:
what they mark is stored at their level, and re-sending a stored definition with a lower
level does not lower what it marks. Whose definitions count: the poster's own (in the
envelope or stored from it before) and the node's, never another member's; well-known
platform ids keep their level whatever a definition says."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from shieldwall.policy import Members
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Query, Store
from shieldwall.taxii.app import Settings, create_app
from shieldwall.taxii.media import TAXII_21
from tests.factories import indicator


def _definition(level: str, oid: str | None = None) -> dict[str, Any]:
    """A producer's own TLP definition as OpenCTI writes one (a "statement" definition: a
    "tlp" one is valid STIX 2.1 only under the four official ids)."""
    return {"type": "marking-definition", "spec_version": "2.1",
            "id": oid or f"marking-definition--{uuid.uuid4()}",
            "created": "2024-01-01T00:00:00.000Z", "name": f"TLP:{level.upper()}",
            "definition_type": "statement", "definition": {"statement": "custom"},
            "x_opencti_definition_type": "TLP",
            "x_opencti_definition": f"TLP:{level.upper()}"}


@pytest.fixture
def client(sqlite_store: Store) -> Iterator[tuple[TestClient, dict[str, str]]]:
    reg = Members(sqlite_store.engine)
    tokens = {"latvia": reg.add("latvia", "ally")}
    with TestClient(create_app(sqlite_store, Settings(node_member="home-node",
                                                      rate_limit=0))) as http:
        yield http, tokens


def _post(http: TestClient, tokens: dict[str, str], objs: list[dict[str, Any]]) -> Any:
    auth = base64.b64encode(f"latvia:{tokens['latvia']}".encode()).decode()
    resp = http.post("/api/collections/alliance/objects/", json={"objects": objs},
                     headers={"Content-Type": TAXII_21, "Accept": TAXII_21,
                              "Authorization": f"Basic {auth}"})
    assert resp.status_code == 202, resp.text
    return resp.json()


def _stored_tlp(store: Store, oid: str) -> TLP:
    rows = store.read_page(Query(ids=[oid], versions="last")).rows
    assert len(rows) == 1
    return TLP(rows[0].tlp)


def test_custom_red_in_the_envelope_marks_at_red(
    client: tuple[TestClient, dict[str, str]], sqlite_store: Store
) -> None:
    http, tokens = client
    red = _definition("red")
    marked = indicator("192.0.2.98", tlp=None, object_marking_refs=[red["id"]])
    assert _post(http, tokens, [red, marked])["success_count"] == 2
    assert _stored_tlp(sqlite_store, marked["id"]) == TLP.RED


@pytest.mark.parametrize(("stored", "sent"), [("red", "clear"), ("green", "red")],
                         ids=["resending-cannot-lower", "resending-can-raise"])
def test_the_stricter_of_stored_and_sent_definitions_wins(
    client: tuple[TestClient, dict[str, str]], sqlite_store: Store, stored: str, sent: str
) -> None:
    http, tokens = client
    held = _definition(stored)
    sqlite_store.put_many([held], Provenance("home-node", "import"))
    resent = _definition(sent, oid=held["id"])
    marked = indicator("192.0.2.99", tlp=None, object_marking_refs=[held["id"]])
    _post(http, tokens, [resent, marked])
    assert _stored_tlp(sqlite_store, marked["id"]) == TLP.RED


def test_a_members_own_definition_counts_for_its_later_objects(
    client: tuple[TestClient, dict[str, str]], sqlite_store: Store
) -> None:
    http, tokens = client
    green = _definition("green")
    _post(http, tokens, [green])
    marked = indicator("192.0.2.100", tlp=None, object_marking_refs=[green["id"]])
    _post(http, tokens, [marked])
    assert _stored_tlp(sqlite_store, marked["id"]) == TLP.GREEN


@pytest.mark.parametrize("stored", ["clear", "red"])
def test_another_members_definition_does_not_count(
    client: tuple[TestClient, dict[str, str]], sqlite_store: Store, stored: str
) -> None:
    """Neither to lower (a leak) nor to raise (hiding another member's objects): the
    object falls to the node's default."""
    http, tokens = client
    theirs = _definition(stored)
    sqlite_store.put_many([theirs], Provenance("estonia", "taxii", "alliance"))
    marked = indicator("192.0.2.101", tlp=None, object_marking_refs=[theirs["id"]])
    _post(http, tokens, [marked])
    assert _stored_tlp(sqlite_store, marked["id"]) == TLP.AMBER


def test_a_well_known_platform_id_keeps_its_level(
    client: tuple[TestClient, dict[str, str]], sqlite_store: Store
) -> None:
    http, tokens = client
    opencti_amber_strict = "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"
    lie = _definition("clear", oid=opencti_amber_strict)
    marked = indicator("192.0.2.102", tlp=None, object_marking_refs=[opencti_amber_strict])
    _post(http, tokens, [lie, marked])
    assert _stored_tlp(sqlite_store, marked["id"]) == TLP.AMBER_STRICT


def test_a_definition_already_held_from_another_member_counts_for_its_sender(
    client: tuple[TestClient, dict[str, str]], sqlite_store: Store
) -> None:
    """latvia sends the very definition estonia stored (a duplicate, not stored again):
    latvia's later objects that rely on it are held at its level all the same."""
    http, tokens = client
    red = _definition("red")
    sqlite_store.put_many([red], Provenance("estonia", "taxii", "alliance"))
    assert _post(http, tokens, [red])["successes"][0]["message"] == "duplicate"
    marked = indicator("192.0.2.103", tlp=None, object_marking_refs=[red["id"]])
    _post(http, tokens, [marked])
    assert _stored_tlp(sqlite_store, marked["id"]) == TLP.RED


def test_a_definition_whose_id_is_no_stix_id_is_refused_not_kept(store: Store) -> None:
    """A 400-character "id" is no STIX id: nothing is kept for it (PostgreSQL would refuse
    the row), and the rest of the envelope is stored."""
    reg = Members(store.engine)
    tokens = {"latvia": reg.add("latvia", "ally")}
    long_id = "marking-definition--" + "a" * 400
    with TestClient(create_app(store, Settings(node_member="home-node", rate_limit=0))) as http:
        green = _definition("green")
        marked = indicator("192.0.2.104", tlp=None, object_marking_refs=[green["id"]])
        got = _post(http, tokens, [_definition("red", oid=long_id), green, marked])
    assert {s["id"] for s in got["successes"]} == {green["id"], marked["id"]}
    assert _stored_tlp(store, marked["id"]) == TLP.GREEN
