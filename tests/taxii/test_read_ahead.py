"""Pages built ahead (taxii/pages.py) are exactly the pages the request would get,
never cross from one member to another, and never survive a write. A cursor replayed by
another member is refused (store/cursors.py), and no page built ahead is spent on it.

Read-ahead is on for every page here (`read_ahead_rows=1`), and the app runs in-process
so each test can wait for the page built ahead and then attack it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from shieldwall.policy import Members
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP
from shieldwall.store import Provenance, Query, Store
from shieldwall.taxii.app import Settings, create_app
from shieldwall.taxii.media import TAXII_21
from tests.factories import indicator

PAGE = 4


class Node:
    def __init__(self, store: Store, read_ahead_rows: int) -> None:
        reg = Members(store.engine)
        self.tokens = {m: reg.add(m, tier) for m, tier in
                       (("ally", "ally"), ("ally2", "ally"), ("partner", "partner"))}
        self.app = create_app(store, Settings(node_member="home-node", rate_limit=0,
                                              read_ahead_rows=read_ahead_rows))
        self.http = TestClient(self.app)
        self.ahead = self.app.state.ctx.ahead
        coll = self.get("ally", "/api/collections/").json()["collections"]
        self.objects = next(f"/api/collections/{c['id']}/objects/" for c in coll
                            if c["alias"] == "alliance")

    def get(self, member: str, path: str, status: int = 200, **params: Any) -> Any:
        auth = base64.b64encode(f"{member}:{self.tokens[member]}".encode()).decode()
        resp = self.http.get(path, params=params,
                             headers={"Accept": TAXII_21, "Authorization": f"Basic {auth}"})
        assert resp.status_code == status, resp.text
        return resp

    def replay(self, member: str, nxt: str) -> None:
        """`member` sends a cursor handed to another: refused, and nothing built ahead is
        spent on it."""
        hits = self.ahead.hits
        self.get(member, self.objects, status=400, limit=PAGE, next=nxt)
        assert self.ahead.hits == hits

    def page(self, member: str, nxt: str | None = None) -> tuple[list[str], str | None, Any]:
        params: dict[str, Any] = {"limit": PAGE}
        if nxt:
            params["next"] = nxt
        resp = self.get(member, self.objects, **params)
        self.ahead.settle()  # the next page is now built ahead, ready to be (mis)served
        env = resp.json()
        return [o["id"] for o in env.get("objects", [])], env.get("next"), resp


SEED = [indicator(f"10.9.0.{i}", tlp=TLP.GREEN if i % 2 == 0 else TLP.AMBER)
        for i in range(24)]


def _seed(store: Store) -> tuple[list[str], list[str]]:
    """Alternating TLP:GREEN (everyone) and TLP:AMBER (allies only) indicators."""
    store.put_many(SEED, Provenance("home-node", "import"), batch_size=5)
    ids = [o["id"] for o in SEED]
    return ids, ids[0::2]


@pytest.fixture
def node(store: Store) -> Iterator[tuple[Node, list[str], list[str]]]:
    everything, green = _seed(store)
    n = Node(store, read_ahead_rows=1)
    if not n.ahead.enabled:
        print(f"read-ahead is off on {store.dialect}; these tests check nothing there")
        pytest.skip(f"no read-ahead on {store.dialect}")
    yield n, everything, green
    n.http.close()
    n.ahead.close()


def test_same_tier_members_do_not_share_pages_naming_one_of_them(
    node: tuple[Node, list[str], list[str]], store: Store
) -> None:
    """Two allies: an AMBER+STRICT object naming only `ally` sits on the last page.
    `ally2` replays the ally's cursor right after that page was built ahead for the ally:
    refused, and the page built ahead is still the ally's."""
    n, _, _ = node
    strict = indicator("10.9.1.1", tlp=TLP.AMBER_STRICT, **{AUDIENCE_PROPERTY: ["ally"]})
    store.put_many([strict], Provenance("home-node", "import"))
    cursors: list[str | None] = [None]  # cursors[k] asks for page k
    ids, nxt, _ = n.page("ally")
    while strict["id"] not in ids:
        cursors.append(nxt)
        ids, nxt, _ = n.page("ally", nxt)
    assert len(cursors) >= 2, "the object must not be on the first page"
    n.page("ally", cursors[-2])  # the ally's page with the object is now built ahead
    hits = n.ahead.hits
    assert cursors[-1] is not None
    n.replay("ally2", cursors[-1])
    mine, _, _ = n.page("ally", cursors[-1])
    assert n.ahead.hits == hits + 1 and strict["id"] in mine


