"""Incidents members report: STIX 2.1 `incident` with the OASIS Incident Core extension.

The extension (`extension-definition--ef765651-...`, oasis-open/cti-stix-common-objects,
`extension-definition-specifications/incident-core`) carries `determination`,
`investigation_status`, `impacted_entity_counts`, `recoverability`, `criticality`,
`incident_types` and `scores`. It forbids other properties inside it, so what Shieldwall
adds sits at the top level of the incident:

- `x_shieldwall_sector`: the reporting member's sector (industry-sector-ov: `energy`,
  `government-national`, `healthcare`, ...), used by the campaign score and consultation;
- `x_shieldwall_sighting_refs`: the member's sightings behind the incident (a relationship
  may not point at a sighting in STIX 2.1, so these are refs);
- `x_shieldwall_techniques`: observed ATT&CK technique ids (T1566.001), for correlation and
  attribution.

Indicators and observed data are linked with `related-to` relationships (deterministic ids,
so a new version of the incident never duplicates them); `x_shieldwall_related_refs` lists
the same targets on the incident itself, so correlation reads them without a search over
relationships. Observables given as
`ipv4-addr:198.51.100.7` become SCOs in one observed-data object.

An update is a new STIX version of the same id (a later `modified`); the store keeps every
version, and federation ships incidents like any other object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shieldwall.assess.severity import INCIDENT_CORE_EXTENSION, Severity, with_scores
from shieldwall.errors import ShieldwallError
from shieldwall.stix.canonical import canonical_json
from shieldwall.stix.ids import deterministic_id, new_id, valid_id
from shieldwall.stix.markings import TLP, tlp_marking_ref
from shieldwall.stix.timestamps import format_ts, now_us, parse_ts
from shieldwall.store import Provenance, Query, Store

SECTOR = "x_shieldwall_sector"
SIGHTING_REFS = "x_shieldwall_sighting_refs"
TECHNIQUES = "x_shieldwall_techniques"
RELATED_REFS = "x_shieldwall_related_refs"
FIRST_SEEN = "x_shieldwall_first_seen"

# Closed vocabularies of the Incident Core extension (its JSON schema's enums).
DETERMINATIONS = ("blocked", "failed-attempt", "false-positive", "low-value",
                  "successful-attempt", "suspected")
RECOVERABILITY = ("not-applicable", "regular", "supplemented", "extended", "not-recoverable")
# `investigation_status` is open in the extension; these are the values it suggests.
STATUSES = ("new", "open", "closed")
OBSERVABLE_TYPES = ("ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "file",
                    "x509-certificate")
_TECHNIQUE_RE = re.compile(r"^T\d{4}(\.\d{3})?$")


class IncidentError(ShieldwallError):
    """An incident field the extension does not allow; the message lists the choices."""


@dataclass
class IncidentFields:
    """What a member says about an incident; None leaves a field as it was (on update)."""

    name: str | None = None
    description: str | None = None
    sector: str | None = None
    determination: str | None = None
    investigation_status: str | None = None
    recoverability: str | None = None
    criticality: int | None = None
    incident_types: list[str] | None = None
    impacted_entity_counts: dict[str, int] | None = None
    first_seen: str | None = None
    techniques: list[str] = field(default_factory=list)
    sighting_refs: list[str] = field(default_factory=list)
    indicator_refs: list[str] = field(default_factory=list)
    observed_data_refs: list[str] = field(default_factory=list)
    observables: list[str] = field(default_factory=list)  # "ipv4-addr:198.51.100.7"


def _check(f: IncidentFields) -> None:
    if f.determination is not None and f.determination not in DETERMINATIONS:
        raise IncidentError(f"determination {f.determination!r}: choose one of "
                            f"{', '.join(DETERMINATIONS)}")
    if f.recoverability is not None and f.recoverability not in RECOVERABILITY:
        raise IncidentError(f"recoverability {f.recoverability!r}: choose one of "
                            f"{', '.join(RECOVERABILITY)}")
    if f.investigation_status is not None and not re.match(r"^[a-z][a-z-]*$",
                                                           f.investigation_status):
        raise IncidentError(f"investigation status {f.investigation_status!r}: use a "
                            f"lower-case word such as {', '.join(STATUSES)}")
    if f.criticality is not None and not 0 <= f.criticality <= 100:
        raise IncidentError(f"criticality {f.criticality}: give 0-100")
    for key, n in (f.impacted_entity_counts or {}).items():
        if not re.match(r"^[a-z\-]+$", key) or n < 0:
            raise IncidentError(f"impacted entity {key}={n}: lower-case-dashed name, count >= 0"
                                " (individuals, organizations, information-systems, ...)")
    for t in f.techniques:
        if not _TECHNIQUE_RE.match(t):
            raise IncidentError(f"technique {t!r}: give ATT&CK ids such as T1566 or T1566.001")
    for ref, prefix in ((f.sighting_refs, "sighting"), (f.indicator_refs, "indicator"),
                        (f.observed_data_refs, "observed-data")):
        for r in ref:
            if not valid_id(r) or not r.startswith(prefix + "--"):
                raise IncidentError(f"{r!r} is not a {prefix} id ({prefix}--<uuid>)")
    if f.first_seen is not None:
        try:
            parse_ts(f.first_seen)
        except ValueError as exc:
            raise IncidentError(str(exc)) from None
    for o in f.observables:
        _parse_observable(o)


def _parse_observable(text: str) -> tuple[str, str]:
    """`TYPE:VALUE`, e.g. `ipv4-addr:198.51.100.7`, `domain-name:evil.example`,
    `file:SHA-256=<hex>` (a file by hash), `x509-certificate:SHA-1=<hex>`."""
    kind, sep, value = text.partition(":")
    if not sep or kind not in OBSERVABLE_TYPES or not value:
        raise IncidentError(f"observable {text!r}: write TYPE:VALUE with TYPE one of "
                            f"{', '.join(OBSERVABLE_TYPES)} (file:SHA-256=<hex>)")
    return kind, value


def _sco(kind: str, value: str) -> dict[str, Any]:
    if kind in ("file", "x509-certificate"):
        algo, sep, digest = value.partition("=")
        if not sep:
            raise IncidentError(f"{kind}:{value}: give ALGORITHM=<hex>, e.g. SHA-256=ab12...")
        body: dict[str, Any] = {"hashes": {algo.upper(): digest.lower()}}
    else:
        body = {"value": value}
    return {"type": kind, "spec_version": "2.1",
            "id": deterministic_id(kind, canonical_json(body)), **body}


def _ts_after(previous: str | None) -> str:
    """Now, but strictly later than `previous` (two updates in one millisecond stay ordered)."""
    now = now_us()
    if previous:
        now = max(now, parse_ts(previous) + 1)
    return format_ts(now)


def _apply(inc: dict[str, Any], f: IncidentFields) -> None:
    core = dict(inc["extensions"][INCIDENT_CORE_EXTENSION])
    for key in ("determination", "investigation_status", "recoverability", "criticality",
                "incident_types", "impacted_entity_counts"):
        value = getattr(f, key)
        if value is not None:
            core[key] = value
    inc["extensions"] = {**inc["extensions"], INCIDENT_CORE_EXTENSION: core}
    if f.name is not None:
        inc["name"] = f.name
    if f.description is not None:
        inc["description"] = f.description
    if f.sector is not None:
        inc[SECTOR] = f.sector
    if f.first_seen is not None:
        inc[FIRST_SEEN] = f.first_seen
    for prop, values in ((TECHNIQUES, f.techniques), (SIGHTING_REFS, f.sighting_refs)):
        if values:
            inc[prop] = list(dict.fromkeys([*inc.get(prop, []), *values]))


def _related(inc: dict[str, Any], targets: Iterable[str], marking: list[str]
             ) -> list[dict[str, Any]]:
    out = []
    for t in dict.fromkeys(targets):
        out.append({
            "type": "relationship", "spec_version": "2.1",
            "id": deterministic_id("relationship", f"{inc['id']}|related-to|{t}"),
            "created": inc["created"], "modified": inc["created"],
            "created_by_ref": inc["created_by_ref"],
            "relationship_type": "related-to", "source_ref": inc["id"], "target_ref": t,
            "object_marking_refs": marking,
        })
    return out


def _companions(inc: dict[str, Any], f: IncidentFields, ts: str) -> list[dict[str, Any]]:
    """Relationships to indicators and observed data, and observed data for observables."""
    marking = list(inc.get("object_marking_refs") or [])
    extra: list[dict[str, Any]] = []
    od_refs = list(f.observed_data_refs)
    if f.observables:
        scos = [_sco(*_parse_observable(o)) for o in f.observables]
        refs = sorted({s["id"] for s in scos})
        od = {
            "type": "observed-data", "spec_version": "2.1",
            "id": deterministic_id("observed-data", f"{inc['id']}|{'|'.join(refs)}"),
            "created": ts, "modified": ts, "created_by_ref": inc["created_by_ref"],
            "first_observed": inc.get(FIRST_SEEN, ts), "last_observed": ts,
            "number_observed": 1, "object_refs": refs, "object_marking_refs": marking,
        }
        extra += [*scos, od]
        od_refs.append(od["id"])
    targets = [*f.indicator_refs, *od_refs]
    if targets:
        inc[RELATED_REFS] = list(dict.fromkeys([*inc.get(RELATED_REFS, []), *targets]))
    return extra + _related(inc, targets, marking)


def new_incident(member_identity: str, fields: IncidentFields, *, tlp: TLP = TLP.AMBER,
                 severity: Severity | None = None) -> list[dict[str, Any]]:
    """The incident (first version) and its companion objects, ready to store."""
    _check(fields)
    if not fields.name:
        raise IncidentError("an incident needs a name (a short title)")
    ts = _ts_after(None)
    inc: dict[str, Any] = {
        "type": "incident", "spec_version": "2.1", "id": new_id("incident"),
        "created": ts, "modified": ts, "created_by_ref": member_identity, "name": fields.name,
        "object_marking_refs": [tlp_marking_ref(tlp)],
        "extensions": {INCIDENT_CORE_EXTENSION: {
            "extension_type": "property-extension",
            "determination": fields.determination or "suspected",
            "investigation_status": fields.investigation_status or "new",
        }},
    }
    _apply(inc, fields)
    if severity is not None:
        inc = with_scores(inc, severity)
    return [inc, *_companions(inc, fields, ts)]


def updated_incident(current: Mapping[str, Any], fields: IncidentFields, *,
                     severity: Severity | None = None) -> list[dict[str, Any]]:
    """A new version of `current` (same id, later `modified`) and any new companions."""
    if current.get("type") != "incident" or INCIDENT_CORE_EXTENSION not in (
            current.get("extensions") or {}):
        raise IncidentError(f"{current.get('id')} is not an incident with the Incident Core "
                            "extension")
    _check(fields)
    inc = dict(current)
    _apply(inc, fields)
    if severity is not None:
        inc = with_scores(inc, severity)
    ts = _ts_after(current.get("modified"))
    inc["modified"] = ts
    return [inc, *_companions(inc, fields, ts)]


def core(incident: Mapping[str, Any]) -> dict[str, Any]:
    """The Incident Core extension of an incident ({} when it has none)."""
    return dict((incident.get("extensions") or {}).get(INCIDENT_CORE_EXTENSION) or {})


def score_of(incident: Mapping[str, Any], name: str | None = None) -> float | None:
    """The incident's score named `name` (default: the newest scheme it carries)."""
    scores = core(incident).get("scores") or []
    for s in reversed(scores):
        if name is None or s.get("name") == name:
            return float(s["value"])
    return None


