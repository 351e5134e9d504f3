"""Policy: members, tiers, sharing groups, TLP rules; who may see and write what."""

from shieldwall.policy.members import Members, PolicyError, new_token, token_hash
from shieldwall.policy.model import TIERS, Collection, Member, member_identity_id
from shieldwall.policy.rules import (
    HELD_COLUMNS,
    Existing,
    Visibility,
    held_objects,
    may_read,
    may_write,
    speaker_refusal,
    spoken_for,
    version_refusal,
    visibility,
    visible,
    write_refusal,
)

__all__ = [
    "HELD_COLUMNS",
    "TIERS",
    "Collection",
    "Existing",
    "Member",
    "Members",
    "PolicyError",
    "Visibility",
    "held_objects",
    "may_read",
    "may_write",
    "member_identity_id",
    "new_token",
    "speaker_refusal",
    "spoken_for",
    "token_hash",
    "version_refusal",
    "visibility",
    "visible",
    "write_refusal",
]
