"""Attacks on the chain of custody: each is flagged by `verify`, with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from shieldwall.keys.signing import keyring, node_keys
from shieldwall.respond.custody import object_hash, signed_bytes
from shieldwall.respond.verify import Report, verify_custody
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.ids import new_id
from tests.respond.custody_case import CustodyCase, custody_case


def _kinds(report: Report) -> set[str]:
    return {f.kind for f in report.findings}


def _resign(case: CustodyCase, event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What the holder of the event's node key can do: change it and sign again."""
    keys = case.home if event["signing_key"] == case.home.signing_public else case.laptop
    out = {k: v for k, v in event.items() if k != "signature"} | changes
    out["signature"] = keys.sign(signed_bytes(out))
    return out


def test_an_event_signed_by_another_node_than_its_member_s(tmp_path: Path) -> None:
    case = custody_case(tmp_path)
    # cert-south's node writes an event that speaks for cert-north, signed with its own key.
    forged = _resign(case, case.events[1], created_by_ref=member_identity_id("cert-north"))
    report = verify_custody(case.case_id, case.evidence,
                            [*case.events[:1], forged, *case.events[2:]], case.ring)
    # Its hash changed too: the next event and the laptop's saw another one.
    assert _kinds(report) == {"wrong-node", "missing"}
    assert any(f.kind == "wrong-node" and f.object_id == forged["id"]
               and "signed by a node of cert-south" in f.message for f in report.findings)
    # Naming cert-north's key without holding it: the signature fails.
    stolen = {**forged, "signing_key": case.laptop.signing_public}
    report = verify_custody(case.case_id, case.evidence,
                            [*case.events[:1], stolen, *case.events[2:]], case.ring)
    assert "changed" in _kinds(report)


def test_a_key_never_received_cannot_be_verified(tmp_path: Path) -> None:
    case = custody_case(tmp_path)
    only_home = keyring([case.home.card()])
    report = verify_custody(case.case_id, case.evidence, case.events, only_home)
    assert _kinds(report) == {"unknown-key"}
    assert all("cannot verify" in f.message for f in report.findings)
    assert len(report.findings) == sum(
        e["signing_key"] == case.laptop.signing_public for e in case.events)
    # A key object for the same member from another node counts only for that node's key.
    stranger = node_keys(tmp_path / "stranger", "cert-north")
    report = verify_custody(case.case_id, case.evidence, case.events,
                            keyring([case.home.card(), stranger.card()]))
    assert _kinds(report) == {"unknown-key"}


def test_a_reordered_chain(tmp_path: Path) -> None:
    case = custody_case(tmp_path)
    # The home node's disk chain is #1 collected, #2 handed-over, #3 reverified (events 0,
    # 1, 4). Its key holder rewrites history: reverified signed as #2, handed-over as #3.
    one, two, three = case.events[0], case.events[1], case.events[4]
    assert three["chain_seq"] == 3
    new_two = _resign(case, three, chain_seq=2, chain_prev=object_hash(one))
    new_three = _resign(case, two, chain_seq=3, chain_prev=object_hash(new_two))
    events = [one, new_two, new_three, *case.events[2:4], *case.events[5:]]
    report = verify_custody(case.case_id, case.evidence, events, case.ring)
    assert any(f.kind == "reordered" and "dated before #2" in f.message
               for f in report.findings)
    # An event signed to follow a later one of its chain.
    looped = _resign(case, two, chain_prev=object_hash(three))
    events = [one, looped, *case.events[2:]]
    report = verify_custody(case.case_id, case.evidence, events, case.ring)
    assert any(f.kind == "reordered" and "signed to follow #3, not #1" in f.message
               for f in report.findings)
    # Swapping the positions without the key: both signatures fail.
    swapped = [one, {**two, "chain_seq": 3}, *case.events[2:4], {**three, "chain_seq": 2},
               *case.events[5:]]
    report = verify_custody(case.case_id, case.evidence, swapped, case.ring)
    assert [f.object_id for f in report.findings if f.kind == "changed"] == [
        two["id"], three["id"]]


