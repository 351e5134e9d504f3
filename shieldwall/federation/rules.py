"""Sharing rules at the node's border: what may leave for a peer, what may come in.

Leaving (`forward_refusal`), per object and receiving peer, after `policy.visible`:

- TLP:RED never leaves its node (the TAXII server shows it only to named members who
  read it *there*; federation never carries it);
- AMBER+STRICT only to peers its producer named in `x_shieldwall_audience`; AMBER to
  allies, or to partners and organisations when named;
- nothing goes back to where it came from: not to the peer that delivered it, nor to the
  peer whose identity created it.

Arriving (`accept_refusal`): a RED object is dropped even if a peer sends it, and an
object this node created is not stored again (it would only loop).
"""

from __future__ import annotations

from typing import Any

from shieldwall.config import PeerConfig
from shieldwall.policy import Member, member_identity_id, visible
from shieldwall.stix.markings import TLP, resolve_tlp


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


def accept_refusal(obj: dict[str, Any], own_identity: str,
                   default_tlp: TLP = TLP.AMBER) -> str | None:
    """Why an object a peer delivered is not stored here, or None."""
    if obj.get("created_by_ref") == own_identity:
        return "created by this node"
    if resolve_tlp(obj, default_tlp) >= TLP.RED:
        return "TLP:RED is never federated"
    return None
