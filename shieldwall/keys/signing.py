"""The node's signing key (Ed25519) and kit key (X25519), and how peers learn them.

Both private keys are 32-byte seeds kept in the home like every other node secret
(`keys/home.py`: `<home>/keys/signing.key` and `<home>/keys/kit.key`, mode 0600, made
once, the same for every process of the node). The node signs custody events and kits
with the first, and opens kits encrypted to it with the second.

A node publishes its two public keys as an `x-shieldwall-node-key` object (a new SDO of
Shieldwall's extension-definition, `stix.respond_types`) that speaks for its member:
`created_by_ref` is the member's identity, and its id is derived from the member and the
signing key. Only the member's own nodes may write objects whose
`created_by_ref` names that member (`policy.write_refusal`, federation's arrival rules),
so a key object held here for member M came from one of M's nodes, or from a peer
trusted to relay for M. A member may run several nodes (its home node and responders'
laptops): each publishes its own key object, and all of them speak for the member.

What a verifier cannot check: a signature by a key it never received (no key object for
that member reached it yet); it says so rather than calling the signature good or bad.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shieldwall.keys.home import node_key
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.stix.respond_types import NODE_KEY, SHIELDWALL_EXTENSION

NODE_KEY_TYPE = NODE_KEY
# Key objects are versioned by their member only to revoke them; the first version has a
# fixed stamp, so every publication of the same key is the same version (a duplicate).
_PUBLISHED = "2020-01-01T00:00:00.000Z"


def b64(data: bytes) -> str:
    """URL-safe base64 without padding: how keys and signatures appear in STIX objects."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    """The bytes of `b64` text; ValueError for anything else, including another spelling
    of the same bytes (unused low bits set): a signature has exactly one text form, so a
    changed character is always a changed signature."""
    if not isinstance(text, str) or len(text) > 4096:
        raise ValueError("not base64 text")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not base64 text ({exc})") from None
    if b64(data) != text:
        raise ValueError("not the canonical base64 form")
    return data


def fingerprint(public_key: str) -> str:
    """A short, stable name for a public key (first 16 hex of its SHA-256) for messages."""
    return hashlib.sha256(public_key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class NodeKeys:
    """This node's private keys and the member it speaks for."""

    member: str
    signing: Ed25519PrivateKey
    kit: X25519PrivateKey

    @property
    def signing_public(self) -> str:
        return b64(self.signing.public_key().public_bytes_raw())

    @property
    def kit_public(self) -> str:
        return b64(self.kit.public_key().public_bytes_raw())

    def sign(self, data: bytes) -> str:
        return b64(self.signing.sign(data))

    def card(self) -> dict[str, Any]:
        """The key object this node publishes (see the module docstring)."""
        return node_key_object(self.member, self.signing_public, self.kit_public)


def node_keys(home: Path, member: str) -> NodeKeys:
    """The node's keys, made on first use (every process of the node reads the same)."""
    return NodeKeys(
        member=member,
        signing=Ed25519PrivateKey.from_private_bytes(node_key(home, "signing")),
        kit=X25519PrivateKey.from_private_bytes(node_key(home, "kit")),
    )


def node_key_id(member: str, signing_public: str) -> str:
    return deterministic_id(NODE_KEY_TYPE, f"{member}:{signing_public}")


def node_key_object(member: str, signing_public: str, kit_public: str) -> dict[str, Any]:
    ident = member_identity_id(member)
    return {
        "type": NODE_KEY_TYPE,
        "spec_version": "2.1",
        "id": node_key_id(member, signing_public),
        "created": _PUBLISHED,
        "modified": _PUBLISHED,
        "created_by_ref": ident,
        "identity_ref": ident,
        "member": member,
        "signing_key": signing_public,
        "kit_key": kit_public,
        "object_marking_refs": [tlp_marking_ref(TLP.CLEAR)],
        "extensions": {SHIELDWALL_EXTENSION: {"extension_type": "new-sdo"}},
    }


def verify_signature(public_key: str, signature: str, data: bytes) -> bool:
    """Does `signature` (b64) over `data` verify with the Ed25519 key `public_key` (b64)?"""
    try:
        key = Ed25519PublicKey.from_public_bytes(unb64(public_key))
        key.verify(unb64(signature), data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


@dataclass
class KeyRing:
    """Which member published which keys, from the key objects a node holds.

    A key object counts only when it is well formed and bound: its `created_by_ref` and
    `identity_ref` are the identity of the member it names, and its id is the one derived
    from that member and its signing key (so an object cannot lend a key to a member by
    naming it under another id). Revoked key objects do not count.
    """

    signing: dict[str, set[str]] = field(default_factory=dict)  # signing key -> members
    kit: dict[str, dict[str, str]] = field(default_factory=dict)  # member -> signing -> kit

    def add(self, obj: Mapping[str, Any]) -> bool:
        member, sign, kit = obj.get("member"), obj.get("signing_key"), obj.get("kit_key")
        if not (isinstance(member, str) and isinstance(sign, str) and isinstance(kit, str)):
            return False
        ident = member_identity_id(member)
        if (obj.get("type") != NODE_KEY_TYPE or obj.get("revoked") is True
                or obj.get("created_by_ref") != ident or obj.get("identity_ref") != ident
                or obj.get("id") != node_key_id(member, sign)):
            return False
        self.signing.setdefault(sign, set()).add(member)
        self.kit.setdefault(member, {})[sign] = kit
        return True

    def members_of(self, signing_public: str) -> set[str]:
        return self.signing.get(signing_public, set())

    def kit_keys(self, member: str) -> dict[str, str]:
        """The kit keys of `member`'s nodes, by their signing key."""
        return self.kit.get(member, {})


def keyring(objs: Iterable[Mapping[str, Any]]) -> KeyRing:
    ring = KeyRing()
    for obj in objs:
        ring.add(obj)
    return ring
