"""An attacker's walk to the consultation policy: the node's own member (which stored the
policy, so it "delivered" and "created" it) asks for it over TAXII by every route, through
the store's Access, and through `export --for` and `search --for`. The policy is for the
names in its audience alone; a policy naming only the cell never reaches the member."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import requests
from taxii2client.v21 import ApiRoot, Collection, as_pages

from shieldwall.assess.consultation import (
    DEFAULT_POLICY,
    POLICY_TYPE,
    ConsultationError,
    load_policy,
    policy_id,
    reader_access,
    store_policy,
)
from shieldwall.config import init_home
from shieldwall.policy import Member, member_identity_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Query, Store
from shieldwall.taxii.app import access_for
from tests.factories import indicator
from tests.security.test_export_ceiling import run
from tests.taxii.conftest import Server, add_members, db_url, start_server

NODE = "estonia"  # the node's own member: it stores the policy
CELL_ROLE = "coordination-cell"  # the only name the policy lets read it
SECRET = "min_severity"  # a threshold figure's name: in the policy, nowhere else
MEMBERS = {NODE: "ally", "latvia": "ally", "partnerland": "partner", CELL_ROLE: "ally"}
TAXII = "application/taxii+json;version=2.1"
NEVER = policy_id("never-stored-cell")


def _store_cell_policy(store: Store) -> dict[str, Any]:
    return store_policy(store, replace(DEFAULT_POLICY, readers=(CELL_ROLE,)), cell=NODE,
                        created_by_ref=member_identity_id(NODE))


# ---- over TAXII, with the OASIS client against a real `shieldwall serve` -------------------


@pytest.fixture(scope="module")
def node(backend: str | None, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Server, dict[str, str], dict[str, Any]]]:
    home = tmp_path_factory.mktemp("consult") / "node"
    init_home(home, NODE, **({"database_url": backend} if backend else {}))
    store = Store.open(db_url(home))
    try:
        policy = _store_cell_policy(store)
        # Beside it, what the member does see: a GREEN indicator and its own RED one.
        store.put_many([indicator("192.0.2.7", tlp=TLP.GREEN, name="green-beside"),
                        indicator("192.0.2.8", tlp=TLP.RED, name="own-red",
                                  created_by_ref=member_identity_id(NODE))],
                       Provenance(NODE, "local"))
    finally:
        store.close()
    tokens = add_members(home, MEMBERS)
    server = start_server(home, "--rate-limit", "0")
    yield server, tokens, policy
    server.stop()


def _collection(server: Server, tokens: dict[str, str], member: str) -> Collection:
    api = ApiRoot(server.api(), user=member, password=tokens[member])
    return next(c for c in api.collections if c.alias == "alliance")


def _raw(server: Server, tokens: dict[str, str], member: str, method: str, path: str,
         **params: str) -> httpx.Response:
    return httpx.request(method, server.api(f"collections/alliance/{path}"), params=params,
                         auth=(member, tokens[member]), headers={"Accept": TAXII})


def _answer(r: httpx.Response, stix_id: str) -> tuple[int, str, dict[str, str]]:
    """What a client learns from an answer, with the id asked for blanked out."""
    headers = {k: v for k, v in r.headers.items() if k.lower() not in ("date", "content-length")}
    return r.status_code, r.text.replace(stix_id, "ID"), headers


@pytest.mark.parametrize("member", [NODE, "latvia", "partnerland"])
def test_taxii_never_serves_the_policy_to_a_member_it_does_not_name(
        node: tuple[Server, dict[str, str], dict[str, Any]], member: str) -> None:
    server, tokens, policy = node
    pid = policy["id"]
    coll = _collection(server, tokens, member)

    def leaked(envelope: Any) -> bool:
        text = orjson.dumps(envelope).decode()
        return pid in text or SECRET in text or POLICY_TYPE in text

    walked = [env for env in as_pages(coll.get_objects, per_request=1)]
    assert any(env.get("objects") for env in walked)  # the walk itself works
    assert not any(leaked(env) for env in walked)
    for filters in ({"type": POLICY_TYPE}, {"version": "all"}, {"id": pid},
                    {"type": POLICY_TYPE, "version": "all"}, {"version": "first"}):
        assert not leaked(coll.get_objects(**filters)), filters
        assert not leaked(coll.get_manifest(**filters)), filters
    assert not leaked(coll.get_manifest())
    for fetch in (coll.get_object, coll.object_versions):
        with pytest.raises(requests.HTTPError) as exc:
            fetch(pid)
        assert exc.value.response.status_code == 404
        assert SECRET not in exc.value.response.text
    # By id, the policy answers exactly as an id never stored does: no hint it exists.
    for method, path in (("GET", "objects/{}/"), ("GET", "objects/{}/versions/"),
                         ("DELETE", "objects/{}/")):
        kept = _raw(server, tokens, member, method, path.format(pid))
        never = _raw(server, tokens, member, method, path.format(NEVER))
        assert _answer(kept, pid) == _answer(never, NEVER), (method, path)
    for params in ({"match[type]": POLICY_TYPE}, {"match[id]": pid, "match[version]": "all"}):
        kept = _raw(server, tokens, member, "GET", "objects/", **params)
        assert kept.status_code == 200 and SECRET not in kept.text and pid not in kept.text
    # The DELETE above, refused as for an unknown id, left the policy in place.
    assert _collection(server, tokens, CELL_ROLE).get_object(pid)["objects"][0]["id"] == pid


def test_taxii_still_serves_the_member_what_it_created_of_other_types(
        node: tuple[Server, dict[str, str], dict[str, Any]]) -> None:
    server, tokens, _ = node
    names = {o.get("name") for env in as_pages(_collection(server, tokens, NODE).get_objects,
                                               per_request=50, type="indicator")
             for o in env.get("objects", [])}
    assert {"green-beside", "own-red"} <= names


def test_taxii_serves_the_policy_to_the_name_in_its_audience(
        node: tuple[Server, dict[str, str], dict[str, Any]]) -> None:
    server, tokens, policy = node
    coll = _collection(server, tokens, CELL_ROLE)
    assert coll.get_object(policy["id"])["objects"] == [policy]
    assert [o["id"] for o in coll.get_objects(type=POLICY_TYPE)["objects"]] == [policy["id"]]
    assert coll.object_versions(policy["id"])["versions"] == [policy["modified"]]


# ---- the store's Access, on SQLite and PostgreSQL ------------------------------------------


def test_store_access_keeps_the_policy_from_the_member_that_stored_it(store: Store) -> None:
    policy = _store_cell_policy(store)
    pid = policy["id"]
    for access in (access_for(Member(NODE, "ally")), reader_access(NODE)):
        assert store.get(pid, access) is None
        assert store.versions(pid, access) == []
        assert store.query(Query(types=[POLICY_TYPE], versions="all", access=access)).rows == []
        assert store.count(Query(types=[POLICY_TYPE], access=access)) == 0
        assert store.search(pid, access=access) == []
        with pytest.raises(ConsultationError, match="TLP:RED"):
            load_policy(store, cell=NODE, access=access)
    assert load_policy(store, cell=NODE, access=reader_access(CELL_ROLE)).readers == (CELL_ROLE,)
    assert store.get(pid, access_for(Member(CELL_ROLE, "partner"))) is not None
    # A policy that names the node's own member is its to read, through its audience.
    store_policy(store, replace(DEFAULT_POLICY, readers=(NODE, CELL_ROLE)), cell=NODE,
                 created_by_ref=member_identity_id(NODE))
    assert load_policy(store, cell=NODE, access=reader_access(NODE)).readers == (NODE, CELL_ROLE)
    assert store.get(pid, access_for(Member(NODE, "ally"))) is not None
    # Its first version named only the cell: still hidden from the member among the versions.
    versions = store.versions(pid, access_for(Member(NODE, "ally")))
    assert [v.obj()["x_shieldwall_audience"] for v in versions] == [[NODE, CELL_ROLE]]


# ---- `export --for` and `search --for` -----------------------------------------------------


def test_export_and_search_for_the_member_leave_the_policy_out(tmp_path: Path) -> None:
    home = tmp_path / "node"
    assert run(home, "init", "--member", NODE).exit_code == 0
    for name, tier in MEMBERS.items():
        r = run(home, "member", "add", name, "--tier", tier)
        assert r.exit_code == 0, r.output
    store = Store.open(db_url(home))
    try:
        pid = _store_cell_policy(store)["id"]
    finally:
        store.close()

    def export(*args: str) -> str:
        r = run(home, "export", "--tlp-max", "red", "--all-versions", *args)
        assert r.exit_code == 0, r.output
        return r.stdout

    assert pid in export() and SECRET in export()  # the whole node holds it
    for member in (NODE, "latvia", "partnerland"):
        out = export("--for", member)
        assert pid not in out and SECRET not in out, member
        r = run(home, "search", pid, "--for", member)
        assert r.exit_code == 1 and "nothing found" in r.output, member
    assert pid in export("--for", CELL_ROLE)
    r = run(home, "search", pid, "--for", CELL_ROLE)
    assert r.exit_code == 0 and POLICY_TYPE in r.output


# ---- writing it: the policy is the node's own, never a member's or a peer's ----------------


def _forged_policy(policy: dict[str, Any], tlp: TLP) -> dict[str, Any]:
    """A newer version of the cell's policy with thresholds no cell would set, marked so
    that the forger (and everyone) could read its own forgery."""
    from shieldwall.stix.markings import tlp_marking_ref
    from shieldwall.stix.timestamps import format_ts, now_us

    forged = orjson.loads(orjson.dumps(policy))
    forged["modified"] = format_ts(now_us() + 10_000_000)
    forged["object_marking_refs"] = [tlp_marking_ref(tlp)]
    forged.pop("created_by_ref", None)
    for t in forged["x_shieldwall_policy"]["thresholds"].values():
        t["min_severity"] = 0
        t["min_members"] = 1
    return forged


@pytest.mark.parametrize("member", [NODE, "latvia", CELL_ROLE])
def test_no_member_can_post_a_policy_version(
        node: tuple[Server, dict[str, str], dict[str, Any]], member: str) -> None:
    """Not even a name the policy lets read it: the thresholds are set with `consult
    policy` on the node, and a member's POST is refused whatever its marking."""
    server, tokens, policy = node
    coll = _collection(server, tokens, member)
    for tlp in (TLP.GREEN, TLP.RED):
        status = coll.add_objects(orjson.dumps(
            {"objects": [_forged_policy(policy, tlp)]}).decode())
        assert status.success_count == 0 and status.failure_count == 1
        assert "written only by this node" in status.failures[0]["message"]
    store = Store.open(db_url(server.home))
    try:
        versions = store.query(Query(ids=[policy["id"]], versions="all")).rows
        assert [(v.channel, v.version_us) for v in versions] == [
            ("local", versions[0].version_us)]
        assert load_policy(store, cell=NODE, access=reader_access(CELL_ROLE)) == replace(
            DEFAULT_POLICY, readers=(CELL_ROLE,))
    finally:
        store.close()


def test_a_peer_cannot_federate_a_policy_and_a_stray_version_sets_nothing(
        store: Store) -> None:
    from shieldwall.config import PeerConfig
    from shieldwall.federation.rules import Arrival

    policy = _store_cell_policy(store)
    arrival = Arrival.of(NODE, "ally", PeerConfig(name="latvia", url="http://x",
                                                  token_file="t"), {"latvia"})
    for tlp in (TLP.CLEAR, TLP.GREEN, TLP.AMBER):
        why = arrival.refusal(_forged_policy(policy, tlp), tlp)
        assert why is not None and "written only by their own node" in why
    # A version that got in some other way (an operator's `import` of a file) is history,
    # never the thresholds the recommendations follow.
    store.put(_forged_policy(policy, TLP.RED) | {"x_shieldwall_audience": [CELL_ROLE]},
              Provenance("operator", "import"))
    assert load_policy(store, cell=NODE, access=reader_access(CELL_ROLE)) == replace(
        DEFAULT_POLICY, readers=(CELL_ROLE,))
