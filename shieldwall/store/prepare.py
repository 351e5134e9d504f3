"""Turning a STIX object into the row the store writes, with no database in sight.

Kept apart from the Store so that an importer can prepare rows in a worker process
(canonical JSON, timestamps, TLP, audience: the CPU-bound part of an import) while
the main process writes the previous batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from shieldwall.stix.canonical import canonical_json
from shieldwall.stix.ids import valid_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, resolve_tlp
from shieldwall.stix.timestamps import parse_ts

# How far in the future a `modified` may lie before it is refused: a version stamped
# years ahead would stay "latest" forever and hide every real update after it.
FUTURE_TOLERANCE_US = 15 * 60 * 1_000_000


class PreparedVersion(NamedTuple):
    id: str
    version_us: int
    version: str  # the timestamp as the producer wrote it, for reports
    text: str  # canonical JSON
    type: str
    spec_version: str
    revoked: bool
    tlp: int
    created_by_ref: str | None
    name: str | None
    audience: tuple[str, ...]


class Unprepared(NamedTuple):
    id: str
    version: str
    reason: str


def prepare(
    obj: Any,
    now_us: int,
    default_tlp: TLP = TLP.AMBER,
    overrides: Mapping[str, TLP] | None = None,
) -> PreparedVersion | Unprepared:
    oid = obj.get("id") if isinstance(obj, dict) else None
    if not valid_id(oid) or not isinstance(obj.get("type"), str):
        return Unprepared(str(oid), "", "missing or malformed 'id' or 'type'")
    ts = obj.get("modified") or obj.get("created")
    try:
        version_us = parse_ts(ts) if ts else 0
    except ValueError as exc:
        return Unprepared(oid, str(ts), str(exc))
    if version_us > now_us + FUTURE_TOLERANCE_US:
        return Unprepared(oid, str(ts), "version timestamp is in the future")
    names = obj.get(AUDIENCE_PROPERTY)
    audience = tuple(dict.fromkeys(str(n) for n in names)) if isinstance(names, list) else ()
    name = obj.get("name") or obj.get("value")
    return PreparedVersion(
        oid, version_us, ts or "", canonical_json(obj), obj["type"],
        str(obj.get("spec_version", "2.1")), bool(obj.get("revoked", False)),
        int(resolve_tlp(obj, default_tlp, overrides)), obj.get("created_by_ref"),
        str(name)[:500] if name is not None else None, audience,
    )
