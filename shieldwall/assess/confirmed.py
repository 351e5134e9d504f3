"""The alliance's confirmed cases as evidence for attribution.

ATT&CK's group profiles hold behaviour (techniques, software) but no infrastructure, and
they lag: a group's campaign against the alliance appears in ATT&CK months later, if ever.
A case whose team recorded a confirmed attribution (`case attribute`, an analyst's
`attributed-to` from the incident to the ATT&CK intrusion set, marked
`x_shieldwall_basis: "confirmed-case"`) is exactly that missing evidence: its observables,
indicators, malware and attack-patterns count for the group in later rankings
(`attribution.rank(confirmed=...)`).

Everything is read with the reader's `Access`: an attribution, a case or a case item the
reader may not see adds nothing to its rankings, so an AMBER+STRICT confirmation never
raises a candidate for a member outside the case's audience. A confirmation counts only
when it comes from someone working the case (the incident's creator, a member the
incident is named to, or the cell and team of a dispatch that answers the case's own
request): any member can write an `attributed-to`, but not everyone's word is evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shieldwall.assess.actors import attack_catalog
from shieldwall.assess.attribution import (
    Evidence,
    _attack_id,
    _infra_value,
    resolve_evidence,
)
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.markings import AUDIENCE_PROPERTY
from shieldwall.stix.respond_types import ASSISTANCE_REQUEST, DISPATCH
from shieldwall.store import Access, Query, Store

BASIS_PROPERTY = "x_shieldwall_basis"
CONFIRMED_CASE = "confirmed-case"
CASE_LINK = "related-to"
# Bounds: a store is input too (what peers sent); a ranking reads no more than this.
MAX_CONFIRMED = 2_000
MAX_ITEMS_PER_CASE = 5_000


@dataclass(frozen=True)
class ConfirmedCase:
    """One confirmed attribution the reader may see, with the case's evidence."""

    incident: str
    group: str  # ATT&CK id
    confidence: int
    relationship: str
    evidence: Evidence


def is_confirmed(rel: Mapping[str, Any]) -> bool:
    return (rel.get("type") == "relationship"
            and rel.get("relationship_type") == "attributed-to"
            and rel.get(BASIS_PROPERTY) == CONFIRMED_CASE and not rel.get("revoked"))


def _case_people(incident: Mapping[str, Any], linked: Iterable[Mapping[str, Any]]
                 ) -> set[str]:
    """Identity ids of who works the case: its creator, the members it is named to, and
    the cell and team of a dispatch that answers a request its requester made."""
    people = {str(incident.get("created_by_ref") or "")}
    people |= {member_identity_id(str(m)) for m in incident.get(AUDIENCE_PROPERTY) or ()}
    items = list(linked)
    requests = {o["id"]: o for o in items if o.get("type") == ASSISTANCE_REQUEST
                and o.get("incident_ref") == incident["id"]
                and o.get("created_by_ref") == member_identity_id(str(o.get("requester")))}
    for req in requests.values():
        people.add(member_identity_id(str(req.get("cell"))))
    for d in items:
        req = requests.get(str(d.get("request_ref"))) if d.get("type") == DISPATCH else None
        if req and d.get("created_by_ref") == member_identity_id(str(req.get("cell"))):
            people |= {member_identity_id(str(p).split(":", 1)[0]) for p in d.get("team") or ()}
    people.discard("")
    return people


def case_evidence(incident: Mapping[str, Any], items: Iterable[Mapping[str, Any]],
                  warninglisted: set[str] | frozenset[str] = frozenset()) -> Evidence:
    """Techniques, software and infrastructure of a case from its incident and items:
    attack-patterns and malware or tools with an ATT&CK id, observables' values (their
    canonical forms), indicators' pattern values (warning-listed indicators left out: a
    public resolver says nothing of who attacked), the incident's own techniques."""
    from shieldwall.assess.correlation import pattern_values

    techniques = [str(t) for t in incident.get("x_shieldwall_techniques") or ()]
    software: list[str] = []
    infra: list[str] = []
    for obj in items:
        kind = obj.get("type")
        aid = _attack_id(obj)
        if kind == "attack-pattern" and aid:
            techniques.append(aid)
        elif kind in ("malware", "tool") and aid:
            software.append(aid)
        elif kind == "indicator":
            if obj["id"] not in warninglisted:
                infra += [v for _, v in sorted(pattern_values(str(obj.get("pattern", ""))))]
        else:
            infra += _infra_value(obj)
    evidence, _ = resolve_evidence(techniques, software, infra)
    return evidence