def walk(n: Node, member: str) -> tuple[list[str], list[Any]]:
    ids, nxt, resp = n.page(member)
    responses = [resp]
    while nxt:
        more, nxt, resp = n.page(member, nxt)
        ids += more
        responses.append(resp)
    return ids, responses


def test_pages_built_ahead_are_the_pages_a_request_would_build(
    node: tuple[Node, list[str], list[str]], store: Store
) -> None:
    n, everything, _ = node
    ids, responses = walk(n, "ally")
    assert ids == everything
    # Every page after the first was built ahead; on PostgreSQL a commit anywhere in the
    # cluster (another test's) moves the snapshot and drops a page built before it.
    # (or was still queued when a loaded machine let the client ask first).
    assert n.ahead.hits + n.ahead.stale + n.ahead.late == len(responses) - 1, \
        "every page after the first was asked for ahead"
    if store.dialect == "sqlite":
        assert n.ahead.hits >= 1
        assert n.ahead.stale == 0, "no commit came between: no page built ahead was dropped"
    plain = Node.__new__(Node)  # same data, read-ahead off: the reference bodies
    plain.tokens, plain.objects = n.tokens, n.objects
    plain.app = create_app(store, Settings(node_member="home-node", rate_limit=0,
                                           read_ahead_rows=10**9))
    plain.http, plain.ahead = TestClient(plain.app), plain.app.state.ctx.ahead
    ref_ids, reference = walk(plain, "ally")
    assert plain.ahead.hits == 0 and ref_ids == ids
    for got, want in zip(responses, reference, strict=True):
        # Byte for byte, but for the cursors: sealed afresh (and here under another key).
        assert _uncursored(got.content) == _uncursored(want.content)
        for h in ("X-TAXII-Date-Added-First", "X-TAXII-Date-Added-Last", "Content-Type"):
            assert got.headers[h] == want.headers[h]
    plain.http.close()
    plain.ahead.close()


def _uncursored(body: bytes) -> bytes:
    return re.sub(rb'"next":"[A-Za-z0-9_-]+"', b'"next":"-"', body)


def test_members_paging_interleaved_see_only_their_own_view(
    node: tuple[Node, list[str], list[str]]
) -> None:
    n, everything, green = node
    seen: dict[str, list[str]] = {"ally": [], "partner": []}
    cursors: dict[str, str | None] = {"ally": None, "partner": None}
    done: set[str] = set()
    while len(done) < 2:
        for m in ("ally", "partner"):
            if m in done:
                continue
            ids, nxt, _ = n.page(m, cursors[m])
            seen[m] += ids
            cursors[m] = nxt
            if not nxt:
                done.add(m)
            # The partner replays the ally's cursor just after the ally's next page was
            # built ahead: refused, and the ally's page is not spent.
            if m == "ally" and nxt:
                n.replay("partner", nxt)
    assert seen["ally"] == everything
    assert seen["partner"] == green
    assert n.ahead.hits > 0, "read-ahead was never used, so nothing was tested"


def test_a_write_between_pages_is_seen_on_the_next_page(
    node: tuple[Node, list[str], list[str]], store: Store
) -> None:
    n, everything, _ = node
    first, nxt, _ = n.page("ally")
    assert first == everything[:PAGE] and nxt
    # Another connection (as another process would) re-marks an object of page 2 as
    # TLP:RED, which the ally may not read: a stale page would still show it as AMBER.
    target = everything[PAGE + 1]
    stored = next(o for o in SEED if o["id"] == target)
    newer = dict(stored, modified="2025-01-01T00:00:00.000Z",
                 object_marking_refs=indicator(tlp=TLP.RED)["object_marking_refs"])
    other = Store.open(store.engine.url.render_as_string(hide_password=False))
    try:
        assert other.put_many([newer], Provenance("home-node", "import")).new_versions == 1
    finally:
        other.close()
    hits = n.ahead.hits
    second, _, _ = n.page("ally", nxt)
    assert n.ahead.hits == hits, "a page built before the write was served"
    assert target not in second
    assert second == [i for i in everything[PAGE:] if i != target][:PAGE]


def test_a_delete_between_pages_is_seen(
    node: tuple[Node, list[str], list[str]], store: Store
) -> None:
    n, everything, _ = node
    _, nxt, _ = n.page("ally")
    target = everything[PAGE]
    hits = n.ahead.hits
    rows, _ = store.read_rows(Query(ids=[target], versions="all"))
    assert store.delete_versions([r.seq for r in rows]) == 1
    second, _, _ = n.page("ally", nxt)
    assert n.ahead.hits == hits, "a page built before the delete was served"
    assert second == everything[PAGE + 1:PAGE * 2 + 1]
