"""A member POSTs objects that other members' tools (and this node's dashboard) cannot read:
TAXII refuses them as `import` and federation do (the OASIS STIX 2.1 schemas and pattern
grammar, and the fields the dashboard reads of the node's own custom types), and still
accepts what those paths accept, second-precision timestamps included. Over real HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shieldwall.node import member_identity_id
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from tests.factories import indicator
from tests.taxii.conftest import Server, add_members, make_home, start_server

TAXII = "application/taxii+json;version=2.1"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    home = make_home(tmp_path_factory.mktemp("post-validation"))
    token = add_members(home, {"mallory": "ally"})["mallory"]
    server = start_server(home, "--rate-limit", "0")
    yield server, token
    server.stop()


def _post(node: tuple[Server, str], objs: list[dict[str, Any]]) -> dict[str, str]:
    server, token = node
    r = httpx.post(server.api("collections/alliance/objects/"), auth=("mallory", token),
                   content=json.dumps({"objects": objs}),
                   headers={"Content-Type": TAXII, "Accept": TAXII}, timeout=30)
    assert r.status_code == 202, r.text
    st = r.json()
    assert st["success_count"] + st["failure_count"] == st["total_count"] == len(objs)
    out = {s["id"]: "ok" for s in st["successes"]}
    out.update({f["id"]: f["message"] for f in st["failures"]})
    return out


def _sighting(of: str, **extra: Any) -> dict[str, Any]:
    ident = member_identity_id("mallory")
    return {"type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
            "created": "2024-02-01T00:00:00.000Z", "modified": "2024-02-01T00:00:00.000Z",
            "sighting_of_ref": of, "created_by_ref": ident, "where_sighted_refs": [ident],
            "object_marking_refs": [tlp_marking_ref(TLP.GREEN)], **extra}


def _posture(day: int, **extra: Any) -> dict[str, Any]:
    """A posture snapshot of the poster itself, with the id derived from it and its date
    (so no write rule about whom it speaks for can be the reason it is refused)."""
    date = f"2024-03-{day:02d}"
    return {"type": "x-shieldwall-posture", "spec_version": "2.1",
            "id": deterministic_id("x-shieldwall-posture", f"mallory:{date}"),
            "created": f"{date}T00:00:00.000Z", "modified": f"{date}T00:00:00.000Z",
            "created_by_ref": member_identity_id("mallory"), "name": "Posture",
            "x_shieldwall_member": "mallory", "x_shieldwall_date": date,
            "x_shieldwall_index": 71.5, "x_shieldwall_commitments": {"hygiene": 0.7},
            "x_shieldwall_checks": {"passwords": {"score": 0.8}},
            "object_marking_refs": [tlp_marking_ref(TLP.GREEN)], **extra}


def test_objects_no_reader_can_read_are_refused(node: tuple[Server, str]) -> None:
    target = indicator("198.51.100.40")
    hostile = {
        "unparseable pattern": indicator(pattern="[ipv4-addr:value = '198.51.100.41'"),
        "pattern that is a list": indicator(pattern=["[ipv4-addr:value = '198.51.100.42']"]),
        "extensions that are a list": indicator("198.51.100.43", extensions=["x"]),
        "sighting count that is text": _sighting(target["id"], count="many"),
        "posture index that is text": _posture(2, x_shieldwall_index="excellent"),
        "posture commitments that are a list": _posture(3, x_shieldwall_commitments=["h"]),
        "posture member that is not a name": _posture(4, x_shieldwall_member={"a": 1}),
    }
    fine = {
        "indicator": target,
        "sighting": _sighting(target["id"], count=3),
        "posture": _posture(1),
    }
    out = _post(node, [*fine.values(), *hostile.values()])
    for what, obj in fine.items():
        assert out[obj["id"]] == "ok", (what, out[obj["id"]])
    for what, obj in hostile.items():
        assert out[obj["id"]].startswith("invalid STIX 2.1: "), (what, out[obj["id"]])
    assert "pattern" in out[hostile["unparseable pattern"]["id"]]
    assert "count" in out[hostile["sighting count that is text"]["id"]]
    assert "x_shieldwall_index" in out[hostile["posture index that is text"]["id"]]
    server, token = node
    for obj in hostile.values():
        r = httpx.get(server.api(f"collections/alliance/objects/{obj['id']}/"),
                      auth=("mallory", token), headers={"Accept": TAXII}, timeout=30)
        assert r.status_code == 404


def test_second_precision_timestamps_stay_accepted(node: tuple[Server, str]) -> None:
    """The schemas ask for milliseconds in created/modified; TAXII accepted `...:00Z` before
    and federation accepts it (`_precise`): so does POST, and the stored text is as sent."""
    obj = indicator("198.51.100.44", created="2024-01-01T00:00:00Z",
                    modified="2024-01-02T00:00:00Z", valid_from="2024-01-01T00:00:00Z")
    assert _post(node, [obj]) == {obj["id"]: "ok"}
    server, token = node
    r = httpx.get(server.api(f"collections/alliance/objects/{obj['id']}/"),
                  auth=("mallory", token), headers={"Accept": TAXII}, timeout=30)
    assert r.json()["objects"][0]["modified"] == "2024-01-02T00:00:00Z"
