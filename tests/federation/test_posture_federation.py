"""A member's posture snapshot, shared with the coordination node by name, reaches that
node's store over TAXII and no other member's."""

from __future__ import annotations

from pathlib import Path

from shieldwall.pledge.posture import POSTURE_TYPE
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, tlp_marking_ref
from shieldwall.store import Query
from tests.federation.conftest import NodeHome, make_node, peer, register


def postures(node: NodeHome) -> dict[str, dict]:
    s = node.store()
    try:
        return {r.id: r.obj() for r in s.iter_query(Query(types=[POSTURE_TYPE]))}
    finally:
        s.close()


def test_snapshot_reaches_the_coordination_node_only(tmp_path: Path) -> None:
    north = make_node(tmp_path, "north")
    cell = make_node(tmp_path, "coordination")
    south = make_node(tmp_path, "south")
    nodes = (north, cell, south)
    pairs = [(x, y) for x in nodes for y in nodes if x is not y]
    for x, y in pairs:
        register(x, y)
    assessment = tmp_path / "cis.toml"
    assessment.write_text('"5.2" = "implemented on all systems"\n'
                          '"14.1" = "implemented on most systems"\n')
    try:
        for n in nodes:
            n.start()
        for x, y in pairs:
            peer(x, y)
        out = north.cli("hygiene", "snapshot", "--assessment", str(assessment),
                        "--share-with", "coordination").stdout
        assert "AMBER+STRICT" in out and "coordination" in out
        [(snap_id, snap)] = postures(north).items()
        assert snap[AUDIENCE_PROPERTY] == ["coordination"]
        assert snap["object_marking_refs"] == [tlp_marking_ref(TLP.AMBER_STRICT)]
        # every node pushes and pulls, twice, so a relay through the cell gets its chance
        for _ in range(2):
            for n in nodes:
                n.cli("sync")
        got = postures(cell)
        assert snap_id in got
        assert got[snap_id]["x_shieldwall_index"] == snap["x_shieldwall_index"]
        assert got[snap_id]["x_shieldwall_member"] == "north"
        assert snap_id not in postures(south)  # an ally, but not named
        assert snap_id not in south.ids()
        # the cell's report shows north's trend
        report = cell.cli("hygiene", "report", "--json").stdout
        assert '"north"' in report
        # the default audience names no peer here: the member is told it will not travel
        assert "no peer of this node is named" in north.cli("hygiene", "snapshot").stdout
    finally:
        for n in nodes:
            n.stop()
