"""Rapid reaction across real nodes on 127.0.0.1 (`shieldwall serve` with its sync loop):
a request made on the member's node reaches the cell, the cell's dispatch reaches the
member and the team's member, the case the team works flows back; an ally not on the case
holds none of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shieldwall.store import Query
from tests.federation.conftest import NodeHome, make_node, peer, register, wait_for

pytestmark = pytest.mark.xdist_group("respond-federation")


def _latest(node: NodeHome, oid: str) -> dict | None:
    s = node.store()
    try:
        row = s.get(oid)
        return row.obj() if row else None
    finally:
        s.close()


def _types(node: NodeHome, *types: str) -> set[str]:
    s = node.store()
    try:
        return {r.id for r in s.iter_query(Query(types=list(types)))}
    finally:
        s.close()


def test_request_dispatch_case_across_nodes(tmp_path: Path, fast_sync: None) -> None:
    south, cell, north, east = (make_node(tmp_path, n) for n in
                                ("cert-south", "coordination", "cert-north", "cert-east"))
    nodes = (south, cell, north, east)
    for x in nodes:
        for y in nodes:
            if x is not y:
                register(x, y)
    try:
        for n in nodes:
            n.start()
        for x in nodes:
            for y in nodes:
                if x is not y:
                    peer(x, y)
        inc = south.cli("incident", "open", "--name", "Ransomware at the grid operator",
                        "--sector", "energy", "--tlp", "amber+strict").stdout.strip()
        r = south.cli("assist", "request", "--incident", inc, "--need",
                      "forensics,malware-analysis", "--json")
        req = json.loads(r.stdout)["id"]
        wait_for(lambda: req in cell.ids() and inc in cell.ids(), what="the request at the cell")
        listed = cell.cli("assist", "list").stdout
        assert req in listed and "awaiting dispatch" in listed

        # only the cell's node dispatches
        other = east.cli("assist", "dispatch", req, "--team", "cert-north:alice", "--lead",
                         "cert-north:alice", "--reason", "x", check=False)
        assert other.returncode == 2 and "only the coordination cell" in other.stderr
        cell.cli("responder", "add", "cert-north:alice", "--name", "Alice", "--skills",
                 "forensics")
        cell.cli("responder", "add", "cert-north:bob", "--name", "Bob", "--skills",
                 "malware-analysis")
        d = json.loads(cell.cli("assist", "dispatch", req, "--team",
                                "cert-north:alice,cert-north:bob", "--lead",
                                "cert-north:alice", "--reason", "north knows this family",
                                "--by", "duty officer", "--json").stdout)
        wait_for(lambda: d["id"] in south.ids() and d["id"] in north.ids(),
                 what="the dispatch at the member and the team")

        # the requester's serving node shares the case with the team as the dispatch
        # arrives, before anyone there runs a command; the team works it
        wait_for(lambda: inc in north.ids() and req in north.ids(), what="the case at north")
        listed = south.cli("assist", "list")
        assert "dispatched" in listed.stdout
        assert "shared" not in listed.stderr  # already shared: once is enough
        assert "shared" not in south.cli("case", "show", inc).stderr
        t = json.loads(north.cli("case", "task", "add", inc, "--name", "Image the DC",
                                 "--assignee", "cert-north:bob", "--json").stdout)
        wait_for(lambda: t["id"] in south.ids(), what="the team's task at the member")
        assert "Image the DC" in south.cli("case", "show", inc).stdout

        # hand-back: the closed dispatch reaches the member
        cell.cli("assist", "close", req, "--summary", "contained; C2 blocked")
        wait_for(lambda: (_latest(south, d["id"]) or {}).get("status") == "closed",
                 what="the hand-back at the member")

        # an ally not on the case holds nothing of it
        held = east.ids()
        assert not {inc, req, d["id"], t["id"]} & held
        assert not _types(east, "x-shieldwall-assistance-request", "x-shieldwall-dispatch",
                          "task")
    finally:
        for n in nodes:
            n.stop()
