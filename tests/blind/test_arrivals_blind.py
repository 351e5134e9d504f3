"""A blind set that arrives is looked for in the telemetry the node kept, by itself: `serve`'s
retro-hunt of arrivals and `sync`, with two real nodes on 127.0.0.1.

cert-east hunts a Zeek log holding the protected address before it holds any blind set: the
telemetry is kept, nothing blind is said. cert-north's set then reaches cert-east, and,
with no `hunt --since`, cert-east's node resolves its kept values with cert-north (over the
peer's credentials), records a sighting for cert-north alone and that sighting reaches
cert-north. The value appears in no output of either node, and in cert-east's home only in
the telemetry it kept.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from shieldwall.blind.sets import BLIND_SET_TYPE
from shieldwall.stix.markings import AUDIENCE_PROPERTY
from tests.blind.helpers import OWNER, SECRET_IP
from tests.blind.test_hunt_cli import (
    ZEEK,
    _blind_sightings,
    _conn_log,
    _stored,
    assert_value_unsaid,
    owner_and_ally,
    serve_and_share,
)
from tests.federation.conftest import (
    fast_sync,  # noqa: F401  (fixture)
    peer,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("blind-arrivals")


def _kept_telemetry_hit(tmp_path, cli, east) -> None:  # type: ignore[no-untyped-def]
    """cert-east's sensor logged the upload yesterday (the retro-hunt of arrivals looks 90
    days back); hunted before any set is held: kept, nothing blind said."""
    first = float(next(ln for ln in ZEEK.read_text().splitlines()
                       if not ln.startswith("#")).split("\t")[0])
    log = _conn_log(tmp_path / "conn.log", shift_s=int(time.time() - 86_400 - first),
                    secret_row=2)
    assert "blind hit" not in cli(east, "hunt", str(log))
    assert not _blind_sightings(east)


def _assert_for_owner_alone(sighting: dict[str, Any]) -> None:
    assert sighting[AUDIENCE_PROPERTY] == sorted([OWNER, "cert-east"])
    assert sighting["sighting_of_ref"].startswith(BLIND_SET_TYPE)
    assert sighting["count"] == 1
    (said,) = sighting["x_shieldwall_explanation"]
    assert said["file"].endswith("conn.log") and said["line"] == 11  # the row, past the header
    assert SECRET_IP not in str(sighting)


def test_serve_retro_hunts_a_blind_set_as_it_arrives(tmp_path, fast_sync):  # noqa: F811
    north, east, outputs, cli = owner_and_ally(tmp_path)
    _kept_telemetry_hit(tmp_path, cli, east)
    servers: list[Any] = []
    try:
        serve_and_share(north, east, servers)
        # No hunt is run: the arrivals loop of cert-east's `serve` finds the line.
        wait_for(lambda: len(_blind_sightings(east)) == 1, 60,
                 "the retro-hunt's blind sighting at cert-east")
        (mine,) = _blind_sightings(east)
        _assert_for_owner_alone(mine)
        wait_for(lambda: any(s["id"] == mine["id"] for s in _blind_sightings(north)), 60,
                 "the blind sighting at cert-north")
        assert "hit on Operation Lantern exfiltration server" in cli(north, "blind", "list")
        # Hunting the same range again merges with it: no second sighting, same count.
        assert "1 blind hit on protected indicators of allies" in cli(
            east, "hunt", "--since", "6000d")
        (again,) = _blind_sightings(east)
        assert again["id"] == mine["id"] and again["count"] == 1
    finally:
        north.stop()
        east.stop()
    assert_value_unsaid(outputs, servers, east)


def test_sync_retro_hunts_a_blind_set_it_pulls(tmp_path, fast_sync):  # noqa: F811
    north, east, outputs, cli = owner_and_ally(tmp_path)
    _kept_telemetry_hit(tmp_path, cli, east)
    try:
        north.start()  # cert-east does not serve: it syncs
        peer(east, north)
        said = cli(east, "sync")
        assert _stored(east, BLIND_SET_TYPE)
        assert "1 blind hit" in said, said
        (mine,) = _blind_sightings(east)
        _assert_for_owner_alone(mine)
        # `sync` pushed it at once.
        wait_for(lambda: any(s["id"] == mine["id"] for s in _blind_sightings(north)), 30,
                 "the blind sighting at cert-north")
        # A second sync: the set is not hunted again (the cursor moved past it).
        assert "blind hit" not in cli(east, "sync")
        log = north.server.log if north.server is not None else []
    finally:
        north.stop()
    assert not [o[:200] for o in [*outputs, *log] if SECRET_IP in o]
    assert SECRET_IP.encode() not in (east.home / "shieldwall.db").read_bytes()
