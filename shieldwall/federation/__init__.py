"""Federation: peers, durable cursors, pull and push over TAXII 2.1, provenance, and the
sharing rules at the node's border."""

from shieldwall.federation.alliance import AllianceHit, alliance_view, members_hit
from shieldwall.federation.peers import (
    PeerError,
    PeerState,
    add_peer,
    load_state,
    read_token,
    remove_peer,
)
from shieldwall.federation.pull import PullResult
from shieldwall.federation.rules import Arrival, forward_refusal
from shieldwall.federation.sync import Federation, SyncResult, start_in_background

__all__ = [
    "AllianceHit",
    "Arrival",
    "Federation",
    "PeerError",
    "PeerState",
    "PullResult",
    "SyncResult",
    "add_peer",
    "alliance_view",
    "forward_refusal",
    "load_state",
    "members_hit",
    "read_token",
    "remove_peer",
    "start_in_background",
]
