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

Who may write (`write_refusal`; federation's arrival rules apply the same clauses):

- only an object's creator makes new versions of it (STIX 2.1, section 3.6), and a
  revocation or a re-marking, raising as well as lowering, is a new version. The creator
  is the member whose identity the stored object's `created_by_ref` names; for an object
  with no creator, or one outside the alliance (a feed's identity, which nothing here
  authenticates), it is the member that delivered the object's first version. Anyone
  else makes a new object that refers to it (`derived_from`, a note, an opinion). A new
  version keeps its object's `created_by_ref` (`version_refusal`);
- an object that speaks for a member is written by that member: its `created_by_ref`,
  an identity object, a sighting's `where_sighted_refs`, and a posture snapshot's
  `x_shieldwall_member` may name only the writer (`spoken_for`).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shieldwall.policy.model import Collection, Member, member_identity_id
from shieldwall.stix.ids import deterministic_id
from shieldwall.stix.markings import (
    AUDIENCE_ONLY_TYPES,
    AUDIENCE_PROPERTY,
    LOCAL_ONLY_TYPES,
    TLP,
    resolve_tlp,
)
from shieldwall.stix.respond_types import ASSISTANCE_REQUEST, DISPATCH
from shieldwall.stix.timestamps import parse_ts

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
    """What the node already holds for an id a member writes.

    `tlp`: the latest version's level. `created_by_ref` and `delivered_by`: the creator
    its first stored version names and who delivered that version; between them they
    say who owns the object (STIX keeps `created_by_ref` across versions, and a later
    version cannot have changed it: `version_refusal`). `versions`: the `version_us` of
    every version held, when the caller looked them up.
    """

    tlp: TLP
    created_by_ref: str | None
    delivered_by: str
    versions: frozenset[int] = frozenset()


# What `held_objects` reads of every stored version, in this order (`Store.rows_by_ids`).
HELD_COLUMNS = ("id", "seq", "version_us", "is_latest", "tlp", "created_by_ref", "source")


def held_objects(rows: Iterable[tuple[Any, ...]]) -> dict[str, Existing]:
    """Each id's `Existing`, from the `HELD_COLUMNS` of every version the store holds of
    it (any order): the first stored version (lowest `seq`) names creator and deliverer."""
    first: dict[str, tuple[Any, ...]] = {}
    latest: dict[str, int] = {}
    versions: dict[str, set[int]] = {}
    for row in rows:
        oid, seq, ver, is_latest = row[0], row[1], row[2], row[3]
        if oid not in first or seq < first[oid][1]:
            first[oid] = row
        if is_latest:
            latest[oid] = row[4]
        versions.setdefault(oid, set()).add(ver)
    return {oid: Existing(TLP(latest.get(oid, row[4])), row[5], row[6],
                          frozenset(versions[oid]))
            for oid, row in first.items()}


ONLY_THE_CREATOR = ("only its creator makes new versions of an object (a revocation or a "
                    "re-marking is one); make a new object that refers to it (derived_from, "
                    "a note, an opinion)")
CREATOR_KEPT = "created_by_ref differs from the stored object's creator (a new version keeps it)"


def version_refusal(
    obj: Mapping[str, Any],
    existing: Existing,
    *,
    writer: str,
    claims: Container[str],
    member_identities: Container[str],
) -> str | None:
    """Why `writer` (a member's name: its node delivers the version) may not write `obj`
    as a version of the stored object `existing`, or None.

    `claims`: the member identities the writer speaks for (its own; a trusted relay's
    also those of the members it relays for); `member_identities`: every member identity
    known here. An object a member created is versioned by a writer that may claim that
    member; any other object (no creator, or a feed's) only by the member that delivered
    its first version: a relay's trust covers its members' claims, not what they passed on.
    Re-sending a version already held is left to the store (a duplicate, or a conflict).
    """
    if existing.versions:
        stamp = obj.get("modified") or obj.get("created")
        try:
            if isinstance(stamp, str) and parse_ts(stamp) in existing.versions:
                return None
        except ValueError:
            pass
    creator = existing.created_by_ref
    if not (creator in claims if creator in member_identities
            else existing.delivered_by == writer):
        return ONLY_THE_CREATOR
    if obj.get("created_by_ref") != creator:
        return CREATOR_KEPT
    return None


SPEAKER_PROPERTY = "x_shieldwall_member"  # the member a posture snapshot is of
# Types whose every object speaks for the member SPEAKER_PROPERTY names, with an id
# derived from that member and the day (`pledge.posture.to_stix`): a posture snapshot.
SPEAKER_TYPES = frozenset({"x-shieldwall-posture"})
# Types that speak for the member one of their properties names, whatever their id: an
# assistance request for its requester, a dispatch for the coordination cell that sends
# the team. Only that member's node writes them, so no member asks for help in another's
# name, and no node but the cell's sends a team in the cell's name.
NAMED_SPEAKERS: Mapping[str, str] = {ASSISTANCE_REQUEST: "requester", DISPATCH: "cell"}


def spoken_for(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(identity, what names it) for the members `obj` speaks for, besides its creator: a
    sighting's `where_sighted_refs`, and for a posture snapshot the member it is of. Such
    objects are that member's to write. A snapshot's id must be the one derived from its
    member and date; otherwise (or with no member) it speaks for "", which no writer
    may claim: a member's id for a coming day cannot be taken before the member uses it."""
    out: list[tuple[str, str]] = []
    kind = obj.get("type")
    if kind == "sighting":
        where = obj.get("where_sighted_refs")
        if isinstance(where, list):
            out += [(w, "where_sighted_refs") for w in where if isinstance(w, str)]
    elif kind in SPEAKER_TYPES:
        member = obj.get(SPEAKER_PROPERTY)
        bound = isinstance(member, str) and obj.get("id") == deterministic_id(
            str(kind), f"{member}:{obj.get('x_shieldwall_date')}")
        out.append((member_identity_id(member) if bound else "", SPEAKER_PROPERTY))
    elif kind in NAMED_SPEAKERS:
        prop = NAMED_SPEAKERS[str(kind)]
        member = obj.get(prop)
        out.append((member_identity_id(member) if isinstance(member, str) and member else "",
                    prop))
    return out


def speaker_refusal(obj: Mapping[str, Any]) -> str:
    """The refusal of a posture snapshot, request or dispatch its writer may not speak for."""
    prop = NAMED_SPEAKERS.get(str(obj.get("type")))
    if prop is not None:
        return (f"speaks for member {obj.get(prop)} ({prop}): only that member's node writes "
                "it, and its created_by_ref names that member")
    return (f"speaks for member {obj.get(SPEAKER_PROPERTY)} ({SPEAKER_PROPERTY}): only that "
            "member writes it, its created_by_ref names that member, and its id is the one "
            "derived from that member and its date")


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
    own); `existing`: what the store holds of the same id (`held_objects`); `sighted`:
    for a sighting, the indicator it sights, when the writer can see it.
    """
    if obj.get("type") in LOCAL_ONLY_TYPES:
        return f"{obj.get('type')} objects are written only by this node itself"
    own = member.identity_id
    claimed = obj.get("created_by_ref")
    if isinstance(claimed, str) and claimed != own and claimed in member_identities:
        return "created_by_ref names another member's identity"
    if obj.get("type") == "identity" and obj.get("id") in member_identities and obj["id"] != own:
        return "an identity of another member may only be written by that member"
    for identity, named_by in spoken_for(obj):
        if named_by == "where_sighted_refs":
            if identity != own and identity in member_identities:
                # A sighting "at" another member is that member's claim to make (the same
                # rule federation applies on arrival, `federation.rules`).
                return "where_sighted_refs names another member's identity"
        elif identity != own or claimed != own:  # a posture, its member known here or not
            return speaker_refusal(obj)
    if existing is not None:
        why = version_refusal(obj, existing, writer=member.name, claims={own},
                              member_identities=member_identities | {own})
        if why:
            return why
    level = resolve_tlp(obj, default_tlp)
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
