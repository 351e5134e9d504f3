"""Blind sets ride `shieldwall hunt` and `watch`, with two real nodes on 127.0.0.1.

cert-north publishes a blind set of a TLP:RED indicator; it federates to cert-east. cert-
east's ordinary `hunt` of a Zeek log with the protected address on one line records a blind
hit as a sighting addressed to cert-north alone, which federates back; `watch` on a growing
log does the same as lines arrive. The value appears in no output of either node, and in
cert-east's home only in the telemetry it kept of its own log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from shieldwall.blind.hits import HANDLE_PROPERTY, OWNER_PROPERTY
from shieldwall.blind.sets import BLIND_SET_TYPE
from shieldwall.stix.markings import AUDIENCE_PROPERTY
from shieldwall.store import Query
from tests.blind.helpers import OWNER, SECRET_IP, protected
from tests.federation.conftest import (
    SHIELDWALL,
    fast_sync,  # noqa: F401  (fixture)
    make_node,
    peer,
    put,
    register,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("blind-hunt-cli")

ZEEK = Path(__file__).parents[1] / "data" / "zeek" / "conn.log"


def _conn_log(out: Path, shift_s: int = 0, secret_row: int | None = 1) -> Path:
    """The shipped conn.log's first rows, times shifted by `shift_s`, the responder of
    `secret_row` set to the protected address."""
    lines = ZEEK.read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#") and not ln.startswith("#close")]
    names = next(ln for ln in header if ln.startswith("#fields")).split("\t")[1:]
    rows = [ln.split("\t") for ln in lines if not ln.startswith("#")][:4]
    for r in rows:
        r[0] = f"{float(r[0]) + shift_s:.6f}"
    if secret_row is not None:
        rows[secret_row][names.index("id.resp_h")] = SECRET_IP
    out.write_text("\n".join([*header, *("\t".join(r) for r in rows)]) + "\n")
    return out


def _stored(node, kind: str) -> list[dict]:  # type: ignore[no-untyped-def]
    s = node.store()
    try:
        return [r.obj() for r in s.iter_query(Query(types=[kind]))]
    finally:
        s.close()


def _blind_sightings(node) -> list[dict]:  # type: ignore[no-untyped-def]
    return [o for o in _stored(node, "sighting") if HANDLE_PROPERTY in o]


def owner_and_ally(tmp_path: Path) -> tuple[Any, Any, list[str], Any]:
    """cert-north (which has published a blind set of a RED indicator) and cert-east, each
    a member of the other's node, not yet serving; the outputs every `cli` call collects,
    and `cli(node, *args)`: what the command said, on one line (it must succeed)."""
    north = make_node(tmp_path, OWNER)
    east = make_node(tmp_path, "cert-east")
    register(north, east)
    register(east, north)
    outputs: list[str] = []

    def cli(node, *args: str) -> str:  # type: ignore[no-untyped-def]
        r = node.cli(*args, check=False)
        outputs.extend([r.stdout, r.stderr])
        assert r.returncode == 0, r.stderr
        return " ".join((r.stdout + r.stderr).split())  # the console wraps

    put(north, [protected(name="Operation Lantern exfiltration server")])
    cli(north, "blind", "publish", "--tlp", "red")
    return north, east, outputs, cli


def serve_and_share(north: Any, east: Any, servers: list[Any]) -> None:
    """Both nodes serving (their servers added to `servers`, whose logs outlive `stop`),
    each the other's peer, until cert-east holds the set."""
    north.start()
    east.start()
    servers += [north.server, east.server]
    peer(east, north)
    peer(north, east)
    wait_for(lambda: bool(_stored(east, BLIND_SET_TYPE)), 60, "the set at cert-east")


def assert_one_hit(said: str, log: Path, north: Any, east: Any, cli: Any) -> dict[str, Any]:
    """What a hunt that met the protected address on one line of `log` said and stored:
    the line named, one sighting for cert-north alone, which reaches it; the sighting."""
    m = re.search(rf"a protected indicator of {OWNER} matched {re.escape(str(log))} "
                  r"line (\d+) \(network-traffic:dst_ref.value\)", said)
    assert m, said
    assert log.read_text().splitlines()[int(m.group(1)) - 1].count(SECRET_IP) == 1
    assert "1 blind hit on protected indicators of allies; 1 sighting for their " \
           "owners only" in said
    (mine,) = _blind_sightings(east)
    assert mine[OWNER_PROPERTY] == OWNER
    assert mine[AUDIENCE_PROPERTY] == sorted([OWNER, "cert-east"])
    assert mine["sighting_of_ref"].startswith(BLIND_SET_TYPE)
    wait_for(lambda: any(s["id"] == mine["id"] for s in _blind_sightings(north)), 60,
             "the blind sighting at cert-north")
    assert "hit on Operation Lantern exfiltration server" in cli(north, "blind", "list")
    return mine


