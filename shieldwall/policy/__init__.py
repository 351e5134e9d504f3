"""Policy: members, tiers, sharing groups, TLP rules; who may see and write what."""

from shieldwall.policy.members import Members, PolicyError, new_token, token_hash
from shieldwall.policy.model import TIERS, Collection, Member, member_identity_id
from shieldwall.policy.rules import (
    Existing,
    Visibility,
    may_read,
    may_write,
    visibility,
    visible,
    write_refusal,
)

__all__ = [
    "TIERS",
    "Collection",
    "Existing",
    "Member",
    "Members",
    "PolicyError",
    "Visibility",
    "may_read",
    "may_write",
    "member_identity_id",
    "new_token",
    "token_hash",
    "visibility",
    "visible",
    "write_refusal",
]
