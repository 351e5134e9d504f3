"""The STIX types of rapid reaction, named once for every room that reads or checks them.

The OASIS Incident Core extension (oasis-open/cti-stix-common-objects,
`extension-definition-specifications/incident-core`) defines a property extension of
`incident` and three new SDOs, each with its own extension-definition id; Shieldwall's
own new SDOs (assistance request, dispatch, evidence item, custody event) are defined by
Shieldwall's extension-definition (`respond.model.extension_definition`).

`SCHEMAS` holds the JSON-schema rules `stix.validate` adds on top of the OASIS core rules
for each of these types, so a malformed one is refused wherever outside JSON comes in
(TAXII POST, federation, import). The rules check what Shieldwall's readers rely on
(required properties, closed vocabularies, reference shapes); they allow custom `x_`
properties, which STIX permits and Shieldwall uses for audiences.
"""

from __future__ import annotations

from typing import Any

from shieldwall.stix.ids import deterministic_id

# The official extension-definition ids of the Incident Core extension suite (v2.0).
INCIDENT_CORE_EXTENSION = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"
EVENT_EXTENSION = "extension-definition--4ca6de00-5b0d-45ef-a1dc-ea7279ea910e"
TASK_EXTENSION = "extension-definition--2074a052-8be4-4932-849e-f5e7798e0030"
IMPACT_EXTENSION = "extension-definition--7cc33dd6-f6a1-489b-98ea-522d351d71b9"

# Shieldwall's own extension-definition, and the new SDOs it defines.
SHIELDWALL_EXTENSION = deterministic_id("extension-definition", "shieldwall-respond:v1")
ASSISTANCE_REQUEST = "x-shieldwall-assistance-request"
DISPATCH = "x-shieldwall-dispatch"
EVIDENCE = "x-shieldwall-evidence"
CUSTODY_EVENT = "x-shieldwall-custody-event"
NODE_KEY = "x-shieldwall-node-key"  # a node's public keys, speaking for its member (keys/)
SHIELDWALL_TYPES = frozenset({ASSISTANCE_REQUEST, DISPATCH, EVIDENCE, CUSTODY_EVENT,
                              NODE_KEY})

# Closed vocabularies (the Incident Core schemas' enums, and Shieldwall's own).
TASK_OUTCOMES = ("pending", "ongoing", "successful", "failed", "cancelled", "unknown")
EVENT_STATUSES = ("occurred", "ongoing", "not-occurred", "pending", "undetermined")
FIDELITIES = ("second", "minute", "hour", "day", "month", "year")
REQUEST_STATUSES = ("open", "withdrawn", "closed")
DISPATCH_STATUSES = ("dispatched", "closed")
# What a custody event records (`custody_action`; STIX 2.1 reserves `action`).
CUSTODY_ACTIONS = ("collected", "handed-over", "copied", "analysed", "reverified")

_ID = r"^[a-z0-9][a-z0-9-]*[a-z0-9]--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-" \
      r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_TS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"
