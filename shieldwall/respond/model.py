"""Rapid reaction as STIX 2.1: what a case is made of, and the constructors every path uses.

A case is the requesting member's `incident` carrying the OASIS Incident Core extension;
its parts are the extension's own SDOs (`task`, `event`, `impact`, each with its official
extension-definition id), `note`s, `observed-data` with the observables, `sighting`s,
`indicator`s and `attack-pattern`s, each linked to the incident by a `related-to`
relationship (`link`). Shieldwall's own objects (assistance request, dispatch, evidence
item, custody event) are new SDOs defined by Shieldwall's `extension-definition`
(`extension_definition`, published by every node with `published_objects`).

Every item carries its own TLP (`Marking`) and, at AMBER+STRICT or RED, its audience in
`x_shieldwall_audience`: the store's `Access` (policy `visible`) alone decides who reads it,
on every path. A case's audience (`case_audience`) is the requesting member, the
coordination cell and the members whose responders the dispatch names.

Everything here is pure: functions take and return plain STIX dicts. Storing and reading
them is `respond.cases` / `respond.assist`; the contract is written in docs/respond.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shieldwall.errors import ShieldwallError
from shieldwall.stix.canonical import canonical_json
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.ids import deterministic_id, new_id, valid_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY, TLP, resolve_tlp, tlp_marking_ref
from shieldwall.stix.respond_types import (
    ASSISTANCE_REQUEST,
    CUSTODY_EVENT,
    DISPATCH,
    DISPATCH_STATUSES,
    EVENT_EXTENSION,
    EVENT_STATUSES,
    EVIDENCE,
    FIDELITIES,
    IMPACT_EXTENSION,
    INCIDENT_CORE_EXTENSION,
    REQUEST_STATUSES,
    SHIELDWALL_EXTENSION,
    SHIELDWALL_TYPES,
    TASK_EXTENSION,
    TASK_OUTCOMES,
)
from shieldwall.stix.timestamps import format_ts, now_us, parse_ts
from shieldwall.stix.values import canonical

__all__ = [
    "ASSISTANCE_REQUEST", "CASE_LINK", "CUSTODY_EVENT", "DISPATCH", "DISPATCH_STATUSES",
    "EVENT_EXTENSION", "EVENT_STATUSES", "EVIDENCE", "FIDELITIES", "IMPACT_EXTENSION",
    "INCIDENT_CORE_EXTENSION", "OBSERVABLE_PATHS", "REQUEST_STATUSES",
    "SHIELDWALL_EXTENSION", "SHIELDWALL_IDENTITY", "SHIELDWALL_TYPES", "TASK_EXTENSION",
    "TASK_OUTCOMES", "Marking", "RespondError", "assistance_request", "case_audience",
    "dispatch", "event", "extension_definition", "impact", "link", "new_sdo",
    "next_version", "note", "observable", "observable_text", "parse_responder", "published_objects",
    "shieldwall_identity", "stamp", "task", "team_members",
]

# Items are tied to their case by a relationship item -> incident of this type (STIX's
# generic type: the Incident Core tables have no task->incident or note->incident type).
CASE_LINK = "related-to"

# The creator of Shieldwall's extension-definition: the project, not any member, so every
# node publishes the very same object (same id, same version) and federation sees duplicates.
SHIELDWALL_IDENTITY = deterministic_id("identity", "shieldwall-project")
_PUBLISHED = "2026-12-01T00:00:00.000Z"

# Observables a case can hold, as the STIX path whose canonical form (stix.values) applies.
OBSERVABLE_PATHS: Mapping[str, str] = {
    "ipv4-addr": "ipv4-addr:value", "ipv6-addr": "ipv6-addr:value",
    "domain-name": "domain-name:value", "url": "url:value", "email-addr": "email-addr:value",
    "file": "file:hashes.'SHA-256'",
}
_HASH_ALGOS = {"MD5": "MD5", "SHA-1": "SHA-1", "SHA1": "SHA-1", "SHA-256": "SHA-256",
               "SHA256": "SHA-256", "SHA-512": "SHA-512", "SHA512": "SHA-512"}
_WORD = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_MEMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_PERSON = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
MAX_TEXT = 20_000  # characters of a description, reason, summary or note


class RespondError(ShieldwallError):
    """A request, dispatch or case item that cannot be made; the message says why."""


# ---- markings ------------------------------------------------------------------------


@dataclass(frozen=True)
class Marking:
    """An item's own TLP and, at AMBER and above, the members it is named to."""

    tlp: TLP
    audience: tuple[str, ...] = ()

    def props(self) -> dict[str, Any]:
        """The properties that mark an object: `object_marking_refs`, and the audience
        when the level has one (CLEAR and GREEN go to every member: no audience)."""
        out: dict[str, Any] = {"object_marking_refs": [tlp_marking_ref(self.tlp)]}
        if self.tlp >= TLP.AMBER and self.audience:
            out[AUDIENCE_PROPERTY] = sorted(set(self.audience))
        return out

    @classmethod
    def of(cls, obj: Mapping[str, Any], default: TLP = TLP.AMBER) -> Marking:
        """The marking an object carries (its most restrictive TLP, its audience)."""
        names = obj.get(AUDIENCE_PROPERTY)
        return cls(resolve_tlp(obj, default),
                   tuple(sorted({str(n) for n in names})) if isinstance(names, list) else ())

    def widened(self, audience: Iterable[str]) -> Marking:
        """The same level, its audience joined with `audience`."""
        return Marking(self.tlp, tuple(sorted({*self.audience, *audience})))


