"""Offline kits: a case slice packed for one node, signed by the node that made it and
encrypted to the node that opens it (`case checkout`, `case sync`, `case checkin`).

A kit file (`.swk`) is:

    SWK1\\n
    {"format":"shieldwall-kit","version":1,"to":<X25519 key>,"ephemeral":<X25519 key>,
     "length":<bytes that follow>}\\n
    ChaCha20-Poly1305 ciphertext

The key is HKDF-SHA256 over the X25519 agreement of a fresh ephemeral key with the
recipient node's kit key (`keys.signing`), with both public keys in its info (the ECDH +
HKDF + AEAD shape of HPKE's base mode, from `cryptography`'s primitives). The AEAD's
associated data is the two header lines, so no byte of the file changes unnoticed. The
plaintext is the sender's Ed25519 signature (64 bytes) over the header lines and the
payload, then the zlib-compressed payload: canonical JSON naming the kind of kit, the case,
the sender (member and signing key), the recipient (member and kit key) and the objects.
Signing the header binds the kit to its recipient: re-encrypting it to another node breaks
the signature.

Opening checks, before anything is stored, and stops at the first failure with one line:
the file's size against the limit (before reading it), the header, the recipient (this
node's kit key), the length (a truncated kit), the AEAD (a tampered kit), the payload's
expanded size, and the signature with a key the sender's member published (or the
fingerprint the operator confirmed).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shieldwall.keys.signing import (
    NODE_KEY_TYPE,
    KeyRing,
    NodeKeys,
    b64,
    fingerprint,
    unb64,
    verify_signature,
)
from shieldwall.respond.model import (
    CASE_LINK,
    CUSTODY_EVENT,
    EVIDENCE,
    RespondError,
    published_objects,
)
from shieldwall.stix.canonical import canonical_json
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import format_ts, now_us
from shieldwall.stix.validate import object_error
from shieldwall.store import Access, Provenance, PutResult, Query, Store

MAGIC = b"SWK1\n"
FORMAT = "shieldwall-kit"
KINDS = ("checkout", "return")
# A kit larger than this is refused before any of it is decrypted. 24 h of a team's work
# (1,743 objects in bench/respond_bench.py) packs into ~100 kB.
MAX_KIT_BYTES = 256 * 1024 * 1024
MAX_EXPANSION = 20  # the payload may expand to at most 20x the kit (JSON compresses ~5-10x)
MAX_OBJECTS = 1_000_000
_MAX_HEADER = 4096
_INFO = b"shieldwall kit v1"
_SIG = 64
CHANNEL = "kit"


class KitError(RespondError):
    """A kit that cannot be made or opened; nothing of it was stored."""


@dataclass(frozen=True)
class NodeRef:
    """A node a kit is from or for: its member and the keys it published."""

    member: str
    signing_key: str
    kit_key: str


@dataclass
class OpenedKit:
    kind: str
    case_id: str
    sender: NodeRef
    objects: list[dict[str, Any]]
    created: str


@dataclass
class MergeResult:
    put: PutResult = field(default_factory=PutResult)
    refused: list[tuple[str, str]] = field(default_factory=list)


# ---- the file --------------------------------------------------------------------------


def _key(shared: bytes, eph: bytes, to: bytes) -> bytes:
    """The kit's AEAD key. Every kit has a fresh ephemeral key, so every kit has its own
    AEAD key, and the one message sealed under it may use a fixed nonce."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=_INFO + eph + to).derive(shared)


def seal(payload: Mapping[str, Any], keys: NodeKeys, to_kit_key: str) -> bytes:
    """The kit file's bytes for `payload`, signed by this node, encrypted to the node
    whose kit key is `to_kit_key`."""
    to = unb64(to_kit_key)
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes_raw()
    shared = eph.exchange(X25519PublicKey.from_public_bytes(to))
    body = canonical_json(dict(payload)).encode()
    packed = zlib.compress(body, 6)
    length = _SIG + len(packed) + 16  # the signature, the payload, the AEAD's tag
    head = orjson.dumps({"format": FORMAT, "version": 1, "to": to_kit_key,
                         "ephemeral": b64(eph_pub), "length": length},
                        option=orjson.OPT_SORT_KEYS)
    aad = MAGIC + head + b"\n"
    sig = keys.signing.sign(aad + body)
    sealed = ChaCha20Poly1305(_key(shared, eph_pub, to)).encrypt(b"\0" * 12, sig + packed, aad)
    assert len(sealed) == length
    return aad + sealed


