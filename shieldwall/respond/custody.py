"""Chain of custody: every hand-over, copy, analysis or re-verification of an evidence
item is a custody event, hash-chained and signed by the node that recorded it.

A case's custody log is made of chains, one per evidence item and per node that acted on
it (its signing key). Only that node appends to its chain, so a responder's laptop that
works offline for hours never forks a chain the home node is also writing, and a reader
who may see an evidence item (its TLP, `Access`) sees every event of its chains: an
event is marked as its evidence item is.

Each event holds:

- `evidence_hash`: the SHA-256 of the evidence item's version it acted on (canonical
  JSON, `stix.canonical`), so a changed byte of the item is seen;
- `signing_key`, `chain_seq` (1, 2, ...) and `chain_prev`: the SHA-256 of the canonical
  JSON of the chain's previous event, signature included (for the first, of
  `shieldwall-custody:<evidence id>:<signing key>`), so a missing, reordered or replayed
  event breaks the chain;
- `chain_seen`: the heads of the item's other chains the node held when it signed, so
  events of another node that this node saw cannot vanish unnoticed;
- `signature`: Ed25519 over the canonical JSON of every other property, by the node key
  `signing_key` names; that key must be one the event's member (`created_by_ref`)
  published (`keys.signing`).

Everything here is pure; `respond.evidence` stores events, `respond.verify` checks them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shieldwall.keys.signing import NodeKeys
from shieldwall.respond.model import (
    CUSTODY_EVENT,
    MAX_TEXT,
    Marking,
    RespondError,
    new_sdo,
    parse_responder,
)
from shieldwall.stix.canonical import canonical_json
from shieldwall.stix.respond_types import CUSTODY_ACTIONS
from shieldwall.stix.timestamps import format_ts, parse_ts

# What a custody event records (`custody_action`: STIX 2.1 reserves `action`); "collected"
# is an item's first. An item's metadata is not versioned: a version no event attests is
# reported as changed by `verify`.
ACTIONS = CUSTODY_ACTIONS
# Optional properties an action may carry (text of at most MAX_TEXT characters).
DETAILS = ("from_holder", "to_holder", "location", "tool", "result", "observed_sha256",
           "copy_ref", "description")
SIGNATURE = "signature"
_GENESIS = "shieldwall-custody:{evidence}:{key}"


def object_hash(obj: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of an object's canonical JSON: what a chain links and attests."""
    return hashlib.sha256(canonical_json(dict(obj)).encode()).hexdigest()


def signed_bytes(event: Mapping[str, Any]) -> bytes:
    """What the signature covers: the canonical JSON of every property but itself."""
    return canonical_json({k: v for k, v in event.items() if k != SIGNATURE}).encode()


def genesis(evidence_id: str, signing_key: str) -> str:
    """`chain_prev` of a chain's first event: binds the chain to its item and node."""
    text = _GENESIS.format(evidence=evidence_id, key=signing_key)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Head:
    """The last event of one chain: its number and hash."""

    seq: int
    hash: str


def chain_key(event: Mapping[str, Any]) -> tuple[str, str]:
    """The chain an event belongs to: (evidence id, signing key)."""
    return str(event.get("evidence_ref")), str(event.get("signing_key"))


def heads(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Head]:
    """The head of every chain among `events` (the highest `chain_seq` of each)."""
    out: dict[tuple[str, str], Head] = {}
    for e in events:
        seq = e.get("chain_seq")
        if not isinstance(seq, int):
            continue
        key = chain_key(e)
        if key not in out or seq > out[key].seq:
            out[key] = Head(seq, object_hash(e))
    return out


def custody_event(
    *,
    keys: NodeKeys,
    case_id: str,
    evidence: Mapping[str, Any],
    action: str,
    actor: str,
    chain_heads: Mapping[tuple[str, str], Head],
    occurred: str | None = None,
    details: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """A signed custody event by this node (`keys`) about `evidence` (the version acted
    on), appended to this node's chain for it; `chain_heads`: the heads of the item's
    chains as this node holds them (`heads`)."""
    if action not in ACTIONS:
        raise RespondError(f"custody action {action!r}: choose one of {', '.join(ACTIONS)}")
    parse_responder(actor)
    extra = {k: v for k, v in (details or {}).items() if v is not None}
    unknown = set(extra) - set(DETAILS)
    if unknown:
        raise RespondError(f"custody events have no {', '.join(sorted(unknown))}")
    for k, v in extra.items():
        if not isinstance(v, str) or len(v) > MAX_TEXT:
            raise RespondError(f"{k}: text of at most {MAX_TEXT:,} characters")
    evidence_id = str(evidence["id"])
    own = (evidence_id, keys.signing_public)
    mine = chain_heads.get(own)
    seen = sorted(
        ({"signing_key": k, "chain_seq": h.seq, "event_hash": h.hash}
         for (ev, k), h in chain_heads.items() if ev == evidence_id and k != keys.signing_public),
        key=lambda s: str(s["signing_key"]))
    when = occurred
    if when is not None:
        try:
            when = format_ts(parse_ts(when))
        except ValueError as exc:
            raise RespondError(f"time: {exc}") from None
    event = new_sdo(
        CUSTODY_EVENT, keys.member, Marking.of(evidence),
        case_ref=case_id, evidence_ref=evidence_id, custody_action=action, actor=actor,
        **extra,
        evidence_hash=object_hash(evidence),
        signing_key=keys.signing_public,
        chain_seq=(mine.seq + 1) if mine else 1,
        chain_prev=mine.hash if mine else genesis(evidence_id, keys.signing_public),
        chain_seen=seen or None,  # STIX lists are never empty
    )
    event["occurred"] = when or event["created"]
    event[SIGNATURE] = keys.sign(signed_bytes(event))
    return event
