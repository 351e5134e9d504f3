"""Blind matching end to end, with two real nodes on 127.0.0.1 and the real CLI.

cert-north holds a TLP:RED indicator and publishes a blind set; the set federates to
cert-east, an ally; cert-east's Zeek log has a line with the value; `blind resolve` finds
it by asking cert-north to evaluate what it saw; the sighting federates back to
cert-north, the only member it is for. Then every output of both nodes (TAXII answers each
gives the other, exports, server logs, CLI output and errors, and cert-east's whole
database) is searched for the protected value: it is never there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from shieldwall.blind.hits import HANDLE_PROPERTY
from shieldwall.blind.sets import BLIND_SET_TYPE
from shieldwall.store import Query
from tests.blind.helpers import OWNER, SECRET_IP, protected
from tests.federation.conftest import (
    fast_sync,  # noqa: F401  (fixture)
    make_node,
    peer,
    put,
    register,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("blind-e2e")

ZEEK = Path(__file__).parents[1] / "data" / "zeek" / "conn.log"


def _conn_log(tmp: Path) -> Path:
    """The shipped Zeek conn.log with one line's responder set to the protected address."""
    lines = ZEEK.read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#") and not ln.startswith("#close")]
    names = next(ln for ln in header if ln.startswith("#fields")).split("\t")[1:]
    rows = [ln.split("\t") for ln in lines if not ln.startswith("#")][:3]
    rows[1][names.index("id.resp_h")] = SECRET_IP
    out = tmp / "conn.log"
    out.write_text("\n".join([*header, *("\t".join(r) for r in rows)]) + "\n")
    return out


def _objects(url: str, token: str) -> list[str]:
    """Every TAXII answer a member gets from a node: collections, and each one's objects."""
    h = {"Authorization": f"Bearer {token}", "Accept": "application/taxii+json;version=2.1"}
    answers = []
    cols = httpx.get(f"{url}/api/collections/", headers=h, timeout=30)
    answers.append(cols.text)
    for c in cols.json().get("collections", []):
        r = httpx.get(f"{url}/api/collections/{c['id']}/objects/", headers=h, timeout=30)
        answers.append(r.text)
    return answers


def test_a_red_indicator_protects_an_ally_that_never_learns_it(tmp_path, fast_sync):  # noqa: F811
    north = make_node(tmp_path, OWNER)
    east = make_node(tmp_path, "cert-east")
    register(north, east)
    register(east, north)
    outputs: list[str] = []

    def cli(node, *args: str, check: bool = True):
        r = node.cli(*args, check=False)
        outputs.extend([r.stdout, r.stderr])
        if check:
            assert r.returncode == 0, r.stderr
        return r

    red = protected(name="Operation Lantern exfiltration server")
    put(north, [red])
    published = cli(north, "blind", "publish", "--tlp", "red")
    assert "published 1 value of 1 indicator in 1 blind set" in published.stdout
    north.start()
    east.start()
    servers = [north.server, east.server]
    try:
        peer(east, north)
        peer(north, east)

        def east_has_set() -> bool:
            s = east.store()
            try:
                return s.count(Query(types=[BLIND_SET_TYPE])) > 0
            finally:
                s.close()

        wait_for(east_has_set, 60, "the blind set at cert-east")
        assert red["id"] not in east.ids()

        log = _conn_log(tmp_path)
        hunted = cli(east, "blind", "resolve", str(log))
        said = re.search(rf"a protected indicator of {OWNER} matched {re.escape(str(log))} "
                         r"line (\d+) \(network-traffic:dst_ref.value\)", hunted.stdout)
        assert said, hunted.stdout
        assert log.read_text().splitlines()[int(said.group(1)) - 1].count(SECRET_IP) == 1
        assert "1 blind hit" in hunted.stdout
        again = cli(east, "blind", "resolve", str(log))  # cached: no round trip
        assert "0 asked of the owners" in again.stdout

        def north_has_hit() -> bool:
            s = north.store()
            try:
                return any(HANDLE_PROPERTY in r.obj()
                           for r in s.iter_query(Query(types=["sighting"])))
            finally:
                s.close()

        wait_for(north_has_hit, 60, "the blind sighting at cert-north")
        listed = cli(north, "blind", "list", "--audit")
        assert "hit on Operation Lantern exfiltration server" in listed.stdout
        assert "seen by cert-east" in listed.stdout
        assert "cert-east epoch 1" in listed.stdout and "answered" in listed.stdout
        cli(east, "blind", "list")
        # errors: an unknown file, a partner-less owner
        cli(east, "blind", "resolve", str(tmp_path / "missing.log"), check=False)
        # every TAXII answer each node gives the other
        outputs += _objects(north.url, (east.home / f"token-at-{OWNER}").read_text().strip())
        outputs += _objects(east.url, (north.home / "token-at-cert-east").read_text().strip())
        # exports of both nodes, what an ally may read and what the node's own export gives
        outputs.append(cli(north, "export", "--for", "cert-east").stdout)
        outputs.append(cli(east, "export", "--tlp-max", "red").stdout)
        sighting = next(json.loads(o) for o in [cli(east, "export", "--type", "sighting")
                                                .stdout])
        assert any(HANDLE_PROPERTY in o for o in sighting["objects"])
    finally:
        north.stop()
        east.stop()
    for server in servers:
        assert server is not None and server.log
        outputs += server.log
    leaks = [o[:200] for o in outputs if SECRET_IP in o]
    assert not leaks
    assert SECRET_IP.encode() not in (east.home / "shieldwall.db").read_bytes()
    for f in east.home.rglob("*"):
        if f.is_file():
            assert SECRET_IP.encode() not in f.read_bytes(), f
