"""`shieldwall demo --once` end to end; a sync killed mid-way (SIGKILL of the syncing
process, then of the peer) resumes with nothing lost and nothing stored twice."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import orjson
from sqlalchemy import func, select

from shieldwall.federation.peers import PULL_KEY
from shieldwall.store import Query, Store
from shieldwall.store.schema import objects
from tests.factories import indicator
from tests.federation.conftest import SHIELDWALL, make_node, peer, put, register, wait_for


def test_demo_once_two_members_hit(tmp_path: Path) -> None:
    res = subprocess.run([SHIELDWALL, "demo", "--once", "--home", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=170)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 members hit: cert-east, cert-south" in res.stdout
    # the coordination node's own store holds both members' sightings
    view = subprocess.run([SHIELDWALL, "alliance", "--json", "--home",
                           str(tmp_path / "demo" / "coordination")],
                          capture_output=True, text=True, timeout=60, check=True)
    rows = [orjson.loads(line) for line in view.stdout.splitlines()]
    assert {r["member"] for r in rows} == {"cert-south", "cert-east"}
    # The rapid-reaction act: the team's published C2 address was found by cert-east's
    # node in the telemetry it kept, and that sighting reached the cell.
    said = " ".join(res.stdout.split())  # the console wraps at its width
    assert "the team's finding protected cert-east" in said
    for step in ("asks the alliance for help", "dispatches a rapid reaction team",
                 "opens the case from the ransomware template", "case verify: verified",
                 "publishes it at TLP:GREEN", "sighting of the team's finding reaches every"):
        assert step in " ".join(res.stderr.split()), step  # the timeline, on stderr
    assert any(r["member"] == "cert-east" and "198.51.100.23" in json.dumps(r) for r in rows)
    timeline = " ".join(res.stderr.split())
    # The blind act (#18): a RED indicator of cert-north protects cert-east, which never
    # learns it; the sighting is cert-north's alone.
    for step in ("cert-north publishes a blind set of 1 TLP:RED indicator",
                 "cert-east its hunt matches a protected indicator of cert-north",
                 "the sighting goes to cert-north only",
                 "maps its handle to \"Operation Lantern exfiltration server\"",
                 "the blind sighting is at cert-north only (not at cert-south or coordination",
                 "the protected value is nowhere in cert-east's store"):
        assert step in timeline, step
    assert "203.0.113.45" not in res.stdout + res.stderr  # the RED value, never said
    blind = {}
    for who in ("cert-north", "cert-south", "cert-east", "coordination"):
        s = Store.open(f"sqlite:///{tmp_path / 'demo' / who / 'shieldwall.db'}")
        try:
            blind[who] = [r.id for r in s.iter_query(Query(types=["sighting"]))
                          if "x_shieldwall_blind_handle" in r.obj()]
        finally:
            s.close()
    assert blind["cert-north"] and blind["cert-north"] == blind["cert-east"]
    assert not blind["cert-south"] and not blind["coordination"]
    # The outputs (#16): each SOC's receiver inside the demo got signed alerts.
    north = re.search(r"cert-north its webhook receiver got (\d+) alerts \(signed, HMAC "
                      r"checked; 0 repeated, 0 refused\): sighting-elsewhere (\d+); "
                      r"sightings at cert-east, cert-south, 1 of them the blind hit", timeline)
    assert north and int(north.group(1)) == int(north.group(2)) >= 4, timeline[-1500:]
    assert ("coordination its webhook receiver got 2 alerts (signed, HMAC checked; 0 "
            "repeated, 0 refused): assistance-request 1, consultation 1") in timeline


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cursor(node_store, key: str) -> str | None:  # type: ignore[no-untyped-def]
    return node_store.kv_get(key)


def test_sync_killed_midway_resumes_without_loss_or_duplicate(tmp_path: Path) -> None:
    a, b = make_node(tmp_path, "north"), make_node(tmp_path, "south")
    register(a, b)
    n = 30_000
    put(a, [indicator(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in range(n)])
    port = _free_port()
    env = os.environ | {"SHIELDWALL_SYNC_PAGE": "500"}
    key = f"{PULL_KEY}north:alliance"
    sb = b.store()
    try:
        a.start("--port", str(port), "--rate-limit", "0")
        peer(b, a)

        def sync() -> subprocess.Popen[str]:
            return subprocess.Popen([SHIELDWALL, "sync", "--retries", "0", "--home",
                                     str(b.home)], env=env, text=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        # 1. the syncing process is killed mid-way
        proc = sync()
        wait_for(lambda: _cursor(sb, key) is not None, 120, "a first page stored")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        partial = sb.count(Query())
        assert 0 < partial < n
        # 2. resumed; the peer is killed mid-way
        proc = sync()
        wait_for(lambda: sb.count(Query()) > partial, 120, "progress after resuming")
        assert a.server is not None
        a.server.proc.send_signal(signal.SIGKILL)
        a.server.proc.wait(30)
        a.server = None
        assert proc.wait(120) == 1  # the peer went away: reported, cursor kept
        assert sb.count(Query()) < n
        # 3. the peer returns; one more sync catches up
        a.start("--port", str(port), "--rate-limit", "0")
        res = b.cli("sync")
        assert "north" in res.stdout
        a_ids = a.ids()
        sa = a.store()
        try:
            a_versions = {(r.id, r.version_us) for r in sa.iter_query(Query(versions="all"))}
        finally:
            sa.close()
        b_versions = [(r.id, r.version_us) for r in sb.iter_query(Query(versions="all"))]
        with sb.engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(objects)).scalar()
        assert set(b_versions) == a_versions  # nothing lost (and nothing else)
        assert rows == len(b_versions) == len(a_versions)  # nothing stored twice
        assert len(a_ids) == n
    finally:
        sb.close()
        a.stop()
