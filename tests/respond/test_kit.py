"""Offline work: a case checked out to a responder's laptop node, worked there, and merged
back into the case's node by a kit file; custody verified on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from shieldwall.node import Node
from shieldwall.respond.model import CUSTODY_EVENT, EVIDENCE
from shieldwall.store import Query
from tests.conftest import PG_URL, drop_pg_schema, pg_schema_url
from tests.respond.kit_nodes import make_case, make_node, sw


@pytest.fixture(params=["sqlite", "postgresql"])
def urls(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, str | None]]:
    """Database URLs for the case's node and the laptop (None: SQLite in the home)."""
    if request.param == "sqlite":
        yield None, None
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests need SHIELDWALL_TEST_DATABASE_URL (CI sets it)")
    (a, sa), (b, sb) = pg_schema_url("kit"), pg_schema_url("kit")
    try:
        yield a, b
    finally:
        drop_pg_schema(sa)
        drop_pg_schema(sb)


def _count(home: Path, *types: str) -> int:
    node = Node.load(home)
    try:
        return node.store.count(Query(types=list(types), versions="all"))
    finally:
        node.close()


def _fingerprint(home: Path) -> str:
    r = sw(home, "case", "key", "show")
    assert r.code == 0, r.err
    return r.err.split("fingerprint ")[1].split()[0]


def test_checkout_work_offline_sync_back_and_verify(tmp_path: Path,
                                                     urls: tuple[str | None, str | None]
                                                     ) -> None:
    south = make_node(tmp_path / "south", "cert-south", urls[0])
    laptop = make_node(tmp_path / "laptop", "cert-north", urls[1])
    assert sw(south, "member", "add", "cert-north").code == 0
    case = make_case(south)

    # The laptop's key reaches the case's node (here by its key object, checked by the
    # fingerprint its operator reads out).
    card = tmp_path / "laptop-card.json"
    r = sw(laptop, "case", "key", "show")
    card.write_text(r.out)
    laptop_fpr = _fingerprint(laptop)
    r = sw(south, "case", "key", "trust", str(card), "--fingerprint", "0" * 16)
    assert r.code == 2 and "not stored" in r.err
    assert sw(south, "case", "key", "trust", str(card), "--fingerprint", laptop_fpr).code == 0

    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\x00evidence bytes" * 1000)
    r = sw(south, "case", "evidence", "add", case, "--name", "disk image of srv-07",
           "--kept-at", "south locker 3", "--collected-by", "cert-south:carol",
           "--how", "dd over write-blocker", "--file", str(disk), "--json")
    assert r.code == 0, r.err
    item, collected = orjson.loads(r.out)
    assert item["size"] == 15_000 and collected["custody_action"] == "collected"
    ev = item["id"]
    assert sw(south, "case", "custody", "handover", case, ev, "--actor", "cert-south:carol",
              "--to", "cert-north:alice").code == 0
    r = sw(south, "case", "verify", case)
    assert r.code == 0 and "custody verified" in r.out, r.out

    kit = tmp_path / "case.swk"
    r = sw(south, "case", "checkout", case, "--to", str(kit), "--for", "cert-north")
    assert r.code == 0, r.err
    assert kit.read_bytes().startswith(b"SWK1\n")
    assert b"srv-07" not in kit.read_bytes()  # encrypted

    # The laptop never received the case node's key: it says which fingerprint to check.
    r = sw(laptop, "case", "checkin", str(kit))
    south_fpr = _fingerprint(south)
    assert r.code == 2 and f"--trust-signer {south_fpr}" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert _count(laptop, EVIDENCE) == 0
    r = sw(laptop, "case", "checkin", str(kit), "--trust-signer", south_fpr)
    assert r.code == 0, r.err
    assert "0 refused" in r.out and "custody of the case: 2 events, verified" in r.out, r.out
    r = sw(laptop, "case", "verify", case)
    assert r.code == 0 and "1 evidence item, 2 custody events" in r.out, r.out

    # 24 h offline: custody, a new evidence item, observables, a task.
    assert sw(laptop, "case", "custody", "analysis", case, ev, "--actor", "cert-north:alice",
              "--tool", "volatility 3", "--result", "beacon to 203.0.113.9").code == 0
    assert sw(laptop, "case", "custody", "reverify", case, ev, "--actor", "cert-north:alice",
              "--file", str(disk)).code == 0
    r = sw(laptop, "case", "evidence", "add", case, "--name", "pcap of the beacon",
           "--kept-at", "alice laptop", "--collected-by", "cert-north:alice",
           "--how", "tcpdump on span port", "--sha256", "ab" * 32, "--size", "1000")
    assert r.code == 0, r.err
    assert sw(laptop, "case", "observable", "add", case, "ipv4-addr:203.0.113.9").code == 0
    assert sw(laptop, "case", "task", "add", case, "--name", "block the C2").code == 0
    r = sw(laptop, "case", "verify", case)
    assert r.code == 0 and "2 evidence items, 5 custody events" in r.out, r.out

    back = tmp_path / "back.swk"
    r = sw(laptop, "case", "sync", case, "--to", str(back))
    assert r.code == 0, r.err
    before = _count(south, EVIDENCE, CUSTODY_EVENT, "observed-data", "task")
    r = sw(south, "case", "checkin", str(back))
    assert r.code == 0 and "0 refused" in r.out, r.out + r.err
    assert "custody of the case: 5 events, verified" in r.out
    after = _count(south, EVIDENCE, CUSTODY_EVENT, "observed-data", "task")
    assert after - before == 1 + 3 + 1 + 1
    # Again: nothing new, nothing doubled.
    r = sw(south, "case", "checkin", str(back))
    assert r.code == 0 and " 0 new, 0 new versions" in r.out, r.out
    assert _count(south, EVIDENCE, CUSTODY_EVENT, "observed-data", "task") == after
    r = sw(south, "case", "verify", case)
    assert r.code == 0 and "2 evidence items, 5 custody events in 3 chains" in r.out, r.out
    r = sw(south, "case", "evidence", "list", case)
    assert "analysed by cert-north:alice" in r.out and "pcap of the beacon" in r.out

    # A kit made for the laptop does not open on the case's node.
    r = sw(south, "case", "checkin", str(kit))
    assert r.code == 2 and "encrypted to another node" in r.err
    assert laptop_fpr not in r.err  # it names kit keys, not the laptop's signing key


