"""Evidence items: what was collected, its SHA-256 and size, where it is kept, who
collected it and how.

The files themselves stay where the member keeps them (`kept_at` says where: an evidence
locker, a share, a disk's label); only this metadata is stored and federated, marked at
the item's own TLP. Its custody events (`respond.custody`) attest each version of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from shieldwall.keys.signing import NodeKeys
from shieldwall.respond.cases import LOCAL, Case, add_to_case, ensure_published, item_marking
from shieldwall.respond.custody import custody_event, heads
from shieldwall.respond.model import (
    EVIDENCE,
    MAX_TEXT,
    Marking,
    RespondError,
    new_sdo,
    parse_responder,
)
from shieldwall.stix.markings import TLP
from shieldwall.stix.timestamps import format_ts, parse_ts
from shieldwall.store import Access, Provenance, Store

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def hash_file(path: Path) -> tuple[str, int]:
    """(SHA-256 hex, size in bytes) of a file, read in 1 MiB pieces (any size, bounded
    memory): what `evidence add --file` records and `custody reverify` compares."""
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise RespondError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return digest.hexdigest(), size


def _text(value: str | None, what: str, *, required: bool = False) -> str | None:
    value = (value or "").strip()
    if len(value) > MAX_TEXT:
        raise RespondError(f"{what}: at most {MAX_TEXT:,} characters")
    if required and not value:
        raise RespondError(f"an evidence item needs {what}")
    return value or None


def evidence_item(
    *,
    creator: str,
    case_id: str,
    name: str,
    sha256: str,
    size: int,
    kept_at: str,
    collected_by: str,
    collected_how: str,
    marking: Marking,
    collected: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A new evidence item of the case, created by member `creator`; `collected_by` is a
    responder (`MEMBER:PERSON`)."""
    digest = sha256.strip().lower()
    if not _SHA256.match(digest):
        raise RespondError(f"sha256 {sha256!r}: give the 64 hex digits of the file's SHA-256")
    if not isinstance(size, int) or size < 0:
        raise RespondError(f"size {size!r}: give the file's size in bytes")
    parse_responder(collected_by)
    when = None
    if collected:
        try:
            when = format_ts(parse_ts(collected))
        except ValueError as exc:
            raise RespondError(f"collected: {exc}") from None
    item = new_sdo(
        EVIDENCE, creator, marking, case_ref=case_id,
        name=_text(name, "a name", required=True), sha256=digest, size=size,
        kept_at=_text(kept_at, "where it is kept (--kept-at)", required=True),
        collected_by=collected_by,
        collected_how=_text(collected_how, "how it was collected (--how)", required=True),
        description=_text(description, "description"),
    )
    item["collected"] = when or item["created"]
    return item


# ---- recording, in the store ---------------------------------------------------------------


def publish_keys(store: Store, keys: NodeKeys) -> None:
    """Store this node's key object (TLP:CLEAR) so that its peers, which receive it like
    any object of its member, can verify what it signs (`keys.signing`)."""
    card = keys.card()
    if store.get(card["id"]) is None:
        ensure_published(store, keys.member)
        store.put(card, Provenance(keys.member, LOCAL))


@contextlib.contextmanager
def chain_lock(home: Path) -> Iterator[None]:
    """One appender at a time on this node: reading a chain's head and storing the event
    that follows it are one step, so two processes never number two events alike."""
    folder = home / "keys"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (folder / "custody.lock").open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def record_evidence(store: Store, home: Path, keys: NodeKeys, case: Case, *, actor: str,
                    tlp: TLP | None = None, **fields: Any) -> tuple[dict[str, Any],
                                                                    dict[str, Any]]:
    """A new evidence item of `case` (`evidence_item` fields) and its "collected" custody
    event by this node, stored with their links to the case."""
    item = evidence_item(creator=keys.member, case_id=case.id,
                         marking=item_marking(case, tlp), **fields)
    with chain_lock(home):
        publish_keys(store, keys)
        event = custody_event(keys=keys, case_id=case.id, evidence=item, action="collected",
                              actor=actor, chain_heads={})
        add_to_case(store, keys.member, case.id, item, event)
    return item, event


def record_custody(store: Store, home: Path, keys: NodeKeys, case_id: str, evidence_id: str,
                   access: Access, *, action: str, actor: str, occurred: str | None = None,
                   details: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """A custody event by this node about an evidence item of the case it may read,
    appended to its chain for that item."""
    from shieldwall.respond.verify import case_custody

    with chain_lock(home):
        evidence, events = case_custody(store, case_id, access)
        item = evidence.get(evidence_id)
        if item is None:
            raise RespondError(f"no evidence {evidence_id} of case {case_id} this node may read")
        publish_keys(store, keys)
        event = custody_event(
            keys=keys, case_id=case_id, evidence=item[-1], action=action, actor=actor,
            chain_heads=heads(e for e in events if e.get("evidence_ref") == evidence_id),
            occurred=occurred, details=details)
        add_to_case(store, keys.member, case_id, event)
    return event
