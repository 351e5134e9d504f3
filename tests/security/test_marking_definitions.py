"""Custom TLP marking definitions cannot be gamed (issue 13, section 2).

MISP and OpenCTI mint their own marking-definition ids for TLP levels. Two attacks:

- **A late definition.** A producer's "TLP:RED" definition that comes after the first
  batch of an import (or in a later file of the same import) must still mark everything
  it marks: `shieldwall export --for` an ally not named holds none of it.
- **Definition squatting.** A member (here a partner) that stores a definition under an
  id someone else uses (OpenCTI's fixed AMBER+STRICT id, or another member's own custom
  id), declaring it CLEAR, must not lower the objects others mark with that id: not over
  TAXII, not on federation arrival, not in an import.

Real `shieldwall serve` on 127.0.0.1, the real CLI, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from shieldwall.policy import Members, member_identity_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Query, Store
from tests.factories import indicator
from tests.taxii.conftest import (
    SHIELDWALL,
    Server,
    add_members,
    db_url,
    make_home,
    start_server,
)

TAXII = "application/taxii+json;version=2.1"
# OpenCTI's fixed id for TLP:AMBER+STRICT (its platform's STATIC_MARKING_IDS; OpenCTI uses
# the STIX 2.1 TLP 1.0 ids for the other levels).
OPENCTI_AMBER_STRICT = "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"


def _definition(level: str, oid: str | None = None,
                created: str = "2024-01-01T00:00:00.000Z") -> dict[str, Any]:
    """A producer's own TLP marking definition, as OpenCTI writes one."""
    return {"type": "marking-definition", "spec_version": "2.1",
            "id": oid or f"marking-definition--{uuid.uuid4()}", "created": created,
            "name": f"TLP:{level.upper()}", "definition_type": "statement",
            "definition": {"statement": "custom"}, "x_opencti_definition_type": "TLP",
            "x_opencti_definition": f"TLP:{level.upper()}"}


@pytest.fixture(scope="module")
def node(backend: str | None, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Server, dict[str, str]]]:
    home = make_home(tmp_path_factory.mktemp("definitions"), backend)
    tokens = add_members(home, {"latvia": "ally", "estonia": "ally", "acme": "partner"})
    server = start_server(home, "--rate-limit", "0")
    yield server, tokens
    server.stop()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([SHIELDWALL, *args, "--home", str(home)], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def _export_for(home: Path, member: str, tmp: Path) -> set[str]:
    """Ids in `shieldwall export --for MEMBER`."""
    path = tmp / f"for-{member}-{uuid.uuid4().hex[:6]}.json"
    _cli(home, "export", "--for", member, "-o", str(path))
    return {o["id"] for o in orjson.loads(path.read_bytes())["objects"]}


def _stored_levels(home: Path, ids: list[str]) -> set[TLP]:
    store = Store.open(db_url(home), migrate=False)
    try:
        return {TLP(r.tlp) for r in store.iter_query(Query(ids=ids))}
    finally:
        store.close()


def _post(server: Server, token: tuple[str, str], objs: list[dict[str, Any]]) -> Any:
    # Partners write only to the sightings collection; the store behind both is one.
    coll = "sightings" if token[0] == "acme" else "alliance"
    resp = httpx.post(server.api(f"collections/{coll}/objects/"), auth=token, timeout=60,
                      content=json.dumps({"objects": objs}),
                      headers={"Content-Type": TAXII, "Accept": TAXII})
    assert resp.status_code == 202, resp.text
    return resp.json()


def _reads(server: Server, token: tuple[str, str], oid: str) -> bool:
    got = httpx.get(server.api(f"collections/alliance/objects/{oid}/"), auth=token,
                    timeout=30, headers={"Accept": TAXII})
    assert got.status_code in (200, 404), got.text
    return got.status_code == 200


# ---- a late definition ---------------------------------------------------------------------


def _files(tmp: Path, layout: str, marked: list[dict[str, Any]],
           definition: dict[str, Any]) -> list[Path]:
    """The objects first, the definition last, as `layout` lays them out."""
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
              "objects": [*marked, definition]}
    if layout == "bundle":
        path = tmp / "late.json"
        path.write_bytes(orjson.dumps(bundle))
    elif layout == "gzipped bundle":
        path = tmp / "late.json.gz"
        path.write_bytes(gzip.compress(orjson.dumps(bundle), compresslevel=1))
    elif layout == "array":
        path = tmp / "late.json"
        path.write_bytes(orjson.dumps([*marked, definition]))
    else:  # a directory: the objects in one file, the definition in a later one
        path = tmp / "feed"
        path.mkdir()
        (path / "a-objects.json").write_bytes(orjson.dumps({**bundle, "objects": marked}))
        (path / "b-definitions.json").write_bytes(orjson.dumps(
            {**bundle, "id": f"bundle--{uuid.uuid4()}", "objects": [definition]}))
    return [path]


@pytest.mark.parametrize("layout", ["bundle", "gzipped bundle", "array", "directory"])
def test_a_late_red_definition_marks_the_whole_import(
        node: tuple[Server, dict[str, str]], tmp_path: Path, layout: str) -> None:
    server, _ = node
    red = _definition("red")
    # More than one batch (5,000) before the definition; over 2 MB, so the import runs
    # in its worker process and the bundles are streamed.
    marked = [indicator(f"10.{i >> 16}.{i >> 8 & 255}.{i & 255}", tlp=None,
                        object_marking_refs=[red["id"]],
                        description=f"{layout}: marked TLP:RED by its producer")
              for i in range(6_000)]
    paths = _files(tmp_path, layout, marked, red)
    _cli(server.home, "import", *map(str, paths), "--no-warninglists")
    ids = [o["id"] for o in marked]
    leaked = set(ids) & _export_for(server.home, "latvia", tmp_path)
    assert not leaked, f"{len(leaked)} of {len(ids)} TLP:RED objects in latvia's export"
    assert _stored_levels(server.home, ids) == {TLP.RED}