def test_a_changed_or_removed_stored_custody_event_fails_verify(tmp_path: Path) -> None:
    south = make_node(tmp_path / "south", "cert-south")
    case = make_case(south)
    r = sw(south, "case", "evidence", "add", case, "--name", "memory", "--kept-at", "share",
           "--collected-by", "cert-south:carol", "--how", "winpmem", "--sha256", "cd" * 32,
           "--size", "7", "--json")
    item = orjson.loads(r.out)[0]
    assert sw(south, "case", "custody", "copy", case, item["id"], "--actor",
              "cert-south:carol", "--location", "south share 2").code == 0
    assert sw(south, "case", "verify", case).code == 0
    r = sw(south, "case", "verify", "incident--00000000-0000-4000-8000-000000000000")
    assert r.code == 2 and "no case incident--00000000" in r.err
    import sqlite3

    db = sqlite3.connect(south / "shieldwall.db")
    with db:
        db.execute("UPDATE objects SET json = replace(json, 'south share 2', 'south share 3') "
                   "WHERE type = ?", (CUSTODY_EVENT,))
    changed = db.execute("SELECT count(*) FROM objects WHERE json LIKE '%south share 3%'"
                         ).fetchone()[0]
    db.close()
    assert changed == 1
    r = sw(south, "case", "verify", case)
    assert r.code == 1, r.err
    assert "changed: custody event" in r.out and "signature does not verify" in r.out
    assert "custody NOT verified: 1 finding" in r.out
    # The newest event removed: nothing else saw it, but this node verified it before.
    db = sqlite3.connect(south / "shieldwall.db")
    with db:
        db.execute("DELETE FROM objects WHERE json LIKE '%south share 3%'")
    db.close()
    r = sw(south, "case", "verify", case)
    assert r.code == 1 and "missing: event #2 of the chain of node" in r.out, r.out
    assert "verified here before, is gone" in r.out
    assert (south / "custody-heads.json").stat().st_mode & 0o077 == 0


