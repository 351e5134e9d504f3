"""`case publish`: a case's findings become indicators and a report at the team's TLP, new
versions of the same ids when published again; on a real ally's node (serving, with its
sync loop) the new indicator is looked for in the telemetry it already keeps, and the
sighting found there reaches the publisher."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, resolve_tlp
from shieldwall.store import Query
from tests.federation.conftest import NodeHome, make_node, peer, register, wait_for

pytestmark = pytest.mark.xdist_group("respond-federation")

C2 = "203.0.113.77"


def _objects(node: NodeHome, *types: str) -> list[dict]:
    s = node.store()
    try:
        return [r.obj() for r in s.iter_query(Query(types=list(types)))]
    finally:
        s.close()


def _versions(node: NodeHome, oid: str) -> int:
    s = node.store()
    try:
        with s.engine.connect() as conn:
            return int(conn.exec_driver_sql(
                "SELECT count(*) FROM objects WHERE id = ?", (oid,)).scalar_one())
    finally:
        s.close()


def _zeek_conn(path: Path, responder: str) -> Path:
    """A Zeek conn.log (the header of Zeek's own) with this hour's connections."""
    now = time.time()
    rows = [f"{now - 600 + i:.6f}\tC{i:017d}\t10.1.1.{i + 2}\t{49152 + i}\t"
            f"{responder if i == 3 else f'198.51.100.{i + 1}'}\t443\ttcp\tssl\t1.0\t100\t"
            "200\tSF\t-\t0\tShADadFf\t5\t300\t5\t400\t(empty)" for i in range(6)]
    header = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)",
              "#unset_field\t-", "#path\tconn", "#open\t2026-12-06-10-00-00",
              "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\t"
              "duration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tmissed_bytes\t"
              "history\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents",
              "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\t"
              "count\tstring\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]"]
    path.write_text("\n".join([*header, *rows, "#close\t2026-12-06-11-00-00"]) + "\n")
    return path


def _case(south: NodeHome) -> str:
    inc = south.cli("incident", "open", "--name", "Ransomware at the grid operator",
                    "--sector", "energy", "--tlp", "amber+strict").stdout.strip()
    south.cli("case", "observable", "add", inc, f"ipv4-addr:{C2}", "domain-name:C2.Example.")
    return inc


def test_publishing_again_versions_the_same_objects(tmp_path: Path) -> None:
    south = make_node(tmp_path, "cert-south")
    inc = _case(south)
    r = south.cli("case", "publish", inc, "--tlp", "green")
    assert "2 indicators and a report" in r.stdout, r.stdout
    inds = {i["pattern"]: i for i in _objects(south, "indicator")}
    assert set(inds) == {f"[ipv4-addr:value = '{C2}']", "[domain-name:value = 'c2.example']"}
    assert all(resolve_tlp(i, TLP.RED) is TLP.GREEN for i in inds.values())
    (report,) = _objects(south, "report")
    assert resolve_tlp(report, TLP.RED) is TLP.GREEN
    # The AMBER+STRICT incident is not named by the GREEN report, nor linked at GREEN.
    assert inc not in report["object_refs"]
    assert set(report["object_refs"]) == {i["id"] for i in inds.values()}
    links = [r for r in _objects(south, "relationship") if r["target_ref"] == inc
             and r["source_ref"] in {*report["object_refs"], report["id"]}]
    assert len(links) == 3
    (incident,) = _objects(south, "incident")
    assert all(resolve_tlp(rel, TLP.CLEAR) is TLP.AMBER_STRICT
               and rel.get(AUDIENCE_PROPERTY) == incident.get(AUDIENCE_PROPERTY)
               for rel in links)

    again = south.cli("case", "publish", inc, "--tlp", "green")
    assert "0 objects written, 3 unchanged" in again.stdout, again.stdout
    south.cli("case", "observable", "add", inc, "url:http://c2.example/gate.php")
    third = south.cli("case", "publish", inc, "--tlp", "green")
    assert "3 indicators" in third.stdout and "2 objects written" in third.stdout
    assert _versions(south, report["id"]) == 2
    assert len({i["id"] for i in _objects(south, "indicator")}) == 3
    assert all(_versions(south, i["id"]) == 1 for i in inds.values())

    red = south.cli("case", "publish", inc, "--tlp", "red", check=False)
    assert red.returncode == 2 and "TLP:RED findings never leave this node" in red.stderr


def test_a_published_finding_is_retro_hunted_at_an_ally_and_its_sighting_comes_back(
        tmp_path: Path, fast_sync: None) -> None:
    south, east = make_node(tmp_path, "cert-south"), make_node(tmp_path, "cert-east")
    # East kept a connection to the address before anyone knew it was bad.
    east.cli("hunt", str(_zeek_conn(tmp_path / "conn.log", C2)))
    assert not _objects(east, "sighting")
    for x, y in ((south, east), (east, south)):
        register(x, y)
    try:
        south.start()
        east.start()
        peer(south, east)
        peer(east, south)
        inc = _case(south)
        south.cli("case", "publish", inc, "--tlp", "green", "--only", f"ipv4-addr:{C2}")
        (ind,) = _objects(south, "indicator")

        def east_sighting() -> bool:
            return any(s["sighting_of_ref"] == ind["id"] for s in _objects(east, "sighting"))

        wait_for(east_sighting, timeout=60, what="east's retro-hunt of the published finding")
        (sighting,) = [s for s in _objects(east, "sighting")
                       if s["sighting_of_ref"] == ind["id"]]
        assert sighting["count"] == 1
        wait_for(lambda: sighting["id"] in south.ids(), timeout=60,
                 what="east's sighting at the publisher")
    finally:
        south.stop()
        east.stop()


def test_sync_retro_hunts_what_it_pulled(tmp_path: Path) -> None:
    """`shieldwall sync` (no serve loop) looks for what it pulled in the telemetry kept."""
    south, east = make_node(tmp_path, "cert-south"), make_node(tmp_path, "cert-east")
    east.cli("hunt", str(_zeek_conn(tmp_path / "conn.log", C2)))
    register(south, east)
    try:
        south.start("--no-federate")
        peer(east, south)
        inc = _case(south)
        south.cli("case", "publish", inc, "--tlp", "green", "--only", f"ipv4-addr:{C2}")
        (ind,) = _objects(south, "indicator")
        done = east.cli("sync", "--no-push")
        said = " ".join(done.stdout.split())
        assert "retro-hunt: 1 new indicator in stored telemetry, 1 hit, 1 sighting recorded" \
            in said, said
        assert [s["sighting_of_ref"] for s in _objects(east, "sighting")] == [ind["id"]]
        again = east.cli("sync", "--no-push")
        assert "retro-hunt" not in again.stdout  # each indicator is hunted once
        assert len(_objects(east, "sighting")) == 1
    finally:
        south.stop()
