"""Kits that must not merge: too large, damaged, truncated, tampered, made for another
node, re-addressed, or signed by a key of someone else. One line each, nothing stored."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shieldwall.keys.signing import KeyRing, NodeKeys, b64, keyring, node_keys
from shieldwall.respond.kit import MAGIC, KitError, NodeRef, open_kit, payload, seal, write_kit
from shieldwall.stix.ids import new_id
from tests.respond.kit_nodes import make_node, sw

Parties = tuple[NodeKeys, NodeKeys, NodeKeys, KeyRing]


def _payload(sender: NodeKeys, to: NodeKeys, objects: list[dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    return payload("return", new_id("incident"), sender,
                   NodeRef(to.member, to.signing_public, to.kit_public),
                   objects if objects is not None else [sender.card()])


@pytest.fixture
def parties(tmp_path: Path) -> Parties:
    laptop = node_keys(tmp_path / "laptop", "cert-north")
    home = node_keys(tmp_path / "home", "cert-south")
    other = node_keys(tmp_path / "other", "cert-east")
    return laptop, home, other, keyring([laptop.card(), home.card(), other.card()])


def _kit(tmp_path: Path, data: bytes, name: str = "k.swk") -> Path:
    path = tmp_path / name
    write_kit(path, data)
    return path


def test_a_good_kit_opens(tmp_path: Path, parties: Parties) -> None:
    laptop, home, _, ring = parties
    kit = open_kit(_kit(tmp_path, seal(_payload(laptop, home), laptop, home.kit_public)),
                   home, ring)
    assert kit.sender == NodeRef("cert-north", laptop.signing_public, laptop.kit_public)
    assert kit.objects == [laptop.card()]


def test_every_flipped_byte_is_refused(tmp_path: Path, parties: Parties) -> None:
    laptop, home, _, ring = parties
    data = seal(_payload(laptop, home), laptop, home.kit_public)
    for i in range(0, len(data), 7):
        bad = bytearray(data)
        bad[i] ^= 0x01
        with pytest.raises(KitError) as err:
            open_kit(_kit(tmp_path, bytes(bad)), home, ring)
        assert "\n" not in str(err.value)
        assert "nothing merged" in str(err.value) or "header" in str(err.value) \
            or "not a Shieldwall kit" in str(err.value)


def test_truncated_and_padded(tmp_path: Path, parties: Parties) -> None:
    laptop, home, _, ring = parties
    data = seal(_payload(laptop, home), laptop, home.kit_public)
    with pytest.raises(KitError, match="truncated"):
        open_kit(_kit(tmp_path, data[:-10]), home, ring)
    with pytest.raises(KitError, match="more than its header says"):
        open_kit(_kit(tmp_path, data + b"x"), home, ring)
    with pytest.raises(KitError, match="damaged kit header"):
        open_kit(_kit(tmp_path, data[:8]), home, ring)


def test_a_kit_for_another_node_or_re_addressed(tmp_path: Path, parties: Parties) -> None:
    laptop, home, other, ring = parties
    data = seal(_payload(laptop, home), laptop, home.kit_public)
    with pytest.raises(KitError, match="encrypted to another node"):
        open_kit(_kit(tmp_path, data), other, ring)
    # Someone who can read the payload (the home node) re-encrypts it, signature and all,
    # to another node: the signature covers the original header, so it fails.
    head_end = data.index(b"\n", len(MAGIC)) + 1
    sealed = data[head_end:]
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    from shieldwall.keys.signing import unb64
    from shieldwall.respond.kit import _key

    head = orjson.loads(data[len(MAGIC):head_end - 1])
    eph = unb64(head["ephemeral"])
    plain = ChaCha20Poly1305(_key(home.kit.exchange(X25519PublicKey.from_public_bytes(eph)),
                                  eph, unb64(home.kit_public))).decrypt(
        b"\0" * 12, sealed, data[:head_end])
    inner = orjson.loads(zlib.decompress(plain[64:]))
    inner["to"] = {"member": other.member, "signing_key": other.signing_public,
                     "kit_key": other.kit_public}
    new_eph = X25519PrivateKey.generate()
    new_pub = new_eph.public_key().public_bytes_raw()
    body = zlib.compress(orjson.dumps(inner, option=orjson.OPT_SORT_KEYS))
    new_head = orjson.dumps({"format": "shieldwall-kit", "version": 1,
                             "to": other.kit_public, "ephemeral": b64(new_pub),
                             "length": 64 + len(body) + 16}, option=orjson.OPT_SORT_KEYS)
    aad = MAGIC + new_head + b"\n"
    key = _key(new_eph.exchange(X25519PublicKey.from_public_bytes(unb64(other.kit_public))),
               new_pub, unb64(other.kit_public))
    forwarded = aad + ChaCha20Poly1305(key).encrypt(b"\0" * 12, plain[:64] + body, aad)
    with pytest.raises(KitError, match="signature does not verify"):
        open_kit(_kit(tmp_path, forwarded), other, ring)


def test_a_kit_signed_by_a_key_its_member_never_published(tmp_path: Path, parties: Parties
                                                           ) -> None:
    _, home, other, ring = parties
    # cert-east's node claims to be cert-north's.
    forged = _payload(other, home)
    forged["from"]["member"] = "cert-north"
    with pytest.raises(KitError, match="a key this node never received"):
        open_kit(_kit(tmp_path, seal(forged, other, home.kit_public)), home, ring)
    # A node nobody knows: refused unless the operator confirmed its fingerprint.
    stranger = node_keys(tmp_path / "stranger", "cert-west")
    data = seal(_payload(stranger, home), stranger, home.kit_public)
    with pytest.raises(KitError, match="--trust-signer"):
        open_kit(_kit(tmp_path, data), home, ring)
    from shieldwall.keys.signing import fingerprint

    assert open_kit(_kit(tmp_path, data), home, ring,
                    trust_signer=fingerprint(stranger.signing_public)).sender.member == "cert-west"


def test_size_limits_come_before_decryption(tmp_path: Path, parties: Parties) -> None:
    laptop, home, _, ring = parties
    data = seal(_payload(laptop, home), laptop, home.kit_public)
    with pytest.raises(KitError, match="refused before decrypting"):
        open_kit(_kit(tmp_path, data), home, ring, max_bytes=len(data) - 1)
    # A payload that inflates beyond the limit (a zip bomb) stops at the limit.
    bomb = _payload(laptop, home, objects=[{"type": "note", "content": "a" * 5_000_000}])
    small = seal(bomb, laptop, home.kit_public)
    assert len(small) < 50_000
    with pytest.raises(KitError, match="expands beyond"):
        open_kit(_kit(tmp_path, small), home, ring, max_bytes=100_000)


def test_the_command_says_one_line_and_merges_nothing(tmp_path: Path) -> None:
    south = make_node(tmp_path / "south", "cert-south")
    laptop_home = make_node(tmp_path / "laptop", "cert-north")
    laptop = node_keys(laptop_home, "cert-north")
    home = node_keys(south, "cert-south")
    objs = [laptop.card()]
    good = seal(_payload(laptop, home, objs), laptop, home.kit_public)
    bad = bytearray(good)
    bad[-3] ^= 0xFF
    for data, expect in ((bytes(bad), "changed after it was made"),
                         (good[:-1], "truncated")):
        path = _kit(tmp_path, data)
        r = sw(south, "case", "checkin", str(path), "--trust-signer", "0" * 16)
        assert r.code == 2 and expect in r.err, r.err
        assert len(r.err.strip().splitlines()) == 1
    r = sw(south, "case", "checkin", str(_kit(tmp_path, good)), "--max-bytes", "100")
    assert r.code == 2 and "refused before decrypting" in r.err
    r = sw(south, "case", "key", "show")
    assert laptop.signing_public not in r.out
    from shieldwall.node import Node
    from shieldwall.store import Query

    node = Node.load(south)
    try:
        assert node.store.count(Query(types=["x-shieldwall-node-key"])) == 0
    finally:
        node.close()
