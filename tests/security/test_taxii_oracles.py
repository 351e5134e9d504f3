"""Oracles that count or show what a member may not see, tried as that member would, against
a real `shieldwall serve`: the TAXII `next` cursor and the dashboard's live-stream ids (the
store's global sequence, so two of them counted the hidden objects stored between them),
`match[version]=first` (the first version overall, hidden or not), and the API documentation
(readable without credentials)."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP
from shieldwall.stix.timestamps import now_us
from shieldwall.store import Provenance, Query, Store
from tests.factories import indicator
from tests.taxii.conftest import Server, add_members, db_url, make_home, start_server
from tests.web.seed import seed, sighting

TAXII = "application/taxii+json;version=2.1"
MEMBERS = {"alice": "ally", "bob": "partner"}
# Hidden objects stored first, so that every sequence number a test meets has four digits
# or more: a number that short does not turn up by chance in a cursor's random bytes.
FILLER = 1_200


@dataclass
class Node:
    home: Any
    server: Server
    tokens: dict[str, str]

    def get(self, member: str, path: str, **params: str) -> httpx.Response:
        return httpx.get(self.server.api(path), params=params, timeout=30,
                         auth=(member, self.tokens[member]), headers={"Accept": TAXII})

    def restart(self) -> None:
        self.server.stop()
        self.server = start_server(self.home, "--rate-limit", "0", "--no-federate")


def _red(value: str) -> dict[str, Any]:
    """RED, named to nobody: only the node's own member (which delivers it) reads it."""
    return indicator(value, tlp=TLP.RED, **{AUDIENCE_PROPERTY: ["home-node"]})


def _fill(store: Store) -> None:
    filler = [_red(f"10.9.{i // 256}.{i % 256}") for i in range(FILLER)]
    assert store.put_many(filler, Provenance("home-node", "import")).stored == FILLER


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, backend: str | None) -> Iterator[Node]:
    home = make_home(tmp_path_factory.mktemp("oracles"), backend)
    tokens = add_members(home, MEMBERS)
    store = Store.open(db_url(home))
    _fill(store)
    store.close()
    n = Node(home, start_server(home, "--rate-limit", "0", "--no-federate"), tokens)
    yield n
    n.server.stop()


def _numbers_in(token: str) -> set[int]:
    """The numbers an attacker could read out of a cursor: a plain number (`123`, `s1:123`),
    decimal digits in its base64 decoding, and every 3-8 byte integer (either byte order)
    in the decoding. Meaningful for numbers of four digits or more (`FILLER`)."""
    found = {int(d) for d in re.split(r"[:.]", token) if d.isdigit()}
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return found
    found |= {int(d) for d in re.findall(rb"\d+", raw)}
    for width in range(3, 9):
        for i in range(len(raw) - width + 1):
            chunk = raw[i:i + width]
            found |= {int.from_bytes(chunk, "big"), int.from_bytes(chunk, "little")}
    return found


def _seqs(node: Node, ids: list[str]) -> dict[str, int]:
    store = Store.open(db_url(node.home))
    try:
        return {r.id: r.seq for r in store.query(Query(ids=ids, versions="all")).rows}
    finally:
        store.close()


def _walk(node: Node, member: str, path: str, start: str | None = None, **params: str
          ) -> tuple[list[str], list[str]]:
    """Page through `path` one object at a time (from cursor `start`): the ids seen and the
    cursors handed out."""
    ids: list[str] = []
    cursors: list[str] = []
    nxt = start
    while True:
        r = node.get(member, path, limit="1", **params, **({"next": nxt} if nxt else {}))
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [o.get("id") for o in body.get("objects", [])]
        if not body.get("more"):
            return ids, cursors
        nxt = body["next"]
        cursors.append(nxt)


