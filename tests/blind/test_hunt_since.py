"""A retro-hunt (`hunt --since`) matches the blind sets held, with two real nodes on 127.0.0.1.

cert-east hunts a Zeek log holding the protected address before any blind set reaches it:
the telemetry is kept, nothing blind is said. cert-north's set then federates to cert-east,
and cert-east's `hunt --since` over the telemetry it kept finds the line, records a sighting
for cert-north alone (it federates back), and says which line; a second run over the same
range records nothing new. The value appears in no output of either node, and in
cert-east's home only in the telemetry it kept.
"""

from __future__ import annotations

import pytest

from tests.blind.test_hunt_cli import (
    _blind_sightings,
    _conn_log,
    assert_one_hit,
    assert_value_unsaid,
    owner_and_ally,
    serve_and_share,
)
from tests.federation.conftest import (
    fast_sync,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.xdist_group("blind-hunt-since")

SINCE = "6000d"  # the shipped conn.log is of 2013


def test_hunt_since_matches_blind_sets(tmp_path, fast_sync):  # noqa: F811
    north, east, outputs, cli = owner_and_ally(tmp_path)
    # cert-east's sensor logged the upload before cert-east held any set: a plain hunt,
    # which keeps the telemetry.
    log = _conn_log(tmp_path / "conn.log", secret_row=2)
    assert "blind hit" not in cli(east, "hunt", str(log))
    assert not _blind_sightings(east)
    servers: list = []  # type: ignore[type-arg]
    try:
        serve_and_share(north, east, servers)

        said = cli(east, "hunt", "--since", SINCE)
        mine = assert_one_hit(said, log, north, east, cli)
        assert mine["count"] == 1

        # The same range again: the same line, merged with the stored sighting, no new one.
        said = cli(east, "hunt", "--since", SINCE)
        assert "1 blind hit on protected indicators of allies" in said
        (again,) = _blind_sightings(east)
        assert again["id"] == mine["id"] and again["count"] == 1
        assert again["modified"] == mine["modified"]

        # A retro-hunt whose range holds no protected value: nothing blind hits.
        assert "0 blind hits" in cli(east, "hunt", "--since", "1d")
    finally:
        north.stop()
        east.stop()
    assert_value_unsaid(outputs, servers, east)
