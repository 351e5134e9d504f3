"""What members may write: identities, markings, sightings, collections; over real HTTP."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shieldwall.node import member_identity_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.store import Provenance, Store
from tests.factories import indicator
from tests.taxii.conftest import SHIELDWALL, Server, add_members, db_url, make_home, start_server

TAXII = "application/taxii+json;version=2.1"
SPEC = {"alice": "ally", "carol": "ally", "dave": "ally", "bob": "partner"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    home = make_home(tmp_path_factory.mktemp("writes"))
    tokens = add_members(home, SPEC)
    server = start_server(home, "--rate-limit", "0")
    yield server, tokens
    server.stop()


def _post(node: tuple[Server, dict[str, str]], member: str, objs: list[dict],
          coll: str = "alliance") -> httpx.Response:
    server, tokens = node
    return httpx.post(server.api(f"collections/{coll}/objects/"),
                      auth=(member, tokens[member]), content=json.dumps({"objects": objs}),
                      headers={"Content-Type": TAXII, "Accept": TAXII}, timeout=30)


def _get(node: tuple[Server, dict[str, str]], member: str, path: str) -> httpx.Response:
    server, tokens = node
    return httpx.get(server.api(path), auth=(member, tokens[member]), timeout=30)


def _outcome(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 202, r.text
    st = r.json()
    assert st["status"] == "complete" and st["pending_count"] == 0
    assert st["success_count"] + st["failure_count"] == st["total_count"]
    out = {s["id"]: "ok" for s in st["successes"]}
    out.update({f["id"]: f["message"] for f in st["failures"]})
    return out


def test_cannot_claim_another_members_identity(node: tuple[Server, dict[str, str]]) -> None:
    theirs = indicator("198.51.100.1", created_by_ref=member_identity_id("carol"))
    mine = indicator("198.51.100.2", created_by_ref=member_identity_id("alice"))
    vendor = indicator("198.51.100.3", created_by_ref="identity--" + "1" * 8 + "-1111-4111-8111-"
                       + "1" * 12)
    node_id = indicator("198.51.100.4", created_by_ref=member_identity_id("home-node"))
    fake_identity = {"type": "identity", "spec_version": "2.1", "id": member_identity_id("dave"),
                     "created": "2024-01-01T00:00:00Z", "modified": "2024-06-01T00:00:00Z",
                     "name": "dave"}
    out = _outcome(_post(node, "alice", [theirs, mine, vendor, node_id, fake_identity]))
    assert "another member's identity" in out[theirs["id"]]
    assert "another member's identity" in out[node_id["id"]]
    assert "identity of another member" in out[fake_identity["id"]]
    assert out[mine["id"]] == out[vendor["id"]] == "ok"
    assert _get(node, "carol", f"collections/alliance/objects/{theirs['id']}/").status_code == 404


def test_cannot_sight_on_another_members_behalf(node: tuple[Server, dict[str, str]]) -> None:
    ind = indicator("198.51.100.5", created_by_ref=member_identity_id("alice"))
    assert _outcome(_post(node, "alice", [ind])) == {ind["id"]: "ok"}

    def sighting(where: str) -> dict:
        return {"type": "sighting", "spec_version": "2.1",
                "id": f"sighting--{uuid.uuid4()}", "created": "2024-02-01T00:00:00Z",
                "modified": "2024-02-01T00:00:00Z", "sighting_of_ref": ind["id"],
                "created_by_ref": member_identity_id("alice"), "where_sighted_refs": [where]}

    forged, own = sighting(member_identity_id("carol")), sighting(member_identity_id("alice"))
    out = _outcome(_post(node, "alice", [forged, own]))
    assert "where_sighted_refs names another member's identity" in out[forged["id"]]
    assert out[own["id"]] == "ok"
    assert _get(node, "alice", f"collections/alliance/objects/{forged['id']}/").status_code == 404


def test_cannot_downgrade_what_it_did_not_create(node: tuple[Server, dict[str, str]]) -> None:
    server, _ = node
    seeded = indicator("198.51.100.10", tlp=TLP.AMBER)
    store = Store.open(db_url(server.home))
    store.put(seeded, Provenance("home-node", "import"))
    store.close()
    lower = dict(seeded, modified="2024-05-01T00:00:00.000Z",
                 object_marking_refs=[tlp_marking_ref(TLP.GREEN)])
    out = _outcome(_post(node, "alice", [lower]))
    assert "only its creator makes new versions" in out[seeded["id"]]
    assert _get(node, "bob", f"collections/alliance/objects/{seeded['id']}/").status_code == 404
    higher = dict(lower, object_marking_refs=[tlp_marking_ref(TLP.RED)])  # raising too
    assert "only its creator" in _outcome(_post(node, "alice", [higher]))[seeded["id"]]
    assert _get(node, "carol", f"collections/alliance/objects/{seeded['id']}/").status_code == 200

    own = indicator("198.51.100.11", tlp=TLP.AMBER, created_by_ref=member_identity_id("alice"))
    own_lower = dict(own, modified="2024-05-01T00:00:00.000Z",
                     object_marking_refs=[tlp_marking_ref(TLP.CLEAR)])
    assert _outcome(_post(node, "alice", [own])) == {own["id"]: "ok"}
    assert _outcome(_post(node, "alice", [own_lower])) == {own["id"]: "ok"}
    assert _get(node, "bob", f"collections/alliance/objects/{own['id']}/").status_code == 200


def test_sightings_of_strict_indicators(node: tuple[Server, dict[str, str]]) -> None:
    strict = indicator("198.51.100.20", tlp=TLP.AMBER_STRICT, **{AUDIENCE_PROPERTY: ["alice"]})
    assert _outcome(_post(node, "carol", [strict])) == {strict["id"]: "ok"}

    def sighting(tlp: TLP, **extra: object) -> dict:
        import uuid

        return {"type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
                "created": "2024-06-01T00:00:00Z", "modified": "2024-06-01T00:00:00Z",
                "sighting_of_ref": strict["id"], "count": 3,
                "object_marking_refs": [tlp_marking_ref(tlp)], **extra}

    loud = sighting(TLP.GREEN)
    quiet = sighting(TLP.AMBER_STRICT, **{AUDIENCE_PROPERTY: ["carol"]})
    out = _outcome(_post(node, "alice", [loud, quiet], coll="sightings"))
    assert "must be marked at least TLP:AMBER+STRICT" in out[loud["id"]]
    assert out[quiet["id"]] == "ok"
    # carol (named by alice) reads it; dave, an ally not named, cannot.
    path = f"collections/sightings/objects/{quiet['id']}/"
    assert _get(node, "carol", path).status_code == 200
    assert _get(node, "dave", path).status_code == 404
    listed = _get(node, "dave", "collections/sightings/objects/?match[type]=sighting").json()
    assert quiet["id"] not in {o["id"] for o in listed.get("objects", [])}


def test_collection_write_rules(node: tuple[Server, dict[str, str]]) -> None:
    r = _post(node, "bob", [indicator("198.51.100.30")])
    assert r.status_code == 403 and r.json()["http_status"] == "403"
    ok = indicator("198.51.100.31", tlp=TLP.GREEN)
    assert _outcome(_post(node, "bob", [ok], coll="sightings")) == {ok["id"]: "ok"}
    # sightings is its own scope; alliance shows everything the node holds.
    assert _get(node, "alice", f"collections/sightings/objects/{ok['id']}/").status_code == 200
    assert _get(node, "alice", f"collections/alliance/objects/{ok['id']}/").status_code == 200


def test_status_belongs_to_its_poster(node: tuple[Server, dict[str, str]]) -> None:
    r = _post(node, "alice", [indicator("198.51.100.40")])
    sid = r.json()["id"]
    assert _get(node, "alice", f"status/{sid}/").json()["id"] == sid
    theirs = _get(node, "carol", f"status/{sid}/")
    nobody = _get(node, "carol", "status/00000000-0000-4000-8000-000000000000/")
    assert (theirs.status_code, theirs.content) == (404, nobody.content)


def test_rotate_and_revoke_take_effect_on_a_running_server(
    node: tuple[Server, dict[str, str]],
) -> None:
    server, _ = node
    home = ["--home", str(server.home)]
    token = subprocess.run([SHIELDWALL, "member", "add", "erin", "--tier", "organisation", *home],
                           capture_output=True, text=True, check=True).stdout
    assert token.count("\n") == 1 and token.startswith("swt_")
    token = token.strip()
    assert httpx.get(server.api(), auth=("erin", token)).status_code == 200
    new = subprocess.run([SHIELDWALL, "member", "rotate", "erin", *home],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert _eventually_401(server, "erin", token)  # verified tokens are cached for 1 s
    assert httpx.get(server.api(), auth=("erin", new)).status_code == 200
    subprocess.run([SHIELDWALL, "member", "revoke", "erin", *home], check=True)
    assert _eventually_401(server, "erin", new)
    listing = subprocess.run([SHIELDWALL, "member", "list", *home], capture_output=True,
                             text=True, check=True).stdout
    assert "erin" in listing and "revoked" in listing
    dup = subprocess.run([SHIELDWALL, "member", "add", "alice", *home], capture_output=True,
                         text=True)
    assert dup.returncode == 2 and dup.stdout == "" and "already exists" in dup.stderr


def _eventually_401(server: Server, user: str, token: str) -> bool:
    for _ in range(100):
        if httpx.get(server.api(), auth=(user, token)).status_code == 401:
            return True
        time.sleep(0.1)
    return False


def test_failed_logins_are_limited_and_logged(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    tokens = add_members(home, {"alice": "ally"})
    server = start_server(home)
    try:
        codes = [httpx.get(server.api(), auth=("alice", "swt_wrong")).status_code
                 for _ in range(12)]
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
        # While blocked, even the right token waits: guessing cannot continue.
        assert httpx.get(server.api(), auth=("alice", tokens["alice"])).status_code == 429
        for _ in range(100):
            fails = [line for line in server.log if '"login_failed"' in line]
            if len(fails) >= 10:
                break
            time.sleep(0.05)
        record = json.loads(fails[0])
        assert record["user"] == "alice" and "swt_wrong" not in "\n".join(server.log)
    finally:
        server.stop()


def test_per_member_rate_limit(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    tokens = add_members(home, {"alice": "ally", "bob": "ally"})
    server = start_server(home, "--rate-limit", "0.1")  # one request per 10 s
    try:
        first = httpx.get(server.api(), auth=("alice", tokens["alice"]))
        second = httpx.get(server.api(), auth=("alice", tokens["alice"]))
        other = httpx.get(server.api(), auth=("bob", tokens["bob"]))
        assert first.status_code == 200 and other.status_code == 200
        assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
        assert second.json()["http_status"] == "429"
    finally:
        server.stop()


def test_anonymous_discovery_only_when_allowed(tmp_path: Path) -> None:
    closed = make_home(tmp_path / "closed")
    opened = make_home(tmp_path / "open", server={"allow_anonymous_discovery": True})
    for home, want in ((closed, 401), (opened, 200)):
        server = start_server(home)
        try:
            assert httpx.get(server.url + "/taxii2/").status_code == want
            assert httpx.get(server.api()).status_code == 401
        finally:
            server.stop()
