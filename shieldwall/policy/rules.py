"""Who may see what, and who may write what: the one decision every read path uses.

`visibility(member)` is the decision in a form a database can apply (so pages, counts
and headers agree); `visible(member, obj)` is the same decision for one object in
hand. Tests check the two agree over every tier and TLP level.

TLP 2.0 as the alliance reads it:

| level         | who sees it                                                          |
|---------------|----------------------------------------------------------------------|
| CLEAR, GREEN  | every authenticated member (allies, partners, organisations)         |
| AMBER         | allies; partners and organisations only when named, or in a named group |
| AMBER+STRICT  | only members named in `x_shieldwall_audience` (groups do not count)  |
| RED           | only members named in `x_shieldwall_audience`; never federated       |

Whatever the level, a member always sees what it created (`created_by_ref` is its
identity) or delivered itself; except objects of `AUDIENCE_ONLY_TYPES` (the consultation
policy), which only the open levels and their own audience open: the node's member stores
its node's policy, yet reads it only when the policy names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shieldwall.policy.model import Collection, Member
from shieldwall.stix.markings import (
    AUDIENCE_ONLY_TYPES,
    AUDIENCE_PROPERTY,
    LOCAL_ONLY_TYPES,
    TLP,
    resolve_tlp,
)

_ALL = frozenset(TLP)


@dataclass(frozen=True)
class Visibility:
    """Levels open to the member outright, levels open when it is named, levels open
    when one of its groups is named; plus the names and identities that count as its own."""

    open_levels: frozenset[TLP]
    named_levels: frozenset[TLP]
    group_levels: frozenset[TLP]
    names: frozenset[str]
    groups: frozenset[str]
    identities: frozenset[str]


def visibility(member: Member) -> Visibility:
    if member.tier == "ally":
        open_levels = frozenset({TLP.CLEAR, TLP.GREEN, TLP.AMBER})
        group_levels: frozenset[TLP] = frozenset()
    else:  # partner, organisation
        open_levels = frozenset({TLP.CLEAR, TLP.GREEN})
        group_levels = frozenset({TLP.AMBER})
    return Visibility(
        open_levels=open_levels,
        named_levels=_ALL - open_levels,
        group_levels=group_levels,
        names=member.audience_names,
        groups=member.group_names,
        identities=frozenset({member.identity_id}),
    )


def visible(
    member: Member,
    obj: Mapping[str, Any],
    *,
    tlp: TLP | None = None,
    delivered_by: str | None = None,
    default_tlp: TLP = TLP.AMBER,
) -> bool:
    """May `member` see this object? `tlp` when the store already resolved it."""
    v = visibility(member)
    level = tlp if tlp is not None else resolve_tlp(obj, default_tlp)
    if level in v.open_levels:
        return True
    if (obj.get("created_by_ref") in v.identities or delivered_by in v.names) and (
            obj.get("type") not in AUDIENCE_ONLY_TYPES):
        return True
    named = obj.get(AUDIENCE_PROPERTY)
    named = {str(n) for n in named} if isinstance(named, list) else set()
    if level in v.named_levels and named & v.names:
        return True
    return bool(level in v.group_levels and named & v.groups)


# ---- collections -----------------------------------------------------------------------


def _matches(rule: str, member: Member) -> bool:
    for principal in rule.split():
        if principal == "*":
            return True
        kind, _, value = principal.partition(":")
        if (
            (kind == "tier" and value == member.tier)
            or (kind == "member" and value == member.name)
            or (kind == "group" and value in member.groups)
        ):
            return True
    return False


def may_read(member: Member, collection: Collection) -> bool:
    return _matches(collection.read_rule, member)


def may_write(member: Member, collection: Collection) -> bool:
    return _matches(collection.write_rule, member)


# ---- writes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Existing:
    """What the node already holds for an id a member writes (its latest version)."""

    tlp: TLP
    created_by_ref: str | None
    delivered_by: str


def write_refusal(
    member: Member,
    obj: Mapping[str, Any],
    *,
    member_identities: frozenset[str],
    existing: Existing | None,
    sighted: Existing | None = None,
    default_tlp: TLP = TLP.AMBER,
) -> str | None:
    """Why `member` may not write `obj`, or None when it may.

    `member_identities`: the identity ids of every registered member (and the node's
    own); `existing`: the latest stored version of the same id; `sighted`: for a
    sighting, the indicator it sights, when the writer can see it.
    """
    if obj.get("type") in LOCAL_ONLY_TYPES:
        return f"{obj.get('type')} objects are written only by this node itself"
    own = member.identity_id
    claimed = obj.get("created_by_ref")
    if isinstance(claimed, str) and claimed != own and claimed in member_identities:
        return "created_by_ref names another member's identity"
    if obj.get("type") == "identity" and obj.get("id") in member_identities and obj["id"] != own:
        return "an identity of another member may only be written by that member"
    if obj.get("type") == "sighting":
        where = obj.get("where_sighted_refs")
        if isinstance(where, list) and any(
                isinstance(w, str) and w != own and w in member_identities for w in where):
            # A sighting "at" another member is that member's claim to make (the same rule
            # federation applies on arrival, `federation.rules`).
            return "where_sighted_refs names another member's identity"
    level = resolve_tlp(obj, default_tlp)
    if existing is not None and level < existing.tlp:
        mine = existing.created_by_ref == own or (
            existing.created_by_ref is None and existing.delivered_by == member.name
        )
        if not mine:
            return (
                f"would lower the marking from {existing.tlp.label} to {level.label} "
                "on an object this member did not create"
            )
    if (
        sighted is not None
        and sighted.tlp >= TLP.AMBER_STRICT
        and level < sighted.tlp
    ):
        return (
            f"a sighting of a {sighted.tlp.label} indicator must be marked at least "
            f"{sighted.tlp.label}"
        )
    return None
