"""Evidence items: what was collected, its SHA-256 and size, where it is kept, who
collected it and how.

The files themselves stay where the member keeps them (`kept_at` says where: an evidence
locker, a share, a disk's label); only this metadata is stored and federated, marked at
the item's own TLP. Its custody events (`respond.custody`) attest each version of it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from shieldwall.respond.model import (
    EVIDENCE,
    MAX_TEXT,
    Marking,
    RespondError,
    new_sdo,
    parse_responder,
)
from shieldwall.stix.timestamps import format_ts, parse_ts

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
