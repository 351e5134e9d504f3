"""A team's confirmed attribution of its case: an analyst's `attributed-to`, not the tool's.

`shieldwall attribute` ranks candidates and never stores its ranking as an attribution
(its `attributed-to` output is printed for the analyst, worded as an assessment). When the
team has established who it was, `case attribute` records that judgement: the incident
`attributed-to` the ATT&CK group's intrusion set, created by the member whose analyst made
it, with their `confidence` (0-100) and reasons, and `x_shieldwall_basis: "confirmed-case"`
so every reader can tell it from a tool's output. The relationship's source is the case's
incident: it is linked to the case by its own ends.

Its id derives from the member, the case and the group, so recording it again (a revised
confidence or reason) makes a new version of the same object, and only its creator may:
another member who disagrees records its own. Once stored, the case's evidence counts
for the group in later rankings (`assess.confirmed`), for readers who may see both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shieldwall.assess.actors import actor_index, attack_catalog
from shieldwall.assess.confirmed import BASIS_PROPERTY, CONFIRMED_CASE
from shieldwall.respond.cases import Case, item_marking, put_items
from shieldwall.respond.model import RespondError, next_version, stamp
from shieldwall.stix.identity import member_identity_id
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import TLP
from shieldwall.store import Access, Store

MAX_REASON = 10_000


def resolve_group(name: str) -> str:
    """An ATT&CK group id from its id, name or any alias ("G0032", "Lazarus Group")."""
    gid = actor_index().resolve(name.strip()) if name.strip() else None
    if gid is None or gid not in attack_catalog().groups:
        raise RespondError(f"{name!r} is no ATT&CK group this node knows (give its id, "
                           "e.g. G0032, or a name ATT&CK or the MISP galaxy lists)")
    return gid


def attribution_id(member: str, case_id: str, gid: str) -> str:
    return deterministic_id("relationship", f"confirmed-attribution|{member}|{case_id}|{gid}")


def attribute_case(store: Store, member: str, identity: Mapping[str, Any], case: Case,
                   access: Access, *, group: str, confidence: int, reason: str,
                   tlp: TLP | None = None) -> dict[str, Any]:
    """Store `member`'s confirmed attribution of `case` to `group` (module docstring);
    marked as a new item of the case (`--tlp`, default the request's level, named to the
    case's audience). Returns the stored relationship."""
    if case.incident is None:
        raise RespondError(f"{case.id}: this node reads no such case")
    if not 0 <= confidence <= 100:
        raise RespondError(f"confidence {confidence} is not between 0 and 100")
    reason = reason.strip()
    if not reason:
        raise RespondError("give the reason for the attribution (--reason): a confirmed "
                           "attribution without its grounds is not evidence")
    if len(reason) > MAX_REASON:
        raise RespondError(f"the reason is longer than {MAX_REASON:,} characters")
    gid = resolve_group(group)
    g = attack_catalog().groups[gid]
    rid = attribution_id(member, case.id, gid)
    body: dict[str, Any] = {
        "relationship_type": "attributed-to", "source_ref": case.id, "target_ref": g.stix_id,
        "confidence": confidence, "description": reason,
        "external_references": [{"source_name": "mitre-attack", "external_id": gid,
                                 "url": f"https://attack.mitre.org/groups/{gid}"}],
        BASIS_PROPERTY: CONFIRMED_CASE,
        **item_marking(case, tlp).props(),
    }
    stored = store.get(rid)
    if stored is not None:
        old = stored.obj()
        if old.get("created_by_ref") != member_identity_id(member):
            raise RespondError(f"{rid} was created by another member: only its creator "
                               "makes new versions")
        if not old.get("revoked") and all(old.get(k) == v for k, v in body.items()):
            return old
        rel = next_version(old, **body, revoked=None)  # recorded again after a withdrawal
    else:
        ts = stamp()
        rel = {"type": "relationship", "spec_version": "2.1", "id": rid,
               "created_by_ref": identity["id"], "created": ts, "modified": ts, **body}
    put_items(store, member, [dict(identity), rel])
    return rel


def revise(store: Store, member: str, rel_id: str, access: Access, **changes: Any
           ) -> dict[str, Any]:
    """A new version of a confirmed attribution (confidence, description, revoked), by its
    creator only; anyone else is refused and records its own instead."""
    from shieldwall.respond.cases import own_version

    row = store.get(rel_id, access)
    if row is None or row.obj().get(BASIS_PROPERTY) != CONFIRMED_CASE:
        raise RespondError(f"no confirmed attribution {rel_id} this node may read")
    allowed = {"confidence", "description", "revoked"}
    if set(changes) - allowed:
        raise RespondError(f"a confirmed attribution changes only {', '.join(sorted(allowed))}")
    return own_version(store, member, rel_id, access, **changes)


def withdraw(store: Store, member: str, case: Case, access: Access, *, group: str
             ) -> dict[str, Any]:
    """Take back `member`'s confirmed attribution of `case` to `group`: a new version,
    revoked, so it no longer counts in rankings (its history stays)."""
    gid = resolve_group(group)
    rid = attribution_id(member, case.id, gid)
    if store.get(rid, access) is None:
        raise RespondError(f"{member} has recorded no attribution of {case.id} to {gid}")
    return revise(store, member, rid, access, revoked=True)