def confirmed_cases(store: Store, access: Access | None, *,
                    exclude: Iterable[str] = ()) -> list[ConfirmedCase]:
    """The confirmed attributions `access` may read, each with its case's evidence as
    `access` may read it; cases in `exclude` (the incident being ranked) are left out."""
    catalog = attack_catalog()
    by_stix = {g.stix_id: gid for gid, g in catalog.groups.items()}
    skip = set(exclude)
    rels: dict[str, dict[str, Any]] = {}
    for row in store.linked(list(by_stix), access):
        rel = row.obj()
        if is_confirmed(rel) and rel.get("target_ref") in by_stix \
                and str(rel.get("source_ref", "")).startswith("incident--") \
                and rel["source_ref"] not in skip:
            rels[rel["id"]] = rel
            if len(rels) >= MAX_CONFIRMED:
                break
    if not rels:
        return []
    warninglisted = {i for i, _ in store.tagged("warninglist")}
    out: list[ConfirmedCase] = []
    cache: dict[str, tuple[dict[str, Any], list[dict[str, Any]], set[str]] | None] = {}
    for rel in sorted(rels.values(), key=lambda r: r["id"]):
        inc_id = str(rel["source_ref"])
        if inc_id not in cache:
            cache[inc_id] = _read_case(store, inc_id, access)
        read = cache[inc_id]
        if read is None:
            continue  # the reader may not see the case: its confirmation adds nothing
        incident, items, people = read
        if rel.get("created_by_ref") not in people:
            continue
        out.append(ConfirmedCase(inc_id, by_stix[rel["target_ref"]],
                                 int(rel.get("confidence") or 0), rel["id"],
                                 case_evidence(incident, items, warninglisted)))
    return out


def _read_case(store: Store, incident_id: str, access: Access | None
               ) -> tuple[dict[str, Any], list[dict[str, Any]], set[str]] | None:
    row = store.get(incident_id, access)
    if row is None:
        return None
    incident = row.obj()
    ids = [r.obj()["source_ref"] for r in store.linked([incident_id], access)
           if r.obj().get("relationship_type") == CASE_LINK
           and r.obj().get("target_ref") == incident_id][:MAX_ITEMS_PER_CASE]
    items: list[dict[str, Any]] = []
    wanted = sorted(set(ids))
    for i in range(0, len(wanted), 500):
        items += [r.obj() for r in store.query(
            Query(ids=wanted[i:i + 500], access=access)).rows]
    return incident, items, _case_people(incident, items)


def by_group(cases: Iterable[ConfirmedCase], min_confidence: int = 0
             ) -> dict[str, Evidence]:
    """The evidence of every confirmed case of each group, merged (for `rank`)."""
    merged: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for c in cases:
        if c.confidence < min_confidence:
            continue
        t, s, i = merged.setdefault(c.group, ([], [], []))
        t += c.evidence.techniques
        s += c.evidence.software
        i += c.evidence.infrastructure
    return {gid: Evidence(tuple(dict.fromkeys(t)), tuple(dict.fromkeys(s)),
                          tuple(dict.fromkeys(i)))
            for gid, (t, s, i) in sorted(merged.items())}


def confirmed_evidence(store: Store, access: Access | None, *,
                       exclude: Iterable[str] = ()) -> dict[str, Evidence]:
    """ATT&CK id -> what the alliance's confirmed cases of that group showed, as `access`
    may see it."""
    return by_group(confirmed_cases(store, access, exclude=exclude))