# ---- in the store ----------------------------------------------------------------------


def open_incident(store: Store, member: str, member_identity: str, fields: IncidentFields, *,
                  tlp: TLP = TLP.AMBER, severity: Severity | None = None) -> dict[str, Any]:
    objs = new_incident(member_identity, fields, tlp=tlp, severity=severity)
    _put(store, member, objs)
    return objs[0]


def update_incident(store: Store, member: str, incident_id: str, fields: IncidentFields, *,
                    severity: Severity | None = None) -> dict[str, Any]:
    current = get_incident(store, incident_id)
    objs = updated_incident(current, fields, severity=severity)
    _put(store, member, objs)
    return objs[0]


def _put(store: Store, member: str, objs: Sequence[dict[str, Any]]) -> None:
    result = store.put_many(objs, Provenance(member, "local"))
    if result.rejected:
        raise IncidentError("the store refused: " + "; ".join(
            f"{i}: {r}" for i, r in result.rejected))


def get_incident(store: Store, incident_id: str) -> dict[str, Any]:
    row = store.get(incident_id)
    if row is None or row.type != "incident":
        raise IncidentError(f"no incident {incident_id} in this node; `shieldwall incident "
                            "list` shows the ones it holds")
    return row.obj()


def list_incidents(store: Store, *, status: str | None = None, member_identity: str | None = None
                   ) -> list[dict[str, Any]]:
    out = []
    for row in store.iter_query(Query(types=["incident"])):
        obj = row.obj()
        if status is not None and core(obj).get("investigation_status") != status:
            continue
        if member_identity is not None and obj.get("created_by_ref") != member_identity:
            continue
        out.append(obj)
    return out


def related_refs(store: Store, incident_id: str) -> list[str]:
    """Targets of the incident's `related-to` relationships (indicators, observed data)."""
    return list(get_incident(store, incident_id).get(RELATED_REFS) or [])