def test_a_replayed_event(tmp_path: Path) -> None:
    case = custody_case(tmp_path)
    two = case.events[1]
    # The same signed hand-over again under a new id at the same position.
    again = _resign(case, two, id=new_id("x-shieldwall-custody-event"))
    report = verify_custody(case.case_id, case.evidence, [*case.events, again], case.ring)
    assert "replayed" in _kinds(report)
    # A second version of a custody event.
    later = _resign(case, two, modified="2030-01-01T00:00:00.000Z")
    report = verify_custody(case.case_id, case.evidence, [*case.events, later], case.ring)
    assert "replayed" in _kinds(report)
    # An event of another case, signed for it, presented under this one.
    other = custody_case(tmp_path)
    report = verify_custody(case.case_id, case.evidence, [*case.events, other.events[0]],
                            case.ring)
    assert "replayed" in _kinds(report)


def test_an_evidence_record_whose_hash_was_changed(tmp_path: Path) -> None:
    case = custody_case(tmp_path)
    changed = {**case.evidence[0], "sha256": "ef" * 32}
    report = verify_custody(case.case_id, [changed, case.evidence[1]], case.events,
                            case.ring)
    assert "changed" in _kinds(report)
    assert any(f.object_id == changed["id"] and "not what any custody event attested"
               in f.message for f in report.findings)


def test_a_missing_event_and_a_cut_chain(tmp_path: Path) -> None:
    case = custody_case(tmp_path)
    good = verify_custody(case.case_id, case.evidence, case.events, case.ring)
    # The hand-over (#2 of the home node's disk chain), which the laptop's event saw.
    report = verify_custody(case.case_id, case.evidence,
                            [e for i, e in enumerate(case.events) if i != 1], case.ring)
    assert _kinds(report) == {"missing"}
    assert any("#2" in f.message for f in report.findings)
    # The home node's newest disk event: nothing else saw it; the remembered head did.
    cut = [e for i, e in enumerate(case.events) if i != 4]
    report = verify_custody(case.case_id, case.evidence, cut, case.ring,
                            remembered=good.heads)
    assert _kinds(report) == {"missing"}
    assert "verified here before" in report.findings[0].message


# ---- key objects over a real TAXII server ----------------------------------------------


def test_only_a_member_s_nodes_publish_its_keys(backend: str | None, tmp_path: Path) -> None:
    """A member posting a key object in another member's name is refused (so what it
    signs in that member's name stays `unknown-key` there); the member's own is accepted
    and binds its key to it."""
    from taxii2client.v21 import ApiRoot

    from shieldwall.respond.verify import store_keyring
    from shieldwall.store import Store
    from tests.taxii.conftest import add_members, db_url, make_home, start_server

    home = make_home(tmp_path, backend)
    tokens = add_members(home, {"cert-north": "ally", "mallory": "ally"})
    server = start_server(home, "--rate-limit", "0")
    north = node_keys(tmp_path / "north", "cert-north")
    mallory = node_keys(tmp_path / "mallory", "mallory")
    forged = mallory.card() | {"member": "cert-north", "created_by_ref": member_identity_id(
        "cert-north"), "identity_ref": member_identity_id("cert-north")}
    from shieldwall.keys.signing import node_key_id

    forged["id"] = node_key_id("cert-north", mallory.signing_public)
    try:
        def post(member: str, obj: dict[str, Any]) -> str:
            api = ApiRoot(server.api(), user=member, password=tokens[member])
            coll = next(c for c in api.collections if c.alias == "alliance")
            status = coll.add_objects(orjson.dumps({"objects": [obj]}).decode())
            return "ok" if status.successes else status.failures[0]["message"]

        assert "another member" in post("mallory", forged)
        assert post("cert-north", north.card()) == "ok"
    finally:
        server.stop()
    store = Store.open(db_url(home))
    try:
        ring = store_keyring(store)
    finally:
        store.close()
    assert ring.members_of(north.signing_public) == {"cert-north"}
    assert ring.members_of(mallory.signing_public) == set()