# ---- definition squatting --------------------------------------------------------------------


@pytest.mark.parametrize("squatted", [
    "OpenCTI's AMBER+STRICT id", "an id its user never defined",
    "a member's own id, redefined later", "a member's own id, squatted first"])
def test_a_partners_definition_never_lowers_another_members_objects(
        node: tuple[Server, dict[str, str]], squatted: str) -> None:
    server, tokens = node
    acme, estonia = ("acme", tokens["acme"]), ("estonia", tokens["estonia"])
    latvia = ("latvia", tokens["latvia"])
    mid = OPENCTI_AMBER_STRICT if "OpenCTI" in squatted \
        else f"marking-definition--{uuid.uuid4()}"
    # The partner defines the id as CLEAR (a later `created`: the newest version).
    squat = _definition("clear", mid, created="2025-01-01T00:00:00.000Z")
    if squatted == "a member's own id, squatted first":
        _post(server, acme, [squat])
    if squatted.startswith("a member's own id"):
        # estonia's own AMBER+STRICT definition, sent with the first object it marks.
        own = _definition("amber+strict", mid)
        first = indicator("192.0.2.140", tlp=None, object_marking_refs=[mid],
                          created_by_ref=member_identity_id("estonia"))
        _post(server, estonia, [own, first])
        assert not _reads(server, acme, first["id"]), f"acme reads it through {squatted}"
        assert not _reads(server, latvia, first["id"])  # AMBER+STRICT, latvia not named
        assert _reads(server, estonia, first["id"])
    if squatted != "a member's own id, squatted first":
        _post(server, acme, [squat])
    # estonia marks a new object with the id, without sending the definition again.
    later = indicator("192.0.2.141", tlp=None, object_marking_refs=[mid],
                      created_by_ref=member_identity_id("estonia"))
    assert _post(server, estonia, [later])["success_count"] == 1
    assert not _reads(server, acme, later["id"]), f"acme reads it through {squatted}"
    assert _reads(server, estonia, later["id"])
    if squatted != "an id its user never defined":
        # AMBER+STRICT, as its producer declared (even when its definition was refused as
        # a version of the squatter's): not even an ally reads it unless named.
        assert not _reads(server, latvia, later["id"])


def test_a_members_definition_does_not_lower_an_import(
        node: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    server, tokens = node
    mid = f"marking-definition--{uuid.uuid4()}"
    _post(server, ("acme", tokens["acme"]), [_definition("clear", mid)])
    marked = [indicator(f"192.0.2.{i}", tlp=None, object_marking_refs=[mid])
              for i in range(150, 160)]
    path = tmp_path / "feed.json"
    path.write_bytes(orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
                                   "objects": marked}))
    _cli(server.home, "import", str(path), "--no-warninglists")
    ids = [o["id"] for o in marked]
    assert not set(ids) & _export_for(server.home, "acme", tmp_path)
    assert _stored_levels(server.home, ids) == {TLP.AMBER}  # the node's default


def test_a_definition_from_one_peer_does_not_lower_what_another_delivers(
        tmp_path: Path) -> None:
    from tests.federation.conftest import make_node
    from tests.federation.test_arrival import HostilePeer, _peer

    victim = make_node(tmp_path, "south")
    mid = f"marking-definition--{uuid.uuid4()}"
    s = victim.store()
    try:
        for name in ("north", "mallory"):
            Members(s.engine).add(name, "ally")
        # mallory delivered (pulled earlier) its own "CLEAR" under the id north uses.
        s.put(_definition("clear", mid), Provenance("mallory", "federation", "alliance"))
    finally:
        s.close()
    north_own = indicator("192.0.2.170", tlp=None, object_marking_refs=[mid],
                          created_by_ref=member_identity_id("north"))
    north = HostilePeer([north_own])
    try:
        _peer(victim, "north", north.url)
        victim.cli("sync")
    finally:
        north.close()
    assert _stored_levels(victim.home, [north_own["id"]]) == {TLP.AMBER}


def test_a_peers_definition_counts_for_what_it_delivers_later(tmp_path: Path) -> None:
    """north delivers the very AMBER+STRICT definition mallory delivered before (a
    duplicate: the store keeps mallory's copy), then, in a later round, an object marked
    with it alone: the object is held AMBER+STRICT, as north declared, not at the default."""
    from shieldwall.federation.peers import PULL_KEY
    from tests.federation.conftest import make_node
    from tests.federation.test_arrival import HostilePeer, _peer

    victim = make_node(tmp_path, "south")
    strict = _definition("amber+strict")
    s = victim.store()
    try:
        for name in ("north", "mallory"):
            Members(s.engine).add(name, "ally")
        s.put(strict, Provenance("mallory", "federation", "alliance"))
    finally:
        s.close()
    marked = indicator("192.0.2.171", tlp=None, object_marking_refs=[strict["id"]],
                       created_by_ref=member_identity_id("north"), x_shieldwall_audience=["south"])
    north = HostilePeer([strict])
    try:
        _peer(victim, "north", north.url)
        victim.cli("sync")
        s = victim.store()
        try:
            s.kv_set(f"{PULL_KEY}north:alliance", "{}")  # the next round starts afresh
        finally:
            s.close()
        north.objects = [marked]
        victim.cli("sync")
    finally:
        north.close()
    assert _stored_levels(victim.home, [marked["id"]]) == {TLP.AMBER_STRICT}
