"""The node's signing and kit keys: kept in the home, published bound to the member."""

from __future__ import annotations

import stat
from pathlib import Path

from shieldwall.keys.signing import (
    NODE_KEY_TYPE,
    fingerprint,
    keyring,
    node_key_object,
    node_keys,
    verify_signature,
)
from shieldwall.stix.identity import member_identity_id


def test_keys_are_made_once_private_and_sign(tmp_path: Path) -> None:
    keys = node_keys(tmp_path, "cert-north")
    again = node_keys(tmp_path, "cert-north")
    assert keys.signing_public == again.signing_public
    assert keys.kit_public == again.kit_public
    assert keys.signing_public != keys.kit_public
    for name in ("signing", "kit"):
        mode = (tmp_path / "keys" / f"{name}.key").stat().st_mode
        assert stat.S_IMODE(mode) == 0o600
    sig = keys.sign(b"hello")
    assert verify_signature(keys.signing_public, sig, b"hello")
    assert not verify_signature(keys.signing_public, sig, b"hellO")
    other = node_keys(tmp_path / "other", "cert-north")
    assert not verify_signature(other.signing_public, sig, b"hello")
    assert not verify_signature("not base64!", sig, b"hello")
    assert len(fingerprint(keys.signing_public)) == 16


def test_the_card_binds_the_keys_to_the_member(tmp_path: Path) -> None:
    keys = node_keys(tmp_path, "cert-north")
    card = keys.card()
    assert card["type"] == NODE_KEY_TYPE
    assert card["created_by_ref"] == member_identity_id("cert-north")
    assert keys.card() == card  # the same version every time: a re-publication is a duplicate
    ring = keyring([card])
    assert ring.members_of(keys.signing_public) == {"cert-north"}
    assert ring.kit_keys("cert-north") == {keys.signing_public: keys.kit_public}


def test_key_objects_that_lend_a_key_to_another_member_do_not_count(tmp_path: Path) -> None:
    keys = node_keys(tmp_path, "cert-south")
    card = keys.card()
    forged = [
        {**card, "member": "cert-north"},  # names another member under the derived id
        {**card, "created_by_ref": member_identity_id("cert-north")},
        {**card, "identity_ref": member_identity_id("cert-north")},
        {**node_key_object("cert-north", keys.signing_public, keys.kit_public),
         "created_by_ref": member_identity_id("cert-south")},
        {**card, "revoked": True},
        {**card, "signing_key": 7},
    ]
    ring = keyring(forged)
    assert ring.signing == {}
    assert ring.kit_keys("cert-north") == {}
