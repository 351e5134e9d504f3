"""Stored objects in the shape the dashboard reads them.

Objects come into the store by several paths (TAXII, federation, import, the node's own
rooms), and some may be in it from before validation was what it is now. No page may fail
on one of them: a GREEN sighting whose `count` is text used to drop the connection of the
overview for every member. So every object a page reads passes `readable` first: each
property the pages use is declared here with the shape they need (one schema, whatever the
type, since STIX gives a property name one meaning), and a property of another shape is
read as absent, as if its producer had left it out. The stored text is never changed, and
the object's JSON shows it as stored.

About 3 us an object that is already well formed (jsonschema-rs), the common case.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs

from shieldwall.stix.markings import AUDIENCE_PROPERTY

_TEXT = {"type": "string"}
_TEXTS = {"type": "array", "items": _TEXT}
_NUMBER = {"type": "number"}
_SCORE = {"type": ["number", "null"]}


def _record(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def _records(**props: Any) -> dict[str, Any]:
    return {"type": "array", "items": _record(**props)}


INCIDENT_CORE = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"

_READ_SCHEMA = _record(**{
    # common properties, and the timestamps pages print or compare (as text)
    "name": _TEXT, "description": _TEXT, "created_by_ref": _TEXT, "revoked": {"type": "boolean"},
    "object_marking_refs": _TEXTS, AUDIENCE_PROPERTY: _TEXTS, "confidence": {"type": "integer"},
    **{k: _TEXT for k in ("created", "modified", "valid_from", "valid_until", "first_seen",
                          "last_seen", "published")},
    "extensions": {
        "type": "object", "additionalProperties": {"type": "object"},
        "properties": {INCIDENT_CORE: _record(scores=_records(
            x_shieldwall_breakdown=_record(factors=_records(name=_TEXT))))},
    },
    # indicators, sightings, relationships, notes, reports, campaigns
    "pattern": _TEXT, "pattern_type": _TEXT,
    "count": {"type": "integer"}, "sighting_of_ref": _TEXT, "where_sighted_refs": _TEXTS,
    "relationship_type": _TEXT, "source_ref": _TEXT, "target_ref": _TEXT, "object_refs": _TEXTS,
    "objective": _TEXT, "aliases": _TEXTS,
    # what the node's own rooms add
    "x_shieldwall_explanation": _records(observed_at=_TEXT),
    "x_shieldwall_evidence": {"type": "array"},
    "x_shieldwall_severity": _record(score=_NUMBER, level=_TEXT, members=_TEXTS),
    "x_shieldwall_members": _TEXTS,
    "x_shieldwall_attribution": _record(verdict=_TEXT, candidates=_records(
        group=_TEXT, attack_id=_TEXT, confidence=_NUMBER, shared=_TEXTS, missing=_TEXTS)),
    # Pledge posture snapshots
    "x_shieldwall_member": _TEXT, "x_shieldwall_date": _TEXT, "x_shieldwall_index": _NUMBER,
    "x_shieldwall_commitments": {"type": "object", "additionalProperties": _SCORE},
    "x_shieldwall_checks": {"type": "object", "additionalProperties": _record(score=_SCORE)},
})

_READ = jsonschema_rs.Draft202012Validator(_READ_SCHEMA)


def readable(obj: Any) -> dict[str, Any]:
    """`obj` without the properties the dashboard could not read (the object itself when
    every one is readable: the common case costs one schema check)."""
    if not isinstance(obj, dict):
        return {}
    if _READ.is_valid(obj):
        return obj
    unreadable = {e.instance_path[0] for e in _READ.iter_errors(obj) if e.instance_path}
    return {k: v for k, v in obj.items() if k not in unreadable}