def test_kits_merge_to_the_same_state_whatever_their_order(tmp_path: Path) -> None:
    from shieldwall.keys.signing import fingerprint, node_keys
    from shieldwall.respond.kit import NodeRef, payload, seal, write_kit
    from shieldwall.respond.model import Marking, next_version, note
    from shieldwall.stix.ids import new_id
    from shieldwall.stix.markings import TLP

    laptop = node_keys(tmp_path / "laptop", "cert-north")
    case = new_id("incident")
    first = [note(creator="cert-north", case_id=case, content=f"n{i}",
                  marking=Marking(TLP.AMBER)) for i in range(50)]
    second = [next_version(o, content=o["content"] + " v2") for o in first[:20]]
    second += [note(creator="cert-north", case_id=case, content=f"m{i}",
                    marking=Marking(TLP.AMBER)) for i in range(10)]
    states = []
    for order in ((first, second), (second, first), (second, first, second, first)):
        home = make_node(tmp_path / f"home{len(states)}", "cert-south")
        assert sw(home, "member", "add", "cert-north").code == 0
        keys = node_keys(home, "cert-south")
        for i, objs in enumerate(order):
            to = NodeRef("cert-south", keys.signing_public, keys.kit_public)
            data = seal(payload("return", case, laptop, to, [*objs, laptop.card()]), laptop,
                        keys.kit_public)
            path = tmp_path / f"kit{len(states)}-{i}.swk"
            write_kit(path, data)
            r = sw(home, "case", "checkin", str(path), "--trust-signer",
                   fingerprint(laptop.signing_public))
            assert r.code == 0 and "0 refused" in r.out, r.out + r.err
        node = Node.load(home)
        try:
            rows = node.store.iter_query(Query(types=["note"], versions="all"))
            versions = sorted((r.id, r.version_us) for r in rows)
            latest = {r.id: r.obj()["content"] for r in node.store.iter_query(
                Query(types=["note"]))}
        finally:
            node.close()
        assert len(versions) == 50 + 20 + 10 and len(latest) == 60
        states.append((versions, latest))
    assert states[0] == states[1] == states[2]
    assert sum(c.endswith(" v2") for c in states[0][1].values()) == 20


def test_connected_the_laptop_s_custody_federates_and_verifies(tmp_path: Path) -> None:
    """Without a kit: the laptop syncs with the case's node over TAXII (a real server),
    gets the case and the node's key, records custody, pushes it back; it verifies there."""
    from shieldwall.config import load_config
    from shieldwall.federation import add_peer
    from shieldwall.policy import Members
    from tests.taxii.conftest import start_server

    south = make_node(tmp_path / "south", "cert-south")
    laptop = make_node(tmp_path / "laptop", "cert-north")
    case = make_case(south)
    r = sw(south, "case", "evidence", "add", case, "--name", "memory", "--kept-at", "share",
           "--collected-by", "cert-south:carol", "--how", "winpmem", "--sha256", "cd" * 32,
           "--size", "7", "--json")
    ev = orjson.loads(r.out)[0]["id"]
    node = Node.load(south)
    try:
        token = Members(node.store.engine).add("cert-north", "ally")
    finally:
        node.close()
    (laptop / "token-at-south").write_text(token + "\n")
    server = start_server(south, "--rate-limit", "0")
    try:
        add_peer(load_config(laptop), "cert-south", server.url, laptop / "token-at-south")
        assert sw(laptop, "sync").code == 0
        r = sw(laptop, "case", "verify", case)
        assert r.code == 0 and "1 evidence item, 1 custody event" in r.out, r.out + r.err
        assert sw(laptop, "case", "custody", "analysis", case, ev, "--actor",
                  "cert-north:alice", "--tool", "strings").code == 0
        r = sw(laptop, "sync")
        assert r.code == 0, r.err
    finally:
        server.stop()
    r = sw(south, "case", "verify", case)
    assert r.code == 0 and "1 evidence item, 2 custody events in 2 chains" in r.out, r.out