def write_kit(path: Path, data: bytes) -> None:
    """Written whole or not at all (a private temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def open_kit(path: Path, keys: NodeKeys, ring: KeyRing, *, trust_signer: str | None = None,
             max_bytes: int = MAX_KIT_BYTES) -> OpenedKit:
    """Read, check, decrypt and verify a kit; KitError (one line) at the first failure."""
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise KitError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if size > max_bytes:
        raise KitError(f"{name}: {size:,} bytes, more than the {max_bytes:,} a kit may have; "
                       "refused before decrypting it")
    with path.open("rb") as f:
        data = f.read(max_bytes + 1)
    if not data.startswith(MAGIC):
        raise KitError(f"{name}: not a Shieldwall kit (it does not start with SWK1)")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    if end < 0:
        raise KitError(f"{name}: damaged kit header")
    try:
        head = orjson.loads(data[len(MAGIC):end])
        to, eph, length = str(head["to"]), unb64(str(head["ephemeral"])), int(head["length"])
        if head.get("format") != FORMAT or head.get("version") != 1 or len(eph) != 32:
            raise ValueError("unknown format")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise KitError(f"{name}: damaged kit header") from None
    if to != keys.kit_public:
        raise KitError(f"{name}: encrypted to another node (kit key {fingerprint(to)}), not "
                       f"this one ({fingerprint(keys.kit_public)}); nothing merged")
    aad, sealed = data[:end + 1], data[end + 1:]
    if len(sealed) < length:
        raise KitError(f"{name}: truncated ({len(sealed):,} of {length:,} bytes after the "
                       "header); nothing merged")
    if len(sealed) > length:
        raise KitError(f"{name}: {len(sealed) - length:,} bytes more than its header "
                       "says; nothing merged")
    shared = keys.kit.exchange(X25519PublicKey.from_public_bytes(eph))
    try:
        plain = ChaCha20Poly1305(_key(shared, eph, unb64(to))).decrypt(b"\0" * 12, sealed, aad)
    except InvalidTag:
        raise KitError(f"{name}: changed after it was made (it does not authenticate); "
                       "nothing merged") from None
    sig, packed = plain[:_SIG], plain[_SIG:]
    inflate = zlib.decompressobj()
    try:
        body = inflate.decompress(packed, max_bytes * MAX_EXPANSION)
    except zlib.error:
        raise KitError(f"{name}: damaged payload; nothing merged") from None
    if inflate.unconsumed_tail or not inflate.eof:
        raise KitError(f"{name}: its payload expands beyond {MAX_EXPANSION}x the kit "
                       "limit; nothing merged")
    try:
        payload = orjson.loads(body)
        sender = NodeRef(str(payload["from"]["member"]), str(payload["from"]["signing_key"]),
                           str(payload["from"]["kit_key"]))
        kind, case_id, objects = payload["kind"], str(payload["case"]), payload["objects"]
        if kind not in KINDS or not isinstance(objects, list) or len(objects) > MAX_OBJECTS \
                or payload["to"]["kit_key"] != keys.kit_public:
            raise ValueError
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise KitError(f"{name}: damaged payload; nothing merged") from None
    if not verify_signature(sender.signing_key, b64(sig), aad + body):
        raise KitError(f"{name}: its signature does not verify with the key it names; "
                       "nothing merged")
    fpr = fingerprint(sender.signing_key)
    if sender.member not in ring.members_of(sender.signing_key) and trust_signer != fpr:
        raise KitError(f"{name}: signed by node {fpr} of {sender.member}, a key this node "
                       "never received; confirm the fingerprint with that node's operator "
                       f"('case key show') and run again with --trust-signer {fpr}")
    return OpenedKit(kind, case_id, sender, [o for o in objects if isinstance(o, dict)],
                     str(payload.get("created", "")))


# ---- packing a case slice ----------------------------------------------------------------


def _all_versions(store: Store, ids: Iterable[str], access: Access | None
                  ) -> list[dict[str, Any]]:
    wanted = sorted(set(ids))
    out: list[dict[str, Any]] = []
    for i in range(0, len(wanted), 500):
        q = Query(ids=wanted[i:i + 500], versions="all", access=access)
        out += [orjson.loads(r.json) for r in store.query(q).rows if r.tlp < TLP.RED]
    return out


def case_slice(store: Store, case_id: str, access: Access, *,
               created_by: str | None = None) -> list[dict[str, Any]]:
    """Every version `access` admits of the case (the incident), the items linked to it
    and their links, the evidence its custody events are about, and the node keys that
    signed them; TLP:RED never (it does not leave its node). `created_by`: only objects
    that member created (a kit back holds the responder's own work, nothing else)."""
    links = [orjson.loads(r.json) for r in store.linked([case_id], access)]
    ids = {case_id}
    for rel in links:
        if rel.get("target_ref") == case_id and rel.get("relationship_type") == CASE_LINK:
            ids |= {rel["id"], str(rel.get("source_ref"))}
    objs = _all_versions(store, ids, access)
    more = {str(o.get("evidence_ref")) for o in objs if o.get("type") == CUSTODY_EVENT} - ids
    objs += _all_versions(store, (m for m in more if m.startswith(EVIDENCE)), access)
    signers = {o.get("signing_key") for o in objs if o.get("type") == CUSTODY_EVENT}
    objs += [r.obj() for r in store.iter_query(Query(types=[NODE_KEY_TYPE], access=access))
             if r.obj().get("signing_key") in signers]
    if created_by is not None:
        mine = member_identity_id(created_by)
        objs = [o for o in objs if o.get("created_by_ref") == mine]
    return objs


def payload(kind: str, case_id: str, keys: NodeKeys, to: NodeRef,
            objects: list[dict[str, Any]]) -> dict[str, Any]:
    """What a kit carries, before `seal`: its kind, case, sender, recipient and objects."""
    return {
        "kind": kind, "case": case_id, "created": format_ts(now_us()),
        "from": {"member": keys.member, "signing_key": keys.signing_public,
                 "kit_key": keys.kit_public},
        "to": {"member": to.member, "signing_key": to.signing_key, "kit_key": to.kit_key},
        "objects": objects,
    }


def pack(store: Store, keys: NodeKeys, case_id: str, access: Access, to: NodeRef, *,
         kind: str, created_by: str | None = None) -> tuple[bytes, int]:
    """A kit of the case slice `access` admits (the recipient member's), for `to`."""
    objs = case_slice(store, case_id, access, created_by=created_by)
    if not objs:
        raise KitError(f"nothing of case {case_id} to pack for {to.member}")
    objs += [keys.card(), *published_objects()]
    objs = list({(o["id"], o.get("modified") or o.get("created")): o for o in objs}.values())
    return seal(payload(kind, case_id, keys, to, objs), keys, to.kit_key), len(objs)


# ---- merging -----------------------------------------------------------------------------

# Judges a batch of objects a kit delivers: a refusal (or None) for each, in order. The
# caller builds it from the policy rooms (respond sits below them in the house).
Judge = Callable[[Sequence[dict[str, Any]]], list[str | None]]


def merge(store: Store, kit: OpenedKit, judge: Judge, *, batch_size: int = 1_000
          ) -> MergeResult:
    """Store what the kit holds that `judge` and validation accept, in batches each
    atomic, as delivered by the kit's sender. Idempotent: every object keeps its id and
    version, so merging the same kit (or an older one) again adds nothing, and a merge
    killed midway and run again completes it, without a duplicate."""
    result = MergeResult()
    objs = kit.objects
    for i in range(0, len(objs), batch_size):
        batch = objs[i:i + batch_size]
        accepted = []
        for obj, why in zip(batch, judge(batch), strict=True):
            why = why or object_error(obj)
            if why:
                result.refused.append((str(obj.get("id")), why))
            else:
                accepted.append(obj)
        if accepted:
            result.put.merge(store.put_many(accepted, Provenance(kit.sender.member, CHANNEL),
                                            batch_size=batch_size))
    return result