def assert_value_unsaid(outputs: list[str], servers: list[Any], east: Any) -> None:
    """The protected value is in no output of a command, nor any line either server
    logged, and in cert-east's home only in the telemetry it kept of its own log."""
    assert len(servers) == 2
    for server in servers:
        assert server is not None and server.log
        outputs += server.log
    assert not [o[:200] for o in outputs if SECRET_IP in o]
    assert SECRET_IP.encode() not in (east.home / "shieldwall.db").read_bytes()
    for f in east.home.rglob("*"):
        if f.is_file() and "telemetry" not in f.relative_to(east.home).parts:
            assert SECRET_IP.encode() not in f.read_bytes(), f


def _watch(east: Any, log: Path, *options: str) -> subprocess.Popen[str]:
    """`shieldwall watch` of `log` at cert-east from its start, polling every 0.2 s,
    unbuffered (what it said is in the pipe when it is stopped)."""
    return subprocess.Popen(
        [SHIELDWALL, "watch", str(log), "--from-start", "--interval", "0.2", *options,
         "--home", str(east.home)], text=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"})


def _said_by(watcher: subprocess.Popen[str]) -> str:
    """Stop a watch (SIGTERM) and return what it said."""
    watcher.send_signal(signal.SIGTERM)
    return watcher.communicate(timeout=30)[0]


def _end(watcher: subprocess.Popen[str] | None, *nodes: Any) -> None:
    if watcher is not None:
        watcher.kill()
        watcher.wait(30)
    for node in nodes:
        node.stop()


def test_hunt_and_watch_carry_blind_sets(tmp_path, fast_sync):  # noqa: F811
    north, east, outputs, cli = owner_and_ally(tmp_path)
    # Before any set is held, a hunt is the plain hunt: nothing blind is said.
    clean = _conn_log(tmp_path / "clean.log", secret_row=None)
    assert "blind hit" not in cli(east, "hunt", str(clean))
    servers: list[Any] = []
    watcher: subprocess.Popen[str] | None = None
    try:
        serve_and_share(north, east, servers)

        # A hunt whose telemetry holds no protected value: resolved, no hit, no sighting.
        said = cli(east, "hunt", str(clean))
        assert "0 blind hits on protected indicators of allies; 0 sightings" in said
        assert not _blind_sightings(east)

        log = _conn_log(tmp_path / "conn.log")
        said = cli(east, "hunt", str(log))
        assert_one_hit(said, log, north, east, cli)

        # watch: lines two hours later, followed as they are; a new window, a new sighting
        later = _conn_log(tmp_path / "later.log", shift_s=7_200)
        watcher = _watch(east, later)
        wait_for(lambda: len(_blind_sightings(north)) == 2, 90,
                 "the watch's blind sighting at cert-north")
        watched, watcher = _said_by(watcher), None
        outputs.append(watched)
        assert f"a protected indicator of {OWNER} matched" in watched
        assert "1 blind hit(s); 1 sighting(s) for the owners only" in " ".join(watched.split())
    finally:
        _end(watcher, north, east)
    assert_value_unsaid(outputs, servers, east)


def test_a_watch_started_before_the_set_arrived_matches_it(tmp_path, fast_sync):  # noqa: F811
    """`watch` runs for days: a blind set that reaches the node while it runs, from a peer
    added while it runs, is matched from the next look for new indicators on (it used to
    keep the sets held at its start, none here, until restarted)."""
    north, east, outputs, _ = owner_and_ally(tmp_path)
    log = _conn_log(tmp_path / "growing.log", shift_s=3_600, secret_row=None)
    servers: list[Any] = []
    watcher: subprocess.Popen[str] | None = _watch(east, log, "--resync", "1")
    try:
        serve_and_share(north, east, servers)  # the set reaches cert-east while it watches
        time.sleep(3)  # past the next look (--resync 1)
        later = _conn_log(tmp_path / "later.log", shift_s=3_600)
        with log.open("a") as f:  # the protected address arrives on a new line
            f.write("".join(ln + "\n" for ln in later.read_text().splitlines()
                            if not ln.startswith("#")))
        try:
            wait_for(lambda: len(_blind_sightings(north)) == 1, 90,
                     "the watch's blind sighting at cert-north")
        finally:
            watched, watcher = _said_by(watcher), None
            outputs.append(watched)
        said = " ".join(watched.split())
        assert "now matching 1 blind set(s) of allies" in said
        assert f"a protected indicator of {OWNER} matched" in said
    finally:
        _end(watcher, north, east)
    assert_value_unsaid(outputs, servers, east)
