"""Turning a STIX object into the row the store writes, with no database in sight.

Kept apart from the Store so that an importer can prepare rows in a worker process
(canonical JSON, timestamps, TLP, audience: the CPU-bound part of an import) while
the main process writes the previous batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import orjson

from shieldwall.stix.canonical import canonical_json
from shieldwall.stix.ids import valid_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, resolve_tlp
from shieldwall.stix.timestamps import parse_ts
from shieldwall.store.types import STATUS_PROPERTY

# How far in the future a `modified` may lie before it is refused: a version stamped
# years ahead would stay "latest" forever and hide every real update after it.
FUTURE_TOLERANCE_US = 15 * 60 * 1_000_000


class PreparedVersion(NamedTuple):
    """One row to write. The store reads it by position too, so a plain tuple in this
    field order is accepted wherever a PreparedVersion is (what crosses between the
    import worker and the writer: unpickling named tuples cost ~4 µs a row, plain ones 1)."""

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
    status: str | None  # the type's STATUS_PROPERTY, when it has one


def _status(obj: Mapping[str, Any], stix_type: str) -> str | None:
    prop = STATUS_PROPERTY.get(stix_type)
    value = obj.get(prop) if prop else None
    return value[:100] if isinstance(value, str) else None


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
        str(name)[:500] if name is not None else None, audience, _status(obj, obj["type"]),
    )


def prepare_many(
    objs: Iterable[Any],
    now_us: int,
    default_tlp: TLP = TLP.AMBER,
    overrides: Mapping[str, TLP] | None = None,
) -> list[PreparedVersion | Unprepared]:
    """`prepare` for a batch, with the same result per object, cheaper per object.

    Bulk feeds mark thousands of objects with the same few `object_marking_refs`, so
    the TLP resolved for a tuple of refs is remembered for the batch (objects with
    granular markings, and marking definitions, resolve in full every time).
    """
    out: list[PreparedVersion | Unprepared] = []
    tlp_of: dict[tuple[Any, ...], int] = {}
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS
    for obj in objs:
        if type(obj) is not dict:
            out.append(prepare(obj, now_us, default_tlp, overrides))
            continue
        get = obj.get
        oid, stix_type = get("id"), get("type")
        if not valid_id(oid) or not isinstance(stix_type, str):
            out.append(Unprepared(str(oid), "", "missing or malformed 'id' or 'type'"))
            continue
        ts = get("modified") or get("created")
        try:
            version_us = parse_ts(ts) if ts else 0
        except ValueError as exc:
            out.append(Unprepared(oid, str(ts), str(exc)))
            continue
        if version_us > now_us + FUTURE_TOLERANCE_US:
            out.append(Unprepared(oid, str(ts), "version timestamp is in the future"))
            continue
        refs = get("object_marking_refs")
        key = tuple(refs) if type(refs) is list else None
        if stix_type == "marking-definition" or "granular_markings" in obj \
                or (refs is not None and key is None):
            tlp = int(resolve_tlp(obj, default_tlp, overrides))
        else:
            key = key or ()
            try:
                tlp = tlp_of.get(key, -1)
            except TypeError:  # an unhashable ref (an unvalidated peer's object)
                tlp = int(resolve_tlp(obj, default_tlp, overrides))
            else:
                if tlp < 0:
                    tlp = tlp_of[key] = int(resolve_tlp(obj, default_tlp, overrides))
        names = get(AUDIENCE_PROPERTY)
        name = get("name") or get("value")
        out.append(PreparedVersion(
            oid, version_us, ts or "", dumps(obj, option=sort_keys).decode(), stix_type,
            str(get("spec_version", "2.1")), bool(get("revoked", False)), tlp,
            get("created_by_ref"), str(name)[:500] if name is not None else None,
            tuple(dict.fromkeys(str(n) for n in names)) if type(names) is list else (),
            _status(obj, stix_type) if stix_type in STATUS_PROPERTY else None,
        ))
    return out
