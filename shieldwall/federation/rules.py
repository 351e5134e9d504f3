"""Sharing rules at the node's border: what may leave for a peer, what may come in.

Leaving (`forward_refusal`), per object and receiving peer, after `policy.visible`:

- TLP:RED never leaves its node (the TAXII server shows it only to named members who
  read it *there*; federation never carries it);
- AMBER+STRICT only to peers its producer named in `x_shieldwall_audience`; AMBER to
  allies, or to partners and organisations when named;
- nothing goes back to where it came from: not to the peer that delivered it, nor to the
  peer whose identity created it.

Arriving (`Arrival.refusal`), per object a peer delivered (pulled from it, or pushed by it
to our TAXII server, which applies `policy.write_refusal`, the same member rules):

- TLP:RED is refused: it is never federated, so a peer that sends it is leaking it;
- AMBER+STRICT is refused unless it names this node in its audience (or this node made
  it): a relay must not widen an audience;
- an object claiming this node's own identity as its creator is refused: only this node
  makes those (a true echo of what we hold is dropped quietly by the caller);
- an object whose `created_by_ref` names another member, an identity object of another
  member, a sighting whose `where_sighted_refs` names another member, or a posture whose
  `x_shieldwall_member` is another member, is refused unless the peer is configured as a
  trusted relay for that member (`peer add --relay-for`). A member's claims come from
  that member, so a forged "north saw this" cannot enter the alliance view through south;
- a new version of an object held here (a revocation, a rename, a re-marking either way)
  is refused unless the peer may claim the object's creator (it is that member, or relays
  for it; never this node) or, for an object whose creator is none or not a member (a
  feed's), the peer delivered its first version here; and a version keeps its object's
  `created_by_ref` (`policy.version_refusal`). The caller (`pull._held`) supplies what the
  store holds of the page's ids, so only objects already held pay for the check.

Before these rules, a pulled object that is not valid STIX 2.1 (the schemas and pattern
grammar `shieldwall import` applies, `stix.validate.object_error`) is refused by the
puller (`pull._judge`), in the same way.

Identities that are not members known here (a feed's identity, a CERT outside the
alliance) are not claims about a member: they are accepted, with provenance naming the
peer that delivered them. Refused objects are never stored; they are counted per peer and
the last reason is shown in `peer list`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shieldwall.config import PeerConfig
from shieldwall.policy import (
    Existing,
    Member,
    member_identity_id,
    speaker_refusal,
    spoken_for,
    version_refusal,
    visible,
    write_refusal,
)
from shieldwall.stix.markings import LOCAL_ONLY_TYPES, TLP

ANY_MEMBER = "*"  # `relay_for = ["*"]`: the peer relays for every member (a coordination hub)


def forward_refusal(
    peer: PeerConfig, obj: dict[str, Any], tlp: TLP, delivered_by: str,
) -> str | None:
    """Why `obj` (resolved to `tlp`, delivered to us by `delivered_by`) may not go to
    `peer`, or None when it may."""
    if tlp >= TLP.RED:
        return "TLP:RED never leaves its node"
    if delivered_by == peer.name or obj.get("created_by_ref") == member_identity_id(peer.name):
        return "it came from this peer"
    if not visible(Member(peer.name, peer.tier), obj, tlp=tlp):
        return f"{tlp.label} is not shared with {peer.tier} {peer.name}"
    return None


@dataclass(frozen=True)
class Arrival:
    """What this node knows when it judges what `peer` delivers.

    `members`: every member name known here (registered members, peers, this node), whose
    identities therefore mean "this member said so".
    """

    own: str
    own_tier: str
    peer: PeerConfig
    members: frozenset[str]
    identities: Mapping[str, str] = field(init=False)  # identity id -> member name
    guarded: frozenset[str] = field(init=False)  # member identities the peer may not claim
    claims: frozenset[str] = field(init=False)  # the peer's own, and those it relays for

    def __post_init__(self) -> None:
        names = self.members | {self.own, self.peer.name}
        relayed = set(names) if ANY_MEMBER in self.peer.relay_for else set(self.peer.relay_for)
        relayed -= {self.own}
        ids = {member_identity_id(n): n for n in names}
        object.__setattr__(self, "identities", ids)
        object.__setattr__(self, "guarded", frozenset(
            i for i, n in ids.items() if n != self.peer.name and n not in relayed))
        object.__setattr__(self, "claims", frozenset(ids) - self.guarded)

    @classmethod
    def of(cls, own: str, own_tier: str, peer: PeerConfig, members: Iterable[str]
           ) -> Arrival:
        return cls(own, own_tier, peer, frozenset(members))

    def refusal(self, obj: Mapping[str, Any], tlp: TLP, existing: Existing | None = None
                ) -> str | None:
        """Why `obj` (resolved to `tlp`) from this peer is not stored here, or None."""
        if tlp >= TLP.RED:
            return "TLP:RED is never federated"
        if obj.get("type") in LOCAL_ONLY_TYPES:
            return f"{obj.get('type')} objects are written only by their own node"
        creator = obj.get("created_by_ref")
        if creator is not None and not isinstance(creator, str):
            return "created_by_ref is not an identifier"
        if creator == member_identity_id(self.own):
            return "claims to be created by this node"
        if tlp >= TLP.AMBER_STRICT and not visible(Member(self.own, self.own_tier), obj,
                                                   tlp=tlp):
            return f"{tlp.label} and this node is not named in its audience"
        if existing is not None:
            # Only the creator versions an object: a relay forwards its members' versions,
            # never its own, and a version of this node's object comes from no peer.
            why = version_refusal(obj, existing, writer=self.peer.name, claims=self.claims,
                                  member_identities=self.identities)
            if why:
                return self._explain(why, existing.created_by_ref)
        # write_refusal's clauses need a guarded claim; skipping it otherwise keeps a
        # 1,000,000-object pull from paying for it per object.
        if creator in self.guarded or (
                obj.get("type") == "identity" and obj.get("id") in self.guarded):
            why = write_refusal(Member(self.peer.name, self.peer.tier), obj,
                                member_identities=self.guarded, existing=None,
                                default_tlp=tlp)
            if why:
                return self._explain(why, creator if creator in self.guarded
                                     else obj.get("id"))
        for ref, named_by in spoken_for(obj):
            if named_by == "where_sighted_refs":
                if ref in self.guarded:
                    return self._explain(
                        f"where_sighted_refs names member {self.identities[ref]}", ref)
            elif ref not in self.claims or creator != ref:  # a posture: its member's own
                return self._explain(speaker_refusal(obj), ref)
        return None

    def _explain(self, why: str, ref: object) -> str:
        if ref not in self.guarded:
            return why
        member = self.identities[str(ref)]
        if member != self.own:
            return (f"{why} ({member}); {self.peer.name} is not a trusted relay for it "
                    f"('peer add {self.peer.name} ... --relay-for {member} --replace')")
        return why
