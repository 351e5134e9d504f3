"""A member's view: the OASIS taxii2-client against a real `shieldwall serve`."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from shieldwall.stix.markings import TLP
from tests.factories import indicator
from tests.taxii.conftest import Server as Proc
from tests.taxii.conftest import add_members, make_home, start_server

TAXII = "application/taxii+json;version=2.1"


@pytest.fixture(scope="module")
def node(backend: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[Proc, dict[str, str]]]:
    home = make_home(tmp_path_factory.mktemp("client"), backend)
    tokens = add_members(home, {"alice": "ally", "bob": "partner", "carol": "ally"})
    server = start_server(home, "--rate-limit", "0")
    yield server, tokens
    server.stop()


def _collection(node: tuple[Proc, dict[str, str]], member: str, alias: str) -> Collection:
    server, tokens = node
    api = ApiRoot(server.api(), user=member, password=tokens[member])
    for coll in api.collections:
        if coll.alias == alias:
            return coll
    raise AssertionError(f"{member} does not see collection {alias}")


def test_discovery_api_root_and_collections(node: tuple[Proc, dict[str, str]]) -> None:
    server, tokens = node
    srv = Server(server.url + "/taxii2/", user="alice", password=tokens["alice"])
    assert srv.title.startswith("Shieldwall node")
    assert [r.url for r in srv.api_roots] == [server.api()]
    api = srv.default
    assert api.versions == [TAXII]
    assert api.max_content_length > 0
    by_alias = {c.alias: c for c in api.collections}
    assert set(by_alias) == {"alliance", "sightings"}
    assert by_alias["alliance"].can_read and by_alias["alliance"].can_write
    bob = ApiRoot(server.api(), user="bob", password=tokens["bob"])
    bob_view = {c.alias: c for c in bob.collections}
    assert bob_view["alliance"].can_read and not bob_view["alliance"].can_write
    assert bob_view["sightings"].can_write


def test_add_page_filter_versions_manifest(node: tuple[Proc, dict[str, str]]) -> None:
    coll = _collection(node, "alice", "alliance")
    tag = uuid.uuid4().hex[:8]
    objs = [indicator(f"10.{i // 256}.{i % 256}.1", tlp=TLP.GREEN, name=f"{tag}-{i}")
            for i in range(25)]
    status = coll.add_objects({"objects": objs})
    assert status.status == "complete"
    assert status.total_count == 25 and status.success_count == 25 and status.failure_count == 0
    assert {s["id"] for s in status.successes} == {o["id"] for o in objs}
    status.refresh()  # GET status/{id}
    assert status.success_count == 25

    # A second version of one object, and a duplicate delivery.
    v2 = dict(objs[0], modified="2024-02-01T00:00:00.000Z", name=f"{tag}-0-v2")
    status = coll.add_objects({"objects": [v2, objs[1]]})
    messages = {s["id"]: s["message"] for s in status.successes}
    assert messages == {objs[0]["id"]: "new version", objs[1]["id"]: "duplicate"}

    ids = {o["id"] for o in objs}
    seen: list[str] = []
    for env in as_pages(coll.get_objects, per_request=7, type="indicator"):
        seen += [o["id"] for o in env.get("objects", []) if o["id"] in ids]
    assert sorted(seen) == sorted(ids)  # every object once, none repeated

    env = coll.get_objects(id=objs[0]["id"])
    assert [o["name"] for o in env["objects"]] == [f"{tag}-0-v2"]  # default: last
    env = coll.get_objects(id=objs[0]["id"], version="first")
    assert [o["name"] for o in env["objects"]] == [f"{tag}-0"]
    env = coll.get_objects(id=objs[0]["id"], version="all")
    assert len(env["objects"]) == 2
    env = coll.get_objects(id=objs[0]["id"], version="2024-01-01T00:00:00Z")
    assert [o["name"] for o in env["objects"]] == [f"{tag}-0"]
    env = coll.get_objects(id=[objs[2]["id"], objs[3]["id"]])  # comma-separated
    assert {o["id"] for o in env["objects"]} == {objs[2]["id"], objs[3]["id"]}
    assert coll.get_objects(type="malware").get("objects", []) == []
    assert coll.get_objects(spec_version="2.1", id=objs[4]["id"])["objects"][0]["id"] == \
        objs[4]["id"]

    versions = coll.object_versions(objs[0]["id"])
    assert versions["versions"] == ["2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z"]
    one = coll.get_object(objs[5]["id"])
    assert one["objects"][0] == objs[5]

    manifest = coll.get_manifest(id=objs[6]["id"])
    rec = manifest["objects"][0]
    assert rec["id"] == objs[6]["id"] and rec["version"] == "2024-01-01T00:00:00.000Z"
    assert rec["media_type"] == "application/stix+json;version=2.1"

    # added_after: only what came after the last object of the first add.
    first = coll._conn.session.get(coll.url + "objects/", params={"match[id]": objs[24]["id"]})
    after = first.headers["X-TAXII-Date-Added-Last"]
    later = coll.get_objects(added_after=after, type="indicator")
    assert [o["id"] for o in later["objects"]] == [objs[0]["id"]]  # only v2 came later


def test_delete_and_partial_success(node: tuple[Proc, dict[str, str]]) -> None:
    coll = _collection(node, "alice", "alliance")
    good = indicator("192.0.2.99", tlp=TLP.GREEN)
    bad = {"type": "indicator", "id": "indicator--not-a-uuid"}
    no_pattern = {k: v for k, v in indicator("192.0.2.98").items() if k != "pattern"}
    status = coll.add_objects({"objects": [good, bad, no_pattern]})
    assert status.success_count == 1 and status.failure_count == 2
    reasons = " | ".join(f["message"] for f in status.failures)
    assert "id" in reasons and "pattern" in reasons
    carol = _collection(node, "carol", "alliance")
    with pytest.raises(requests.HTTPError) as exc:
        carol.delete_object(good["id"])  # visible to carol, but not hers
    assert exc.value.response.status_code == 403
    coll.delete_object(good["id"])
    with pytest.raises(requests.HTTPError) as exc:
        coll.get_object(good["id"])
    assert exc.value.response.status_code == 404


def test_protocol_errors(node: tuple[Proc, dict[str, str]]) -> None:
    server, tokens = node
    auth = ("alice", tokens["alice"])
    objects = server.api("collections/alliance/objects/")
    r = httpx.get(objects, auth=auth, headers={"Accept": "application/xml"})
    assert r.status_code == 406 and r.json()["http_status"] == "406"
    r = httpx.post(objects, auth=auth, content=b'{"objects": []}',
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 415
    assert r.headers["content-type"] == TAXII
    r = httpx.get(objects)
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]
    assert set(r.json()) == {"title", "description", "http_status"}
    r = httpx.get(objects, headers={"Authorization": "Bearer " + tokens["alice"]})
    assert r.status_code == 200
    r = httpx.get(objects, auth=auth, params={"next": "garbage!"})
    assert r.status_code == 400
    r = httpx.get(objects, auth=auth, params={"limit": "0"})
    assert r.status_code == 400
    r = httpx.get(objects, auth=auth, params={"added_after": "yesterday"})
    assert r.status_code == 400
    r = httpx.post(objects, auth=auth, content=b"{not json",
                   headers={"Content-Type": TAXII})
    assert r.status_code == 400
    api = httpx.get(server.api(), auth=auth).json()
    big = b'{"objects": [' + b" " * api["max_content_length"] + b"]}"
    r = httpx.post(objects, auth=auth, content=big, headers={"Content-Type": TAXII})
    assert r.status_code == 413
    # The API's documentation is for members (tests/security/test_taxii_oracles.py).
    r = httpx.get(server.url + "/openapi.json", auth=auth)
    assert r.status_code == 200 and "/api/collections/{cid}/objects/" in r.json()["paths"]
    assert httpx.get(server.url + "/docs", auth=auth).status_code == 200
    assert httpx.get(server.url + "/docs").status_code == 401


def test_access_log_is_json_and_names_the_member(node: tuple[Proc, dict[str, str]]) -> None:
    import json
    import time

    server, tokens = node
    marker = uuid.uuid4().hex
    httpx.get(server.api("collections/"), params={"m": marker},
              auth=("alice", tokens["alice"]))
    for _ in range(100):
        lines = [line for line in server.log if marker in line]
        if lines:
            break
        time.sleep(0.05)
    record = json.loads(lines[0])
    assert record["member"] == "alice" and record["status"] == 200
    assert record["path"] == "/api/collections/"


def test_basic_auth_needs_matching_name(node: tuple[Proc, dict[str, str]]) -> None:
    server, tokens = node
    r = httpx.get(server.api(), auth=("bob", tokens["alice"]))
    assert r.status_code == 401
    raw = base64.b64encode(b"alice:" + tokens["alice"].encode()).decode()
    r = httpx.get(server.api(), headers={"Authorization": "Basic " + raw})
    assert r.status_code == 200


def test_tokens_are_not_stored(node: tuple[Proc, dict[str, str]], tmp_path: Path) -> None:
    server, tokens = node
    db = server.home / "shieldwall.db"
    if db.exists():
        raw = db.read_bytes()
        assert tokens["alice"].encode() not in raw