_MEMBER = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_RESPONDER = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}:[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$"
_TEXT = {"type": "string", "maxLength": 20_000}
_HEX64 = r"^[0-9a-f]{64}$"
_KEY = r"^[A-Za-z0-9_-]{43}$"  # a 32-byte public key, URL-safe base64 without padding


def _ref(prefix: str | None = None) -> dict[str, Any]:
    if prefix is None:
        return {"type": "string", "pattern": _ID}
    return {"type": "string", "pattern": _ID, "allOf": [{"pattern": f"^{prefix}--"}]}


def _refs(prefix: str | None = None) -> dict[str, Any]:
    return {"type": "array", "items": _ref(prefix), "maxItems": 10_000}


def _extension(ext_id: str) -> dict[str, Any]:
    """`extensions` must hold `ext_id` as a new-sdo extension."""
    return {"type": "object", "required": [ext_id], "properties": {ext_id: {
        "type": "object", "required": ["extension_type"],
        "properties": {"extension_type": {"const": "new-sdo"}}}}}


def _sdo(ext_id: str, required: list[str], props: dict[str, Any]) -> dict[str, Any]:
    return {"required": ["created", "modified", "extensions", *required],
            "properties": {"extensions": _extension(ext_id), **props}}


SCHEMAS: dict[str, dict[str, Any]] = {
    "event": _sdo(EVENT_EXTENSION, ["status"], {
        "status": {"enum": list(EVENT_STATUSES)},
        "name": {"type": "string", "minLength": 1, "maxLength": 20_000},
        "description": _TEXT,
        "event_types": {"type": "array", "minItems": 1, "items": {"type": "string",
                                                                  "minLength": 1}},
        "start_time": {"type": "string", "pattern": _TS},
        "end_time": {"type": "string", "pattern": _TS},
        "start_time_fidelity": {"enum": list(FIDELITIES)},
        "end_time_fidelity": {"enum": list(FIDELITIES)},
        "sighting_refs": _refs("sighting"),
        "x_shieldwall_observable_refs": _refs(),
        "x_shieldwall_source": _TEXT,
    }),
    "task": _sdo(TASK_EXTENSION, ["outcome"], {
        "outcome": {"enum": list(TASK_OUTCOMES)},
        "name": {"type": "string", "minLength": 1, "maxLength": 20_000},
        "description": _TEXT,
        "priority": {"type": "integer", "minimum": 0, "maximum": 100},
        "start_time": {"type": "string", "pattern": _TS},
        "end_time": {"type": "string", "pattern": _TS},
        "x_shieldwall_assignee": {"type": "string", "pattern": _RESPONDER},
        "x_shieldwall_due": {"type": "string", "pattern": _TS},
    }),
    "impact": _sdo(IMPACT_EXTENSION, ["impact_category"], {
        "impact_category": {"type": "string", "minLength": 1},
        "description": _TEXT,
    }),
    ASSISTANCE_REQUEST: _sdo(SHIELDWALL_EXTENSION, [
        "created_by_ref", "requester", "cell", "incident_ref", "needs", "status"], {
        "requester": {"type": "string", "pattern": _MEMBER},
        "cell": {"type": "string", "pattern": _MEMBER},
        "incident_ref": _ref("incident"),
        "needs": {"type": "array", "minItems": 1, "maxItems": 100,
                  "items": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9-]{0,62}$"}},
        "status": {"enum": list(REQUEST_STATUSES)},
        "description": _TEXT,
        "summary": _TEXT,
    }),
    DISPATCH: _sdo(SHIELDWALL_EXTENSION, [
        "created_by_ref", "request_ref", "requester", "cell", "team", "lead", "reason",
        "status"], {
        "request_ref": _ref(ASSISTANCE_REQUEST),
        "incident_ref": _ref("incident"),
        "requester": {"type": "string", "pattern": _MEMBER},
        "cell": {"type": "string", "pattern": _MEMBER},
        "team": {"type": "array", "minItems": 1, "maxItems": 1_000,
                 "items": {"type": "string", "pattern": _RESPONDER}},
        "lead": {"type": "string", "pattern": _RESPONDER},
        "reason": {"type": "string", "minLength": 1, "maxLength": 20_000},
        "status": {"enum": list(DISPATCH_STATUSES)},
        "summary": _TEXT,
    }),
    # Evidence and custody (respond/evidence.py, respond/custody.py; docs/respond.md,
    # "Evidence and custody").
    EVIDENCE: _sdo(SHIELDWALL_EXTENSION, [
        "created_by_ref", "case_ref", "name", "sha256", "size", "kept_at", "collected_by",
        "collected_how"], {
        "case_ref": _ref("incident"),
        "name": {"type": "string", "minLength": 1, "maxLength": 20_000},
        "sha256": {"type": "string", "pattern": _HEX64},
        "size": {"type": "integer", "minimum": 0},
        "kept_at": {"type": "string", "minLength": 1, "maxLength": 20_000},
        "collected_by": {"type": "string", "pattern": _RESPONDER},
        "collected_how": {"type": "string", "minLength": 1, "maxLength": 20_000},
        "collected": {"type": "string", "pattern": _TS},
        "description": _TEXT,
    }),
    CUSTODY_EVENT: _sdo(SHIELDWALL_EXTENSION, [
        "created_by_ref", "case_ref", "evidence_ref", "custody_action", "actor", "occurred",
        "evidence_hash", "signing_key", "chain_seq", "chain_prev", "signature"], {
        "case_ref": _ref("incident"),
        "evidence_ref": _ref(EVIDENCE),
        "custody_action": {"enum": list(CUSTODY_ACTIONS)},
        "actor": {"type": "string", "pattern": _RESPONDER},
        "occurred": {"type": "string", "pattern": _TS},
        "evidence_hash": {"type": "string", "pattern": _HEX64},
        "signing_key": {"type": "string", "pattern": _KEY},
        "chain_seq": {"type": "integer", "minimum": 1},
        "chain_prev": {"type": "string", "pattern": _HEX64},
        "chain_seen": {"type": "array", "minItems": 1, "maxItems": 10_000, "items": {
            "type": "object", "required": ["signing_key", "chain_seq", "event_hash"],
            "properties": {"signing_key": {"type": "string", "pattern": _KEY},
                           "chain_seq": {"type": "integer", "minimum": 1},
                           "event_hash": {"type": "string", "pattern": _HEX64}}}},
        "signature": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{86}$"},
        "observed_sha256": {"type": "string", "pattern": _HEX64},
        "copy_ref": _ref(EVIDENCE),
        **{k: _TEXT for k in ("from_holder", "to_holder", "location", "tool", "result",
                              "description")},
    }),
    NODE_KEY: _sdo(SHIELDWALL_EXTENSION, [
        "created_by_ref", "identity_ref", "member", "signing_key", "kit_key"], {
        "identity_ref": _ref("identity"),
        "member": {"type": "string", "pattern": _MEMBER},
        "signing_key": {"type": "string", "pattern": _KEY},
        "kit_key": {"type": "string", "pattern": _KEY},
    }),
}
