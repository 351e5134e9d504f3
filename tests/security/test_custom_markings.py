"""A producer marks with its own TLP marking definition (MISP and OpenCTI mint custom ids for
`TLP:RED`), posted by TAXII in the same envelope as what it marks. Over a real server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shieldwall.stix.markings import TLP, tlp_marking_ref
from tests.factories import indicator
from tests.taxii.conftest import Server, add_members, make_home, start_server

TAXII = "application/taxii+json;version=2.1"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    home = make_home(tmp_path_factory.mktemp("markings"))
    tokens = add_members(home, {"latvia": "ally", "lithuania": "ally"})
    server = start_server(home, "--rate-limit", "0")
    yield server, tokens
    server.stop()


def test_custom_red_marking_in_the_envelope_is_honoured(
        node: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    server, tokens = node
    custom = {"type": "marking-definition", "spec_version": "2.1",
              "id": f"marking-definition--{uuid.uuid4()}", "created": "2024-01-01T00:00:00.000Z",
              "name": "TLP:RED", "definition_type": "tlp", "definition": {"tlp": "red"}}
    marked = indicator("192.0.2.88", tlp=None)
    marked["object_marking_refs"] = [custom["id"]]
    granular = indicator("192.0.2.89", tlp=TLP.GREEN)
    granular["description"] = "custom-red source"
    granular["granular_markings"] = [{"marking_ref": custom["id"], "selectors": ["description"]}]
    resp = httpx.post(server.api("collections/alliance/objects/"),
                      auth=("latvia", tokens["latvia"]), timeout=30,
                      content=json.dumps({"objects": [custom, marked, granular]}),
                      headers={"Content-Type": TAXII, "Accept": TAXII})
    # The definition itself may be refused (a "tlp" definition under a custom id is not
    # valid STIX 2.1); what it says still marks what its sender marks with it.
    assert resp.status_code == 202, resp.text
    assert {s["id"] for s in resp.json()["successes"]} >= {marked["id"], granular["id"]}
    for obj in (marked, granular):
        got = httpx.get(server.api(f"collections/alliance/objects/{obj['id']}/"),
                        auth=("lithuania", tokens["lithuania"]), timeout=30)
        assert got.status_code == 404, f"lithuania reads {obj['id']} marked TLP:RED"
    assert tlp_marking_ref(TLP.RED) != custom["id"]


def test_pulled_page_with_a_custom_red_marking_is_refused() -> None:
    from shieldwall.config import PeerConfig
    from shieldwall.federation.pull import _judge
    from shieldwall.federation.rules import Arrival

    custom = {"type": "marking-definition", "spec_version": "2.1",
              "id": f"marking-definition--{uuid.uuid4()}", "created": "2024-01-01T00:00:00.000Z",
              "name": "TLP:RED", "definition_type": "tlp", "definition": {"tlp": "red"}}
    marked = indicator("192.0.2.90", tlp=None)
    marked["object_marking_refs"] = [custom["id"]]
    peer = PeerConfig(name="latvia", url="https://127.0.0.1:1", token_file="/dev/null")
    judged = _judge([custom, marked], Arrival.of("estonia", "ally", peer, {"latvia"}),
                    TLP.AMBER)
    assert [why for row, why in judged.refused if row[0] == marked["id"]] == [
        "TLP:RED is never federated"]
