"""The demo's blind-matching act (`make demo`, docs/blind.md): a RED indicator protects an ally.

cert-north holds a TLP:RED indicator from a sensitive source (an exfiltration server it
may not name to anyone) and publishes a blind set of it: the set federates to every ally,
its values hidden, the key staying at cert-north. cert-east's sensor saw a connection to
that server; cert-east's hunt resolves what it observed with cert-north's node over the
authenticated evaluation endpoint, matches, and records a sighting addressed to cert-north
alone. The act checks what it claims: the sighting is at cert-north and at no other node
(nor readable by them at cert-east), and the value is nowhere in cert-east's database.
Everything runs through the same functions as `blind publish` and `hunt`, in this process,
against the nodes' stores; the serving nodes federate and evaluate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shieldwall.cli.demo_respond import _until

# The server the RED indicator names (TEST-NET-3: an address for documentation). It is
# never printed: the demo's own output is one of the places it must not be.
_EXFIL = "203.0.113.45"


def _red_indicator(owner: str) -> dict[str, Any]:
    from shieldwall.stix.identity import member_identity_id
    from shieldwall.stix.ids import deterministic_id
    from shieldwall.stix.markings import TLP, tlp_marking_ref
    from shieldwall.stix.timestamps import format_ts, now_us

    stamp = format_ts(now_us())
    return {
        "type": "indicator", "spec_version": "2.1",
        "id": deterministic_id("indicator", f"demo-blind|{owner}"),
        "created": stamp, "modified": stamp, "valid_from": stamp,
        "created_by_ref": member_identity_id(owner),
        "name": "Operation Lantern exfiltration server",
        "indicator_types": ["malicious-activity"],
        "pattern": f"[ipv4-addr:value = '{_EXFIL}']", "pattern_type": "stix",
        "object_marking_refs": [tlp_marking_ref(TLP.RED)],
    }


def _sensor_log(folder: Path) -> Path:
    """cert-east's conn.log of the hour: ordinary traffic, and one upload to the server."""
    from shieldwall.cli.demo import _write_log

    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.time() - 300
    rows = [[f"{t0 + i * 7:.6f}", f"Cx{i:016d}", "172.16.9.41", str(50200 + i), dst, port,
             "tcp", "ssl", "1.204000", "2310", sent, "SF", "T", "0", "ShADadFf", "12", "2950",
             "10", "3411", "(empty)"]
            for i, (dst, port, sent) in enumerate([("192.0.2.10", "443", "5230"),
                                                   (_EXFIL, "443", "48213377"),
                                                   ("192.0.2.11", "443", "2210")])]
    path = folder / "conn.log"
    _write_log(path, "conn", rows, t0)
    return path


def _send(east_home: Path, owner: str) -> Any:
    """cert-east's authenticated channel to the owner's evaluation endpoint (its peer)."""
    from shieldwall.config import load_config
    from shieldwall.federation.peers import credentials
    from shieldwall.taxii.blind_routes import RemoteEvaluate

    peer = next(p for p in load_config(east_home).peers if p.name == owner)
    return RemoteEvaluate(peer.url, credentials(peer))


def _db_bytes_hold(home: Path, value: bytes) -> bool:
    """Does any file of the node's database (with its write-ahead log) hold `value`?"""
    return any(value in f.read_bytes() for f in home.glob("shieldwall.db*") if f.is_file())


def play(nodes: Sequence[Any], tl: Callable[[str, str], None]) -> bool:
    """The act; True when the sighting is where it should be, and only there, and the
    value nowhere at cert-east."""
    from shieldwall.blind.hits import HANDLE_PROPERTY
    from shieldwall.blind.hits import hunt as blind_hunt
    from shieldwall.blind.sets import held_sets, indicator_of_handle, select_entries
    from shieldwall.blind.sets import publish as publish_set
    from shieldwall.keys.oprf import oprf_key
    from shieldwall.policy import Member
    from shieldwall.policy.access import access_for
    from shieldwall.stix.markings import TLP
    from shieldwall.store import Provenance, Query

    by = {n.name: n for n in nodes}
    north, south, east, cell = (by[x] for x in ("cert-north", "cert-south", "cert-east",
                                                 "coordination"))
    red = _red_indicator(north.name)
    north.store.put(red, Provenance(north.name, "import"))
    entries, _ = select_entries(north.store, north.name, TLP.RED, [red["id"]])
    pub = publish_set(north.store, north.name, oprf_key(north.home), entries)
    tl(north.name, f"publishes a blind set of 1 TLP:RED indicator ({pub.values} value, "
       "hidden): allies can match it, none can read it; the key stays at cert-north")
    if not _until(lambda: any(s.owner == north.name for s in held_sets(east.store)),
                  "cert-north's blind set", tl, east.name):
        return False

    log = _sensor_log(east.home / "zeek-egress")
    result = blind_hunt(east.store, east.name, [log], lambda owner: _send(east.home, owner))
    if not result.hits or result.failed:
        why = "; ".join(result.failed.values()) or "no hit"
        tl(east.name, f"[red]its hunt did not match cert-north's blind set: {why}[/]")
        return False
    hit = result.hits[0]
    tl(east.name, f"its hunt matches a protected indicator of {hit.owner} (conn.log line "
       f"{hit.line}, {hit.field}): the sighting goes to {hit.owner} only")
    mine = [r.obj() for r in east.store.iter_query(Query(types=["sighting"]))
            if r.obj().get(HANDLE_PROPERTY) == hit.handle]
    if not mine:
        return False
    sid = mine[0]["id"]
    if not _until(lambda: north.store.get(sid), "cert-east's blind sighting", tl, north.name):
        return False
    named = north.store.get(indicator_of_handle(north.store, hit.handle) or "")
    tl(north.name, f"receives cert-east's blind sighting and maps its handle to "
       f"\"{named.name if named else '?'}\": it decides what to share or ask")
    elsewhere = [n.name for n in (south, cell) if n.store.get(sid) is not None]
    readable = [n.name for n in (south, cell)
                if east.store.get(sid, access_for(Member(n.name, "ally"))) is not None]
    leaked = _db_bytes_hold(east.home, _EXFIL.encode())
    if elsewhere or readable or leaked:
        tl("alliance", f"[red]the blind sighting reached {elsewhere or readable} "
           f"{'; the value is in cert-east database' if leaked else ''}[/]")
        return False
    tl("alliance", "the blind sighting is at cert-north only (not at cert-south or "
       "coordination, which may not read it); the protected value is nowhere in "
       "cert-east's store")
    return True
