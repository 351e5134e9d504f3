"""A peer cannot plant schema-invalid STIX in another node's store.

What a peer delivers is held to the STIX 2.1 schemas and pattern grammar that
`shieldwall import` applies (`stix.validate.object_error`): an invalid object is refused
and counted like any arrival refusal, the rest of its page is stored, and the cursor
moves past the page, so one bad object can neither poison detection nor stall the pull.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from typing import Any

import pytest

from shieldwall.federation import load_state
from shieldwall.federation.peers import PULL_KEY
from shieldwall.policy import member_identity_id
from shieldwall.stix.markings import TLP
from tests.factories import indicator
from tests.federation.conftest import SHIELDWALL, NodeHome
from tests.federation.test_arrival import (
    ADDED,
    MALLORY,
    HostilePeer,
    _arrival,
    _held,
    _peer,
    victim,  # noqa: F401  (the fixture)
)
from tests.federation.test_sync import sighting


def _relationship(source: str, target: str) -> dict[str, Any]:
    return {"type": "relationship", "spec_version": "2.1",
            "id": f"relationship--{uuid.uuid4()}", "created": "2024-01-01T00:00:00.000Z",
            "modified": "2024-01-01T00:00:00.000Z", "relationship_type": "indicates",
            "source_ref": source, "target_ref": target, "created_by_ref": MALLORY}


def _page() -> tuple[list[dict[str, Any]], dict[str, tuple[dict[str, Any], str]]]:
    """Valid objects, and invalid ones by what is wrong -> (object, words of the reason)."""
    first = indicator("198.51.100.60", created_by_ref=MALLORY)
    malware = {"type": "malware", "spec_version": "2.1", "id": f"malware--{uuid.uuid4()}",
               "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
               "name": "Hostile", "is_family": True, "created_by_ref": MALLORY}
    valid = [first, malware, _relationship(first["id"], malware["id"]),
             indicator("198.51.100.61", created_by_ref=MALLORY,
                       pattern=f"[file:hashes.'SHA-256' = '{'ab' * 32}']"
                       " AND [ipv4-addr:value = '192.0.2.1']"),
             sighting(first["id"], "mallory"),
             indicator("198.51.100.62", created_by_ref=MALLORY),
             # Second precision, as our TAXII server and many producers accept it: valid.
             indicator("198.51.100.63", created_by_ref=MALLORY,
                       created="2024-01-01T00:00:00Z", modified="2024-01-01T00:00:00Z",
                       valid_from="2024-01-01T00:00:00Z")]
    no_source = _relationship(first["id"], malware["id"])
    del no_source["source_ref"]
    no_pattern = indicator("192.0.2.60", created_by_ref=MALLORY)
    del no_pattern["pattern"]
    invalid = {
        "unparseable pattern": (indicator("192.0.2.61", created_by_ref=MALLORY,
                                          pattern="[ipv4-addr:value = '192.0.2.61'"),
                                "pattern"),
        "no pattern": (no_pattern, "pattern"),
        "spec_version 2.0": (indicator("192.0.2.62", created_by_ref=MALLORY,
                                       spec_version="2.0"), "spec_version"),
        "relationship without source_ref": (no_source, "source_ref"),
        "an impossible date": (indicator("192.0.2.63", created_by_ref=MALLORY,
                                         created="2023-02-30T00:00:00.000Z"), "2023-02-30"),
        "a pattern type it is not": (indicator("192.0.2.64", created_by_ref=MALLORY,
                                               pattern_type=5), "pattern_type"),
    }
    # Invalid ones between the valid ones, the relationship last: its reason is the last.
    mixed = [valid[0], *(o for o, _ in list(invalid.values())[:3]), *valid[1:4],
             *(o for o, _ in list(invalid.values())[4:]), *valid[4:],
             invalid["relationship without source_ref"][0]]
    return mixed, invalid


@pytest.mark.parametrize("page", [None, "2"], ids=["one page", "pages judged by the worker"])
def test_schema_invalid_objects_are_refused_counted_and_do_not_hold_the_cursor(
        victim: NodeHome, page: str | None) -> None:  # noqa: F811
    mixed, invalid = _page()
    bad = {o["id"] for o, _ in invalid.values()}
    good = [o for o in mixed if o["id"] not in bad]
    mallory = HostilePeer(mixed)
    env = os.environ | {"COLUMNS": "400"} | ({"SHIELDWALL_SYNC_PAGE": page} if page else {})

    def sync() -> None:
        subprocess.run([SHIELDWALL, "sync", "--home", str(victim.home)], env=env,
                       capture_output=True, text=True, timeout=120, check=True)

    try:
        _peer(victim, "mallory", mallory.url)
        sync()
        held = _held(victim)
        assert held == {o["id"]: [("mallory", o["modified"])] for o in good}
        s = victim.store()
        try:
            state = load_state(s, "mallory")
            cursor = s.kv_get(f"{PULL_KEY}mallory:alliance")
        finally:
            s.close()
        assert (state.pulled, state.rejected) == (len(good), len(invalid))
        no_source = invalid["relationship without source_ref"][0]["id"]
        assert state.last_rejection.startswith(f"{no_source}: invalid STIX 2.1: ")
        assert "source_ref" in state.last_rejection
        assert cursor is not None and ADDED in cursor  # past the page

        listing = subprocess.run([SHIELDWALL, "peer", "list", "--home", str(victim.home)],
                                 env=env, capture_output=True, text=True, timeout=60,
                                 check=True).stdout
        row = next(line for line in listing.splitlines() if "mallory" in line)
        assert f"│ {len(invalid)} " in row and no_source in row and "source_ref" in row

        # The next pull resumes after the page: nothing is fetched, stored or counted again.
        fetched = len(mallory.requests)
        sync()
        assert [q.get("added_after") for q in mallory.requests[fetched:]] == [[ADDED]]
        assert "next" not in mallory.requests[-1]
        s = victim.store()
        try:
            again = load_state(s, "mallory")
        finally:
            s.close()
        assert (again.pulled, again.rejected) == (len(good), len(invalid))
        assert set(_held(victim)) == {o["id"] for o in good}
    finally:
        mallory.close()


def test_each_invalid_object_is_refused_with_its_id_and_what_is_wrong() -> None:
    from shieldwall.federation.pull import _judge

    mixed, invalid = _page()
    judged = _judge(mixed, _arrival(), TLP.GREEN, {})
    reasons = {r[0]: why for r, why in judged.refused}
    assert set(reasons) == {o["id"] for o, _ in invalid.values()}
    for what, (obj, words) in invalid.items():
        assert reasons[obj["id"]].startswith("invalid STIX 2.1: "), what
        assert words in reasons[obj["id"]], (what, reasons[obj["id"]])
    assert len(judged.rows) == len(mixed) - len(invalid)


def test_an_invalid_object_is_refused_before_the_arrival_rules_see_it() -> None:
    """The reason names what is wrong with the object, whatever else it claims."""
    from shieldwall.federation.pull import _judge

    forged = indicator("192.0.2.70", created_by_ref=member_identity_id("north"))
    del forged["pattern"]
    [(_, why)] = _judge([forged], _arrival(), TLP.GREEN, {}).refused
    assert why.startswith("invalid STIX 2.1: ") and "pattern" in why
