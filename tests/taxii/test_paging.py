"""Paging while others write: no object skipped, none repeated (keyset `next`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from taxii2client.v21 import ApiRoot, as_pages

from shieldwall.stix.markings import TLP
from shieldwall.store import Provenance, Store
from tests.factories import indicator
from tests.taxii.conftest import Server, add_members, db_url, make_home, start_server


@pytest.fixture(scope="module")
def node(backend: str | None, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Server, str]]:
    home = make_home(tmp_path_factory.mktemp("paging"), backend)
    token = add_members(home, {"alice": "ally"})["alice"]
    server = start_server(home, "--rate-limit", "0")
    yield server, token
    server.stop()


def test_no_skip_no_repeat_while_objects_are_added(node: tuple[Server, str]) -> None:
    server, token = node
    store = Store.open(db_url(server.home))
    before = [indicator(f"10.1.{i // 250}.{i % 250}", tlp=TLP.GREEN) for i in range(1500)]
    store.put_many(before, Provenance("home-node"), batch_size=100)
    stop = threading.Event()
    added: list[str] = []

    def writer() -> None:
        n = 0
        while not stop.is_set() and n < 3000:
            batch = [indicator(f"10.2.{(n + i) // 250}.{(n + i) % 250}", tlp=TLP.GREEN)
                     for i in range(50)]
            # Many versions in one batch share a transaction and a timestamp instant.
            store.put_many(batch, Provenance("home-node"))
            added.extend(o["id"] for o in batch)
            n += 50

    t = threading.Thread(target=writer)
    t.start()
    try:
        coll = next(c for c in ApiRoot(server.api(), user="alice", password=token).collections
                    if c.alias == "alliance")
        seen: list[str] = []
        for env in as_pages(coll.get_objects, per_request=40):
            seen += [o["id"] for o in env.get("objects", [])]
    finally:
        stop.set()
        t.join()
        store.close()
    assert len(seen) == len(set(seen)), "an object was repeated"
    assert set(o["id"] for o in before) <= set(seen), "an object present from the start was skipped"
    late = [i for i in added if i in set(seen)]
    # Whatever was seen of the concurrent additions is a prefix in commit order: no gaps.
    assert late == added[: len(late)]