def test_next_cursor_does_not_count_hidden_objects(node: Node) -> None:
    store = Store.open(db_url(node.home))
    before = [indicator(f"198.51.100.{i}") for i in range(3)]
    hidden = [_red(f"203.0.113.{i}") for i in range(7)]
    after = [indicator(f"198.51.100.{i}") for i in range(10, 13)]
    for batch in (before, hidden, after):
        assert store.put_many(batch, Provenance("home-node", "import")).stored == len(batch)
    store.close()
    visible = [o["id"] for o in before + after]
    seqs = _seqs(node, [o["id"] for o in before + hidden + after])
    assert min(seqs.values()) > FILLER

    ids, cursors = _walk(node, "bob", "collections/alliance/objects/",
                         **{"match[type]": "indicator"})
    assert [i for i in ids if i in seqs] == visible  # nothing skipped, repeated or hidden
    # No cursor carries the store's sequence: neither the position of a visible object
    # nor how far the next one lies beyond it (7 hidden objects in between).
    for token in cursors:
        assert not _numbers_in(token) & set(seqs.values()), token
    # The same page asked twice: a fresh cursor each time (nothing to compare over time).
    first = node.get("bob", "collections/alliance/objects/", limit="1",
                     **{"match[type]": "indicator"}).json()["next"]
    again = node.get("bob", "collections/alliance/objects/", limit="1",
                     **{"match[type]": "indicator"}).json()["next"]
    assert first != again


def test_a_cursor_works_only_for_its_member_and_query(node: Node) -> None:
    coll = "collections/alliance/objects/"
    for i in range(3):
        store = Store.open(db_url(node.home))
        store.put(indicator(f"192.0.2.{i}"), Provenance("home-node", "import"))
        store.close()
    token = node.get("bob", coll, limit="1").json()["next"]
    assert node.get("bob", coll, limit="1", next=token).status_code == 200
    assert node.get("bob", coll, limit="5", next=token).status_code == 200  # a new page size
    refused = [
        node.get("alice", coll, limit="1", next=token),  # another member replays it
        node.get("bob", coll, limit="1", next=token, **{"match[type]": "indicator"}),
        node.get("bob", "collections/alliance/manifest/", limit="1", next=token),
        node.get("bob", "collections/sightings/objects/", limit="1", next=token),
        node.get("bob", coll, limit="1", next=token[:-2] + ("AA" if token[-2:] != "AA"
                                                            else "BB")),
        node.get("bob", coll, limit="1",
                 next=base64.urlsafe_b64encode(b"s1:1").decode().rstrip("=")),  # the old form
    ]
    for r in refused:
        assert r.status_code == 400, r.text
        assert r.json()["http_status"] == "400"


def test_a_cursor_survives_a_restart(node: Node) -> None:
    coll = "collections/alliance/objects/"
    store = Store.open(db_url(node.home))
    store.put_many([indicator(f"192.0.2.{i}") for i in range(10, 14)],
                   Provenance("home-node", "import"))
    store.close()
    page = node.get("alice", coll, limit="2").json()
    node.restart()
    rest, _ = _walk(node, "alice", coll, page["next"])
    assert rest and not {o["id"] for o in page["objects"]} & set(rest)


def test_first_version_is_the_first_the_reader_may_see(node: Node) -> None:
    """v1 RED (for the node only), v2 and v3 GREEN: for bob the object begins at v2."""
    oid = f"indicator--{uuid.uuid4()}"
    v1 = _red("203.0.113.77") | {"id": oid, "modified": "2024-01-01T00:00:00.000Z"}
    v2 = indicator("203.0.113.77", oid=oid, modified="2024-02-01T00:00:00.000Z")
    v3 = indicator("203.0.113.77", oid=oid, modified="2024-03-01T00:00:00.000Z")
    store = Store.open(db_url(node.home))
    assert store.put_many([v1, v2, v3], Provenance("home-node", "import")).stored == 3
    store.close()
    versions = node.get("bob", f"collections/alliance/objects/{oid}/versions/").json()
    assert versions["versions"] == ["2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"]
    for path, params in ((f"collections/alliance/objects/{oid}/", {}),
                         ("collections/alliance/objects/", {"match[id]": oid}),
                         ("collections/alliance/manifest/", {"match[id]": oid})):
        r = node.get("bob", path, **{"match[version]": "first"}, **params)
        assert r.status_code == 200, (path, r.text)
        got = r.json()["objects"]
        assert [o.get("modified", o.get("version")) for o in got] == \
            ["2024-02-01T00:00:00.000Z"], path
        both = node.get("bob", path, **{"match[version]": "first,last"}, **params).json()
        assert len(both["objects"]) == 2
    # The node's own member, which may see v1, still gets v1.
    tokens = add_members(node.home, {"home-node": "ally"})
    node.tokens.update(tokens)
    mine = node.get("home-node", f"collections/alliance/objects/{oid}/",
                    **{"match[version]": "first"}).json()["objects"]
    assert [o["modified"] for o in mine] == ["2024-01-01T00:00:00.000Z"]


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_api_documentation_needs_credentials(node: Node, path: str) -> None:
    url = node.server.url + path
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(url, auth=("bob", "not-the-token"), timeout=30).status_code == 401
    r = httpx.get(url, auth=("bob", node.tokens["bob"]), timeout=30)
    assert r.status_code == 200
    if path == "/openapi.json":
        assert "/api/collections/{cid}/objects/" in r.json()["paths"]
    # Swagger UI's OAuth2 helper page is not served either.
    assert httpx.get(node.server.url + "/docs/oauth2-redirect", timeout=30).status_code != 200


