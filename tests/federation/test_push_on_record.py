"""Push on record: a node that only *received* something contacts no peer and writes no
cursor; a node that recorded something of its own pushes to every peer at once."""

from __future__ import annotations

import socket
from pathlib import Path

from shieldwall.config import load_config
from shieldwall.federation import Federation, add_peer
from shieldwall.federation.peers import PUSH_KEY
from shieldwall.store import Provenance
from tests.factories import indicator
from tests.federation.conftest import make_node


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed once we return: connecting is refused


def test_received_objects_reach_no_peer_own_objects_reach_all(tmp_path: Path) -> None:
    node = make_node(tmp_path, "south")
    names = [f"peer{i}" for i in range(5)]
    for name in names:
        token = node.home / f"token-at-{name}"
        token.write_text("swt_x\n")
        add_peer(load_config(node.home), name, f"http://127.0.0.1:{_closed_port()}", token)
    store = node.store()
    fed = Federation(node.home, store)
    try:
        fed.sync_all(pull=False)  # cursors start at the (empty) store's newest seq
        store.put(indicator("198.51.100.61"), Provenance("peer1", "taxii", "alliance"))
        assert fed.sync_all(pull=False) == []  # nothing of ours: no peer contacted
        assert all(store.kv_get(PUSH_KEY + n) is None for n in names)  # nor a cursor written
        store.put(indicator("198.51.100.62"), Provenance("south", "detect"))
        results = fed.sync_all(pull=False)
        assert sorted(r.peer for r in results) == names  # every peer, in one round
        assert all("unreachable" in r.error for r in results)  # each was really contacted
    finally:
        fed.close()
        store.close()