def parse_responder(text: str) -> tuple[str, str]:
    """`cert-north:alice` -> ("cert-north", "alice"): a responder is a person of a member."""
    member, sep, person = text.strip().partition(":")
    if not sep or not _MEMBER.match(member) or not _PERSON.match(person):
        raise RespondError(f"responder {text!r}: write MEMBER:PERSON, e.g. cert-north:alice")
    return member, person


def team_members(team: Iterable[str]) -> tuple[str, ...]:
    """The members whose responders `team` names (their nodes read the case)."""
    return tuple(sorted({parse_responder(t)[0] for t in team}))


def case_audience(requester: str, cell: str, team: Iterable[str] = ()) -> tuple[str, ...]:
    """Who a case's AMBER+STRICT items are named to: the requesting member, the
    coordination cell, and the members of the dispatched team's responders."""
    return tuple(sorted({requester, cell, *team_members(team)} - {""}))


# ---- versions --------------------------------------------------------------------------


def stamp(previous: str | None = None) -> str:
    """Now, strictly later than `previous` (two versions in one millisecond stay ordered)."""
    now = now_us()
    if previous:
        now = max(now, parse_ts(previous) + 1_000)
    return format_ts(now)


def next_version(obj: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A new version of `obj` (same id, `created` and `created_by_ref`; later `modified`)
    with `changes` applied; a change to None removes the property. Only the object's
    creator may store it (policy `version_refusal`)."""
    out = dict(obj)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    for fixed in ("id", "type", "created", "created_by_ref"):
        if fixed in obj:
            out[fixed] = obj[fixed]
        else:
            out.pop(fixed, None)
    out["modified"] = stamp(str(obj.get("modified") or obj.get("created")))
    return out


def _text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise RespondError(f"{what}: at most {MAX_TEXT} characters")
    return value or None


def _base(kind: str, creator: str, marking: Marking, ts: str | None = None) -> dict[str, Any]:
    ts = ts or stamp()
    return {"type": kind, "spec_version": "2.1", "id": new_id(kind), "created": ts,
            "modified": ts, "created_by_ref": member_identity_id(creator), **marking.props()}


def new_sdo(kind: str, creator: str, marking: Marking, **props: Any) -> dict[str, Any]:
    """A new object of one of Shieldwall's own types (`SHIELDWALL_TYPES`), marked, with
    the extension that defines it; `props` are its own properties (None left out)."""
    if kind not in SHIELDWALL_TYPES:
        raise RespondError(f"{kind} is not one of Shieldwall's types")
    obj = _base(kind, creator, marking)
    obj.update({k: v for k, v in props.items() if v is not None})
    obj["extensions"] = {SHIELDWALL_EXTENSION: {"extension_type": "new-sdo"}}
    return obj


# ---- the extension definition -----------------------------------------------------------


def shieldwall_identity() -> dict[str, Any]:
    return {"type": "identity", "spec_version": "2.1", "id": SHIELDWALL_IDENTITY,
            "created": _PUBLISHED, "modified": _PUBLISHED, "name": "Shieldwall",
            "identity_class": "system",
            "object_marking_refs": [tlp_marking_ref(TLP.CLEAR)]}


def extension_definition() -> dict[str, Any]:
    """Shieldwall's extension-definition (STIX 2.1 section 7.3): the new SDOs of rapid
    reaction. Every node stores the same object, so peers hold it as they hold the types."""
    return {
        "type": "extension-definition", "spec_version": "2.1", "id": SHIELDWALL_EXTENSION,
        "created": _PUBLISHED, "modified": _PUBLISHED, "created_by_ref": SHIELDWALL_IDENTITY,
        "name": "Shieldwall rapid reaction",
        "description": ("New SDOs for an alliance's rapid reaction: "
                        + ", ".join(sorted(SHIELDWALL_TYPES)) + "."),
        "schema": ("Shieldwall docs/respond.md, 'The model': the properties of each type; "
                   "checked by shieldwall.stix.respond_types.SCHEMAS."),
        "version": "1.0.0",
        "extension_types": ["new-sdo"],
        "object_marking_refs": [tlp_marking_ref(TLP.CLEAR)],
    }


def published_objects() -> list[dict[str, Any]]:
    """What a node stores so that its peers receive the definition of its types."""
    return [shieldwall_identity(), extension_definition()]


# ---- request and dispatch ----------------------------------------------------------------


def _words(values: Iterable[str], what: str) -> list[str]:
    out = list(dict.fromkeys(v.strip().lower() for v in values if v.strip()))
    for v in out:
        if not _WORD.match(v):
            raise RespondError(f"{what} {v!r}: lower-case words with '-', e.g. forensics, "
                               "malware-analysis")
    if not out:
        raise RespondError(f"give at least one {what}")
    return out


def assistance_request(*, requester: str, cell: str, incident_id: str, needs: Iterable[str],
                       marking: Marking, description: str | None = None) -> dict[str, Any]:
    """A member's request for help with its incident, addressed to the coordination cell.
    It speaks for `requester` (only that member's node writes it: policy `spoken_for`)."""
    if not valid_id(incident_id) or not incident_id.startswith("incident--"):
        raise RespondError(f"{incident_id!r} is not an incident id (incident--<uuid>)")
    for name in (requester, cell):
        if not _MEMBER.match(name):
            raise RespondError(f"member name {name!r} is not valid")
    return new_sdo(ASSISTANCE_REQUEST, requester, marking, requester=requester, cell=cell,
                   incident_ref=incident_id, needs=_words(needs, "need"), status="open",
                   description=_text(description, "description"))


def dispatch(*, request: Mapping[str, Any], cell: str, team: Sequence[str], lead: str,
             reason: str, marking: Marking | None = None) -> dict[str, Any]:
    """The cell's answer to a request: the team (`MEMBER:PERSON` each), its lead and the
    reasoning. It speaks for the cell (only the cell's node writes it). Its marking is the
    request's level, its audience the case's (`case_audience`)."""
    team = list(dict.fromkeys(t.strip() for t in team if t.strip()))
    if not team:
        raise RespondError("a dispatch names at least one responder (--team)")
    for t in team:
        parse_responder(t)
    if lead not in team:
        raise RespondError(f"the lead {lead!r} must be one of the team")
    if request.get("cell") != cell:
        raise RespondError(f"the request is addressed to {request.get('cell')!r}, not {cell!r}")
    why = _text(reason, "reason")
    if not why:
        raise RespondError("a dispatch needs its reasoning (--reason)")
    requester = str(request.get("requester"))
    base = marking or Marking.of(request)
    mark = Marking(base.tlp, case_audience(requester, cell, team))
    return new_sdo(DISPATCH, cell, mark, request_ref=request["id"],
                   incident_ref=request.get("incident_ref"), requester=requester, cell=cell,
                   team=team, lead=lead, reason=why, status="dispatched")


# ---- the Incident Core extension's SDOs, notes, observables --------------------------------


def _fidelity(value: str | None) -> str | None:
    if value is not None and value not in FIDELITIES:
        raise RespondError(f"time fidelity {value!r}: choose one of {', '.join(FIDELITIES)}")
    return value


def _ts(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        return format_ts(parse_ts(value))
    except ValueError as exc:
        raise RespondError(f"{what}: {exc}") from None


def task(*, creator: str, name: str, marking: Marking, outcome: str = "pending",
         assignee: str | None = None, due: str | None = None,
         description: str | None = None, priority: int | None = None,
         task_types: Sequence[str] = ()) -> dict[str, Any]:
    """An Incident Core `task`. Its status is the extension's `outcome` (pending, ongoing,
    successful, failed, cancelled, unknown); assignee (`MEMBER:PERSON`) and due date are
    Shieldwall's (`x_shieldwall_assignee`, `x_shieldwall_due`)."""
    if outcome not in TASK_OUTCOMES:
        raise RespondError(f"task status {outcome!r}: choose one of {', '.join(TASK_OUTCOMES)}")
    if assignee is not None:
        parse_responder(assignee)
    if priority is not None and not 0 <= priority <= 100:
        raise RespondError(f"priority {priority}: give 0-100")
    title = _text(name, "task name")
    if not title:
        raise RespondError("a task needs a name")
    obj = _base("task", creator, marking)
    obj.update({"name": title, "outcome": outcome,
                "extensions": {TASK_EXTENSION: {"extension_type": "new-sdo"}}})
    for key, value in (("description", _text(description, "description")),
                       ("priority", priority), ("x_shieldwall_assignee", assignee),
                       ("x_shieldwall_due", _ts(due, "due")),
                       ("task_types", _words(task_types, "task type") if task_types else None)):
        if value is not None:
            obj[key] = value
    return obj


def event(*, creator: str, name: str, marking: Marking, start: str | None = None,
          fidelity: str | None = None, status: str = "occurred", source: str | None = None,
          sighting_refs: Sequence[str] = (), observable_refs: Sequence[str] = (),
          event_types: Sequence[str] = (), description: str | None = None) -> dict[str, Any]:
    """An Incident Core `event`: a point of the case's timeline, at `start` with
    `start_time_fidelity`, from `source` (`x_shieldwall_source`: a log, a person, a tool),
    with its sightings (`sighting_refs`) and observables (`x_shieldwall_observable_refs`:
    observed-data or SCO ids)."""
    if status not in EVENT_STATUSES:
        raise RespondError(f"event status {status!r}: choose one of {', '.join(EVENT_STATUSES)}")
    title = _text(name, "event name")
    if not title:
        raise RespondError("an event needs a name")
    for r in sighting_refs:
        if not valid_id(r) or not r.startswith("sighting--"):
            raise RespondError(f"{r!r} is not a sighting id")
    for r in observable_refs:
        if not valid_id(r):
            raise RespondError(f"{r!r} is not a STIX id")
    obj = _base("event", creator, marking)
    obj.update({"name": title, "status": status,
                "extensions": {EVENT_EXTENSION: {"extension_type": "new-sdo"}}})
    for key, value in (("start_time", _ts(start, "time")),
                       ("start_time_fidelity", _fidelity(fidelity) if start else None),
                       ("description", _text(description, "description")),
                       ("x_shieldwall_source", _text(source, "source")),
                       ("sighting_refs", list(dict.fromkeys(sighting_refs)) or None),
                       ("x_shieldwall_observable_refs", list(dict.fromkeys(observable_refs))
                        or None),
                       ("event_types", _words(event_types, "event type") if event_types
                        else None)):
        if value is not None:
            obj[key] = value
    return obj


def impact(*, creator: str, category: str, marking: Marking, description: str | None = None,
           details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An Incident Core `impact` of `category` (availability, confidentiality, external,
    integrity, monetary, physical, traceability). The suite puts a category's details in
    an extension named after it (`extensions.availability`), which the OASIS STIX 2.1
    core schema refuses (an extension key is a definition id or ends in `-ext`); so the
    details are in `x_shieldwall_impact`, and the object stays valid STIX."""
    cat = _words([category], "impact category")[0]
    obj = _base("impact", creator, marking)
    obj.update({"impact_category": cat,
                "extensions": {IMPACT_EXTENSION: {"extension_type": "new-sdo"}}})
    if details:
        obj["x_shieldwall_impact"] = dict(details)
    if description:
        obj["description"] = _text(description, "description")
    return obj


def note(*, creator: str, case_id: str, content: str, marking: Marking,
         object_refs: Sequence[str] = (), abstract: str | None = None) -> dict[str, Any]:
    """A STIX `note` on the case (its `object_refs` start with the incident)."""
    body = _text(content, "note")
    if not body:
        raise RespondError("a note needs its text")
    obj = _base("note", creator, marking)
    obj.update({"content": body, "object_refs": list(dict.fromkeys([case_id, *object_refs]))})
    if abstract:
        obj["abstract"] = _text(abstract, "abstract")
    return obj


def observable(text: str, *, creator: str, marking: Marking,
               first_observed: str | None = None) -> dict[str, Any]:
    """`TYPE:VALUE` (`ipv4-addr:198.51.100.7`, `domain-name:Bücher.example`,
    `file:SHA-256=<hex>`) as an `observed-data` holding its SCO, the value in canonical
    form (stix.values).

    The SCO is embedded (`objects`, which STIX 2.1 keeps, deprecated, beside
    `object_refs`) rather than stored on its own: an SCO has no versions and one id per
    value across the alliance, so it could carry neither the item's own TLP nor the wider
    audience a dispatch brings; inside the observed-data it has both (with the id it has
    everywhere else, the UUIDv5 of its value)."""
    kind, sep, value = text.strip().partition(":")
    value = value.strip()
    if not sep or kind not in OBSERVABLE_PATHS or not value:
        raise RespondError(f"observable {text!r}: write TYPE:VALUE with TYPE one of "
                           f"{', '.join(OBSERVABLE_PATHS)} (file:SHA-256=<hex>)")
    if kind == "file":
        algo, eq, digest = value.partition("=")
        algo = _HASH_ALGOS.get(algo.strip().upper(), "")
        if not eq or not algo or not re.fullmatch(r"[0-9A-Fa-f]{32,128}", digest.strip()):
            raise RespondError(f"{text!r}: give file:ALGORITHM=<hex> (MD5, SHA-1, SHA-256, "
                               "SHA-512)")
        body: dict[str, Any] = {"hashes": {algo: canonical(f"file:hashes.'{algo}'",
                                                           digest.strip())}}
    else:
        body = {"value": canonical(OBSERVABLE_PATHS[kind], value)}
    sco = {"type": kind, "spec_version": "2.1",
           "id": deterministic_id(kind, canonical_json(body)), **body}
    od = _base("observed-data", creator, marking)
    seen = _ts(first_observed, "first observed") or od["created"]
    od.update({"first_observed": seen, "last_observed": max(seen, od["created"]),
               "number_observed": 1, "objects": {"0": sco}})
    return od


def observable_text(od: Mapping[str, Any]) -> str | None:
    """`TYPE:VALUE` of an observed-data made by `observable` (None for any other)."""
    sco = (od.get("objects") or {}).get("0") if isinstance(od.get("objects"), dict) else None
    if not isinstance(sco, dict) or sco.get("type") not in OBSERVABLE_PATHS:
        return None
    if sco["type"] == "file":
        hashes = sco.get("hashes") if isinstance(sco.get("hashes"), dict) else {}
        return next((f"file:{a}={h}" for a, h in hashes.items()), None)
    return f"{sco['type']}:{sco.get('value')}"


def link(item: Mapping[str, Any], case_id: str) -> dict[str, Any]:
    """The relationship that ties `item` to the case: `item related-to incident`, created
    by the item's creator, marked as the item (it reveals that the item belongs to the
    case). Its id is derived from both ends, so linking again is a duplicate."""
    ts = item.get("created") or _PUBLISHED
    rel = {
        "type": "relationship", "spec_version": "2.1",
        "id": deterministic_id("relationship", f"{item['id']}|{CASE_LINK}|{case_id}"),
        "created": ts, "modified": ts,
        "relationship_type": CASE_LINK, "source_ref": item["id"], "target_ref": case_id,
        **Marking.of(item).props(),
    }
    if item.get("created_by_ref"):
        rel["created_by_ref"] = item["created_by_ref"]
    return rel