# ---- the dashboard's live stream --------------------------------------------------------


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Any, Any]]:
    home = make_home(tmp_path_factory.mktemp("live"))
    store = Store.open(db_url(home))
    _fill(store)
    seeded = seed(store)
    store.close()
    server = start_server(home, "--rate-limit", "0", "--no-federate")
    yield server, home, seeded
    server.stop()


@contextmanager
def _signed_in(server: Server, seeded: Any, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/dashboard", timeout=30) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert csrf
        client.post("/login", data={"username": user, "csrf": csrf.group(1),
                                    "password": seeded.passwords[user]})
        yield client


def _live(client: httpx.Client, after: str) -> tuple[int, list[str]]:
    """Status and the `id:` lines of the stream up to its first keep-alive."""
    ids: list[str] = []
    with client.stream("GET", "/api/live", params={"after": after}) as r:
        if r.status_code != 200:
            return r.status_code, ids
        for line in r.iter_lines():
            if line.startswith("id: "):
                ids.append(line[4:])
            if line.startswith(": keep-alive"):
                break
    return 200, ids


def test_live_stream_ids_do_not_count_hidden_sightings(web: tuple[Server, Any, Any]) -> None:
    server, home, seeded = web
    with _signed_in(server, seeded, "pat") as pat, _signed_in(server, seeded, "ana") as ana:
        page = pat.get("/").text
        after = re.search(r'data-live-after="([^"]*)"', page)
        assert after
        store = Store.open(db_url(home))
        ind = {"id": seeded.green_indicator, "pattern": "[ipv4-addr:value = '198.51.100.7']"}
        at = now_us()
        seen = sighting(ind, "latvia", TLP.GREEN, at)
        hidden = [sighting(ind, "latvia", TLP.AMBER, at) for _ in range(6)]  # not for a partner
        seen2 = sighting(ind, "latvia", TLP.GREEN, at)
        for batch in ([seen], hidden, [seen2]):
            store.put_many(batch, Provenance("latvia", "taxii"))
        seqs = _seqs_of(store, [seen, *hidden, seen2])
        store.close()
        assert min(seqs) > FILLER

        status, ids = _live(pat, after.group(1))
        assert status == 200 and len(ids) == 2, ids
        for token in [after.group(1), *ids]:
            assert not _numbers_in(token) & seqs, token
        # The JSON twins carry no sequence either.
        assert all("seq" not in s for s in pat.get("/api/sightings").json()["sightings"])
        assert all("seq" not in s for s in pat.get("/api/overview").json()["recent_sightings"])
        # Another member's cursor is refused, not read.
        assert _live(ana, ids[0])[0] == 400
        assert _live(pat, "12345")[0] == 400
        assert _live(pat, ids[0])[0] == 200


def _seqs_of(store: Store, objs: list[dict[str, Any]]) -> set[int]:
    ids = [o["id"] for o in objs]
    return {r.seq for r in store.query(Query(ids=ids, versions="all")).rows}

